package etcd

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/pending"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// minBackoff and maxBackoff bound the waits between attempts while etcd fails.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// minQuiet is the shortest quiet time after which a watcher checks etcd.
	minQuiet = time.Second
)

// errWatchClosed ends a watch whose channel the etcd client closed.
var errWatchClosed = errors.New("the watch channel was closed")

// watcher follows the prefix in one goroutine (run), which publishes each new document
// for Next; it holds the source's client until Stop.
type watcher struct {
	src    *etcdSource
	cli    *clientv3.Client
	ew     clientv3.Watcher
	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sum    string // checksum of the last document published; run's goroutine only

	box  *pending.Box // what Next has not returned yet
	once sync.Once
}

// Next returns the next version of the document, waiting for one. While etcd cannot be
// read it returns errors, and goes on; after Stop it returns source.ErrWatcherStopped.
func (w *watcher) Next() (*source.ChangeSet, error) { return w.box.Next() }

// Stop ends the watcher: it unblocks Next, ends the watch, waits for the watcher's
// goroutine and gives back the client. It is idempotent.
func (w *watcher) Stop() error {
	w.once.Do(func() {
		w.box.Close()
		w.cancel()
		w.wg.Wait()
		_ = w.ew.Close()
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

// run follows the prefix from revision rev+1 until Stop, watching again after each watch
// that ends.
func (w *watcher) run(rev int64) {
	defer w.wg.Done()
	backoff := minBackoff
	for {
		progressed, err := w.follow(rev)
		if w.ctx.Err() != nil {
			return
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			w.fail(w.src.errorf(err, "watch %q", w.src.lay.prefix))
		}
		if progressed {
			backoff = minBackoff
		}
		for {
			if !w.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			r, err := w.refresh(0)
			if err == nil {
				rev = r
				break
			}
			w.fail(err)
		}
	}
}

// follow watches the prefix from revision rev+1, re-reading the document on each change,
// until the watch ends or Stop. It checks etcd when the watch is quiet. It returns why
// whether the watch delivered anything, and why it ended.
func (w *watcher) follow(rev int64) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(w.ctx))
	defer cancel()
	wch := w.ew.Watch(ctx, w.src.lay.rangeKey(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	quiet := max(w.src.timeout, minQuiet)
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	failing := false // the last read or check failed: retry sooner, with a full read
	backoff := minBackoff
	// result records the outcome of a read or check, and sets the timer accordingly.
	result := func(err error) {
		if err == nil {
			failing, backoff = false, minBackoff
			timer.Reset(quiet)
			return
		}
		w.fail(err)
		failing = true
		timer.Reset(backoff)
		backoff = min(2*backoff, maxBackoff)
	}
	for {
		select {
		case <-w.ctx.Done():
			return progressed, nil
		case resp, ok := <-wch:
			if !ok {
				return progressed, errWatchClosed
			}
			target, end := take(resp)
			// Read once for all the responses already waiting.
		drain:
			for end == nil {
				select {
				case resp, ok := <-wch:
					if !ok {
						end = errWatchClosed
						break drain
					}
					t, e := take(resp)
					target, end = max(target, t), e
				default:
					break drain
				}
			}
			if end == nil || target > 0 {
				progressed = true
			}
			if target > 0 {
				_, err := w.refresh(target)
				result(err)
			} else if !failing {
				timer.Reset(quiet)
			}
			if end != nil {
				return progressed, end
			}
		case <-timer.C:
			if failing {
				_, err := w.refresh(0)
				result(err)
			} else {
				result(w.check())
			}
		}
	}
}

// take returns the revision to read for a watch response (0 when it holds no change),
// and the reason the watch ended if it did.
func take(resp clientv3.WatchResponse) (int64, error) {
	var target int64
	if len(resp.Events) > 0 && resp.Header != nil {
		target = resp.Header.Revision
	}
	if err := resp.Err(); err != nil {
		return target, err
	}
	if resp.Canceled {
		return target, errors.New("the watch was cancelled")
	}
	return target, nil
}

// refresh reads the document at revision rev (the newest when 0, or when rev has been
// compacted) and publishes it if it changed. It returns the revision read.
func (w *watcher) refresh(rev int64) (int64, error) {
	cs, r, err := w.src.read(w.ctx, w.cli, rev)
	if err != nil && rev > 0 && errors.Is(err, rpctypes.ErrCompacted) {
		cs, r, err = w.src.read(w.ctx, w.cli, 0)
	}
	if err != nil {
		return 0, err
	}
	if cs.Checksum != w.sum {
		w.sum = cs.Checksum
		w.publish(cs)
	}
	return r, nil
}

// check asks etcd for the number of keys under the prefix, to learn whether it answers.
func (w *watcher) check() error {
	ctx, cancel := context.WithTimeout(w.ctx, w.src.timeout)
	defer cancel()
	if _, err := w.cli.Get(ctx, w.src.lay.rangeKey(), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return w.src.errorf(err, "check %q", w.src.lay.prefix)
	}
	return nil
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
