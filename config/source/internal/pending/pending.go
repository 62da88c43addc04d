// Package pending is the hand-off between a config source's watch goroutine and its
// watcher's Next: the newest document not yet taken, the newest error, and the stop.
// A document replaces one not taken yet (a slow reader sees only the newest), and clears
// a pending error.
package pending

import (
	"sync"

	"github.com/seed-b3892490/micro/config/source"
)

// Box holds what Next has not returned yet. The zero value is not ready: use New.
type Box struct {
	mu      sync.Mutex
	stopped bool
	cs      *source.ChangeSet // newest document Next has not returned
	err     error             // newest error Next has not returned
	notify  chan struct{}     // capacity 1: something is pending
	done    chan struct{}     // closed by Close
	once    sync.Once
}

// New returns an empty Box.
func New() *Box {
	return &Box{notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// Next returns the pending document, or else the pending error, waiting for one. After
// Close it returns source.ErrWatcherStopped.
func (b *Box) Next() (*source.ChangeSet, error) {
	for {
		b.mu.Lock()
		if b.stopped {
			b.mu.Unlock()
			return nil, source.ErrWatcherStopped
		}
		cs, err := b.cs, b.err
		if cs != nil {
			b.cs = nil
		} else {
			b.err = nil
		}
		more := cs != nil && b.err != nil
		b.mu.Unlock()
		if more {
			b.signal() // the error is for another call of Next
		}
		if cs != nil {
			return cs, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-b.done:
		case <-b.notify:
		}
	}
}

// Publish hands a new document to Next, replacing one not yet taken and any error.
func (b *Box) Publish(cs *source.ChangeSet) {
	b.mu.Lock()
	if !b.stopped {
		b.cs, b.err = cs, nil
	}
	b.mu.Unlock()
	b.signal()
}

// Fail hands a transient error to Next, unless the box is closed.
func (b *Box) Fail(err error) {
	b.mu.Lock()
	if !b.stopped {
		b.err = err
	}
	b.mu.Unlock()
	b.signal()
}

// Close makes Next return source.ErrWatcherStopped from now on, waking a waiting one, and
// drops what is pending. It reports whether this call closed the box (false on later
// calls).
func (b *Box) Close() bool {
	first := false
	b.once.Do(func() {
		first = true
		b.mu.Lock()
		b.stopped = true
		b.cs, b.err = nil, nil
		b.mu.Unlock()
		close(b.done)
	})
	return first
}

// Done is closed once Close is called.
func (b *Box) Done() <-chan struct{} { return b.done }

func (b *Box) signal() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}
