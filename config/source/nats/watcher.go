package nats

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
)

const (
	// minBackoff and maxBackoff bound the waits between attempts to watch again.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// errWatchEnded is the error of a watch whose updates channel was closed without Stop.
var errWatchEnded = errors.New("the watch ended")

// watcher follows the key in one goroutine (run), which publishes each new document for
// Next; it holds the source's connection until Stop.
type watcher struct {
	src    *natsSource
	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sum    string // checksum of the last document published; start and run only

	mu      sync.Mutex
	stopped bool
	cs      *source.ChangeSet // newest document Next has not returned
	err     error             // newest error Next has not returned
	notify  chan struct{}     // capacity 1: something is pending
	done    chan struct{}     // closed by Stop
	once    sync.Once
}

// Next returns the next version of the document, waiting for one. While the key cannot
// be watched it returns errors, and goes on; after Stop it returns
// source.ErrWatcherStopped.
func (w *watcher) Next() (*source.ChangeSet, error) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, source.ErrWatcherStopped
		}
		cs, err := w.cs, w.err
		if cs != nil {
			w.cs = nil
		} else {
			w.err = nil
		}
		more := cs != nil && w.err != nil
		w.mu.Unlock()
		if more {
			w.signal() // the error is for another call of Next
		}
		if cs != nil {
			return cs, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-w.done:
		case <-w.notify:
		}
	}
}

// Stop ends the watcher: it unblocks Next, ends the watch, waits for the watcher's
// goroutine and gives back the connection, closing it unless a Read, a Write or another
// watcher of the source holds it. It is idempotent.
func (w *watcher) Stop() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.cs, w.err = nil, nil
		w.mu.Unlock()
		close(w.done)
		w.cancel()
		w.wg.Wait()
		w.src.release()
	})
	return nil
}

func (w *watcher) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// publish hands a new document to Next, replacing one not yet taken and any error.
func (w *watcher) publish(cs *source.ChangeSet) {
	w.mu.Lock()
	if !w.stopped {
		w.cs, w.err = cs, nil
	}
	w.mu.Unlock()
	w.signal()
}

// fail hands a transient error to Next, unless the watcher is stopping.
func (w *watcher) fail(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	if !w.stopped {
		w.err = err
	}
	w.mu.Unlock()
	w.signal()
}

// apply takes an entry of the watch: its document becomes the last one, and is
// published if its checksum changed and publish is set.
func (w *watcher) apply(e jetstream.KeyValueEntry, publish bool) {
	var cs *source.ChangeSet
	if e.Operation() == jetstream.KeyValuePut {
		cs = w.src.changeSet(e.Value(), true)
	} else {
		cs = w.src.changeSet(nil, false)
	}
	if cs.Checksum == w.sum {
		return
	}
	w.sum = cs.Checksum
	if publish {
		w.publish(cs)
	}
}

// start opens the bucket, creating it if needed, and watches the key, taking the
// initial value within the timeout: as the baseline on the first start (when w.sum is
// empty), as a change afterwards.
func (w *watcher) start(c *connection) (jetstream.KeyWatcher, error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.src.set.timeout)
	defer cancel()
	kv, err := w.src.bucket(ctx, c)
	if err != nil {
		return nil, w.src.errorf(err, "watch")
	}
	kw, err := kv.Watch(ctx, w.src.set.key)
	if err != nil {
		return nil, w.src.errorf(err, "watch")
	}
	baseline := w.sum == ""
	if baseline {
		// No value is the empty document.
		w.sum = w.src.changeSet(nil, false).Checksum
	}
	var initial jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				return nil, w.src.errorf(errWatchEnded, "watch")
			}
			if e != nil {
				initial = e
				continue
			}
			if initial != nil {
				w.apply(initial, !baseline)
			} else if !baseline {
				w.apply(deleted{}, true)
			}
			return kw, nil
		case <-ctx.Done():
			stopWatch(kw)
			return nil, w.src.errorf(ctx.Err(), "watch")
		}
	}
}

// run follows the watch kw until Stop, watching again after a watch that ends.
func (w *watcher) run(c *connection, kw jetstream.KeyWatcher) {
	defer w.wg.Done()
	backoff := minBackoff
	for {
		if !w.follow(kw) {
			return
		}
		w.fail(w.src.errorf(errWatchEnded, "watch"))
		for {
			if !w.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			var err error
			if kw, err = w.start(c); err == nil {
				backoff = minBackoff
				break
			}
			w.fail(err)
		}
	}
}

// follow applies the updates of kw until Stop (it then stops kw and reports false) or
// until kw ends (true).
func (w *watcher) follow(kw jetstream.KeyWatcher) bool {
	for {
		select {
		case <-w.ctx.Done():
			stopWatch(kw)
			return false
		case e, ok := <-kw.Updates():
			if !ok {
				return w.ctx.Err() == nil
			}
			if e != nil {
				w.apply(e, true)
			}
		}
	}
}

// stopWatch stops kw and takes what it still delivers until its channel is closed, so
// that the subscription's goroutine, which may be blocked delivering, can end.
func stopWatch(kw jetstream.KeyWatcher) {
	_ = kw.Stop()
	for range kw.Updates() {
	}
}

// sleep waits for d, or until Stop; it reports whether the watcher goes on.
func (w *watcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// deleted is the entry of a key that has no value.
type deleted struct{ jetstream.KeyValueEntry }

func (deleted) Operation() jetstream.KeyValueOp { return jetstream.KeyValueDelete }
