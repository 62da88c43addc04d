package nats

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/pending"
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

	box  *pending.Box // what Next has not returned yet
	once sync.Once
}

// Next returns the next version of the document, waiting for one. While the key cannot
// be watched it returns errors, and goes on; after Stop it returns
// source.ErrWatcherStopped.
func (w *watcher) Next() (*source.ChangeSet, error) { return w.box.Next() }

// Stop ends the watcher: it unblocks Next, ends the watch, waits for the watcher's
// goroutine and gives back the connection, closing it unless a Read, a Write or another
// watcher of the source holds it. It is idempotent.
func (w *watcher) Stop() error {
	w.once.Do(func() {
		w.box.Close()
		w.cancel()
		w.wg.Wait()
		w.src.release()
	})
	return nil
}

// publish hands a new document to Next, replacing one not yet taken and any error.
func (w *watcher) publish(cs *source.ChangeSet) { w.box.Publish(cs) }

// fail hands a transient error to Next, unless the watcher is stopping.
func (w *watcher) fail(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.box.Fail(err)
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
func (w *watcher) start(c *connection) (*watch, error) {
	// The watch's context is its lifetime: the subscription ends when it is cancelled,
	// which the timer does if the watch has not started within the timeout.
	ctx, cancel := context.WithCancel(w.ctx)
	timer := time.AfterFunc(w.src.set.timeout, cancel)
	defer timer.Stop()
	fail := func(err error) (*watch, error) {
		cancel()
		if w.ctx.Err() == nil && errors.Is(err, context.Canceled) {
			err = context.DeadlineExceeded
		}
		return nil, w.src.errorf(err, "watch")
	}
	kv, err := w.src.bucket(ctx, c)
	if err != nil {
		return fail(err)
	}
	kw, err := kv.Watch(ctx, w.src.set.key)
	if err != nil {
		return fail(err)
	}
	wt := &watch{kw: kw, cancel: cancel}
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
				wt.stop()
				return fail(errWatchEnded)
			}
			if e != nil {
				initial = e
				continue
			}
			if !timer.Stop() {
				// The timer fired as the initial value came: too late.
				wt.stop()
				return fail(context.DeadlineExceeded)
			}
			if initial != nil {
				w.apply(initial, !baseline)
			} else if !baseline {
				w.apply(deleted{}, true)
			}
			return wt, nil
		case <-ctx.Done():
			wt.stop()
			return fail(ctx.Err())
		}
	}
}

// run follows the watch wt until Stop. When the watch ends, or the connection comes
// back after losing the server, it watches again.
func (w *watcher) run(c *connection, wt *watch) {
	defer w.wg.Done()
	for {
		switch w.follow(c, wt) {
		case stopped:
			return
		case ended:
			w.fail(w.src.errorf(errWatchEnded, "watch"))
			if !w.sleep(c, minBackoff) {
				return
			}
		}
		backoff := minBackoff
		for {
			var err error
			if wt, err = w.start(c); err == nil {
				break
			}
			w.fail(err)
			if !w.sleep(c, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// Why follow returned.
const (
	stopped     = iota // Stop was called
	ended              // the watch ended by itself
	reconnected        // the connection is back after it lost the server
)

// follow applies the updates of wt until Stop, until wt ends, or until the connection
// comes back after losing the server; while it is down, Next returns an error. It stops
// wt, and returns why it returned.
func (w *watcher) follow(c *connection, wt *watch) int {
	defer wt.stop()
	st, changed := c.state()
	returns := st.returns
	for {
		select {
		case <-w.ctx.Done():
			return stopped
		case <-changed:
			st, changed = c.state()
			if st.down != nil {
				w.fail(w.src.errorf(st.down, "watch"))
			} else if st.returns != returns {
				return reconnected
			}
		case e, ok := <-wt.kw.Updates():
			if !ok {
				if w.ctx.Err() != nil {
					return stopped
				}
				return ended
			}
			if e != nil {
				w.apply(e, true)
			}
		}
	}
}

// watch is one key-value watch of the key.
type watch struct {
	kw     jetstream.KeyWatcher
	cancel context.CancelFunc // ends the watch's context
}

// stop ends the watch, and takes what it still delivers until its channel is closed, so
// that the subscription's goroutine, which may be blocked delivering, can end.
func (wt *watch) stop() {
	wt.cancel()
	_ = wt.kw.Stop()
	for range wt.kw.Updates() {
	}
}

// sleep waits for d, or until Stop, or until the connection comes back after losing
// the server; it reports whether the watcher goes on.
func (w *watcher) sleep(c *connection, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	st, changed := c.state()
	returns := st.returns
	for {
		select {
		case <-t.C:
			return true
		case <-w.ctx.Done():
			return false
		case <-changed:
			if st, changed = c.state(); st.down == nil && st.returns != returns {
				return true
			}
		}
	}
}

// deleted is the entry of a key that has no value.
type deleted struct{ jetstream.KeyValueEntry }

func (deleted) Operation() jetstream.KeyValueOp { return jetstream.KeyValueDelete }
