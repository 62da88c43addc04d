// Package callctx is the context of one call: a deadline and a cancel, like
// context.WithDeadline, but whose channel and timer are made only when something waits on
// it. Most calls end without anyone selecting on their context, so most calls cost one
// allocation here instead of four.
package callctx

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ctx is a context.Context with its own deadline (never later than its parent's) that
// ends at the deadline, when Cancel is called, or when its parent ends.
type Ctx struct {
	parent   context.Context
	deadline time.Time // zero: none of its own

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	err   error
	timer *time.Timer
	stop  func() bool  // ends the watch on the parent
	after []*afterFunc // registered by AfterFunc, run when the context ends

	// ended is &err once err is set (it is set once), so Err can answer without mu.
	ended atomic.Pointer[error]
}

// New returns a context that ends at deadline (zero: only with its parent or Cancel).
// A deadline later than the parent's is the parent's.
func New(parent context.Context, deadline time.Time) *Ctx {
	if dl, ok := parent.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	return &Ctx{parent: parent, deadline: deadline}
}

// Deadline returns the context's deadline.
func (c *Ctx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// Parent returns the context c was made from.
func (c *Ctx) Parent() context.Context { return c.parent }

// Armed reports whether Done was called: a caller that has not needed the channel may
// wait on the parent and its own timer for the deadline instead.
func (c *Ctx) Armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done != nil
}

// Done returns a channel closed when the context ends; the first call starts the timer.
func (c *Ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm()
	return c.done
}

// arm makes the done channel and starts the deadline's timer and the watch on the
// parent, once. Called with mu held.
func (c *Ctx) arm() {
	if c.done != nil {
		return
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.setErr(c.expired())
	}
	if c.err != nil {
		close(c.done)
		return
	}
	if !c.deadline.IsZero() {
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
	}
	if c.parent.Done() != nil {
		c.stop = context.AfterFunc(c.parent, func() { c.end(c.parent.Err()) })
	}
}

// afterFunc is one function registered by AfterFunc.
type afterFunc struct{ f func() }

// AfterFunc arranges for f to run in its own goroutine once the context ends (at once if
// it has), and returns a stop that unregisters f, reporting whether it did so before f
// was started. It is the hook context.AfterFunc, WithCancel and WithTimeout look for: a
// context derived from a Ctx is ended by it without a goroutine left waiting on Done.
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.after = append(c.after, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, b := range c.after {
			if b == a {
				c.after = slices.Delete(c.after, i, i+1)
				return true
			}
		}
		return false
	}
}

// expired returns the error of a context past its deadline or whose parent ended.
func (c *Ctx) expired() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Err returns nil while the context runs, then why it ended.
func (c *Ctx) Err() error {
	if p := c.ended.Load(); p != nil {
		return *p
	}
	if c.parent.Err() == nil && (c.deadline.IsZero() || time.Now().Before(c.deadline)) {
		return nil // running, and no lock taken: a stream asks on every message
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && c.setErr(c.expired()) && c.done != nil {
		close(c.done)
		c.release()
	}
	return c.err
}

// setErr records err, if any, as why the context ended, and reports whether it did.
// Called with mu held and no error recorded.
func (c *Ctx) setErr(err error) bool {
	if err == nil {
		return false
	}
	c.err = err
	c.ended.Store(&c.err)
	return true
}

// Value returns the parent's value for key.
func (c *Ctx) Value(key any) any { return c.parent.Value(key) }

// Cancel ends the context (context.Canceled) and releases its timer.
func (c *Ctx) Cancel() { c.end(context.Canceled) }

func (c *Ctx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		c.release()
		return
	}
	c.setErr(err)
	if c.done != nil {
		close(c.done)
	}
	c.release()
}

// release stops the timer and the parent's watch, and starts the functions AfterFunc
// registered. Called with mu held, once the context has ended.
func (c *Ctx) release() {
	for _, a := range c.after {
		go a.f()
	}
	c.after = nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
}

// String describes the context, as the context package's own do.
func (c *Ctx) String() string { return "callctx.WithDeadline(" + c.deadline.String() + ")" }
