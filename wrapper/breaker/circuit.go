package breaker

import (
	"context"
	stderrors "errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/seed-b3892490/micro/errors"
)

// circuit is the state of one service. Its fields are guarded by mu.
type circuit struct {
	service string

	mu    sync.Mutex
	state State
	gen   uint64 // counts changes of state: outcomes of older calls are dropped

	// closed
	consecutive int // failures in a row
	window      window

	// open and half-open
	openFor time.Duration // the current open period, doubled by failed probes
	until   time.Time     // open: when the next probe may pass; half-open: when unanswered probes count as failed
	reason  string        // why it opened
	probes  int           // half-open: probes let through and not finished
	passed  int           // half-open: probes that succeeded
}

// ticket is what a call let through carries to its outcome. A zero ticket (no circuit)
// records nothing.
type ticket struct {
	c     *circuit
	gen   uint64
	probe bool
}

// allow lets a call to service through, returning its ticket, or refuses it with the
// 503 *errors.Error of an open circuit.
func (b *Breaker) allow(service string) (ticket, error) {
	c := b.circuit(service)
	if c == nil {
		return ticket{}, nil
	}
	c.mu.Lock()
	if c.state == StateClosed { // the fast path: no clock, no allocation
		t := ticket{c: c, gen: c.gen}
		c.mu.Unlock()
		return t, nil
	}
	now := b.now()
	changed := false
	if c.state == StateOpen && !now.Before(c.until) {
		b.setState(c, StateHalfOpen, now, "open for "+c.openFor.String(), nil)
		changed = true
	}
	if c.state == StateHalfOpen && c.probes+c.passed >= b.cfg.probes && !now.Before(c.until) {
		// The probes have been out for a whole open period (a hung server, a stream
		// opened without a deadline): take that as a failed probe, so that the circuit
		// does not stay half-open for good.
		b.setState(c, StateOpen, now, "a probe unanswered for "+c.openFor.String(), nil)
		changed = true
	}
	if c.state == StateHalfOpen && c.probes+c.passed < b.cfg.probes {
		c.probes++
		t := ticket{c: c, gen: c.gen, probe: true}
		c.mu.Unlock()
		if changed {
			b.notify()
		}
		return t, nil
	}
	state, until, reason, probes := c.state, c.until, c.reason, c.probes
	c.mu.Unlock()
	if changed {
		b.notify()
	}
	return ticket{}, b.refusal(service, state, until, reason, probes, now)
}

// refusal is the error of a call refused by a circuit in state.
func (b *Breaker) refusal(service string, state State, until time.Time, reason string, probes int, now time.Time) error {
	var detail string
	if state == StateOpen {
		detail = fmt.Sprintf("service %s: circuit breaker open after %s; next probe in %s",
			service, reason, until.Sub(now).Round(time.Millisecond))
	} else {
		detail = fmt.Sprintf("service %s: circuit breaker half-open after %s; %d of %d probes in flight, calls pass again when they succeed",
			service, reason, probes, b.cfg.probes)
	}
	return errors.Wrap(ErrOpen, ErrorID, 503, detail)
}

// done records the outcome of a call let through with t.
func (b *Breaker) done(t ticket, err error) {
	c := t.c
	if c == nil {
		return
	}
	// the caller gave up: that says nothing about the service
	ignore := err != nil && stderrors.Is(err, context.Canceled)
	failed := err != nil && !ignore && b.cfg.isFailure(err)
	last := ""
	if failed { // outside the lock: err's Error method is not ours
		last = summary(err)
	}
	c.mu.Lock()
	if c.gen != t.gen {
		c.mu.Unlock()
		return
	}
	changed := false
	switch c.state {
	case StateClosed:
		if ignore {
			break
		}
		if !failed {
			c.consecutive = 0
			if b.cfg.ratio > 0 {
				c.window.add(b.tick(b.now()), false)
			}
			break
		}
		now := b.now()
		tick := b.tick(now)
		c.window.add(tick, true)
		c.consecutive++
		if b.cfg.consecutive > 0 && c.consecutive >= b.cfg.consecutive {
			b.setState(c, StateOpen, now, fmt.Sprintf("%d consecutive failures (last: %s)", c.consecutive, last), err)
			changed = true
		} else if calls, fails := c.window.sum(tick); b.cfg.ratio > 0 && calls >= b.cfg.minCalls && float64(fails) >= b.cfg.ratio*float64(calls) {
			b.setState(c, StateOpen, now, fmt.Sprintf("%d of %d calls in %s failed (last: %s)", fails, calls, b.cfg.window, last), err)
			changed = true
		}
	case StateHalfOpen:
		c.probes--
		switch {
		case ignore:
		case failed:
			b.setState(c, StateOpen, b.now(), "a failed probe (last: "+last+")", err)
			changed = true
		default:
			c.passed++
			if c.passed >= b.cfg.probes {
				reason := "1 probe succeeded"
				if c.passed > 1 {
					reason = fmt.Sprintf("%d probes succeeded", c.passed)
				}
				b.setState(c, StateClosed, b.now(), reason, nil)
				changed = true
			}
		}
	}
	c.mu.Unlock()
	if changed {
		b.notify()
	}
}

// setState moves c to state to and queues the change. Called with c.mu held.
func (b *Breaker) setState(c *circuit, to State, now time.Time, reason string, err error) {
	from := c.state
	c.state = to
	c.gen++
	c.probes, c.passed = 0, 0
	switch to {
	case StateClosed:
		c.consecutive = 0
		c.window = window{}
		c.openFor = 0
		c.reason = ""
	case StateOpen:
		if from == StateHalfOpen {
			c.openFor = min(2*c.openFor, max(b.cfg.maxOpenTimeout, b.cfg.openTimeout))
		} else {
			c.openFor = b.cfg.openTimeout
		}
		c.until = now.Add(c.openFor)
		c.reason = reason
		c.consecutive = 0
		c.window = window{}
	case StateHalfOpen:
		c.until = now.Add(c.openFor)
	}
	if b.cfg.onChange == nil {
		return
	}
	ch := Change{Service: c.service, From: from, To: to, At: now, Reason: reason}
	if to == StateOpen {
		ch.Until, ch.Err = c.until, err
	}
	b.notes.push(ch)
}

// summary is a short form of a failure for a reason: the code and detail of an
// *errors.Error, at most 200 bytes.
func summary(err error) string {
	s := err.Error()
	if e, ok := errors.As(err); ok {
		s = fmt.Sprintf("%d %s", e.Code, e.Detail)
	}
	if len(s) > 200 {
		n := 200
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "..."
	}
	return s
}

// window counts calls and failures over the last windowBuckets ticks.
type window struct {
	b [windowBuckets]bucket
}

type bucket struct {
	tick            int64
	calls, failures int
}

func (w *window) add(tick int64, failed bool) {
	s := &w.b[tick%windowBuckets]
	if s.tick != tick {
		*s = bucket{tick: tick}
	}
	s.calls++
	if failed {
		s.failures++
	}
}

// sum returns the calls and failures in the window that ends with tick.
func (w *window) sum(tick int64) (calls, failures int) {
	for i := range w.b {
		if s := &w.b[i]; tick-s.tick < windowBuckets {
			calls += s.calls
			failures += s.failures
		}
	}
	return calls, failures
}

func (w *window) failures(tick int64) int {
	_, f := w.sum(tick)
	return f
}
