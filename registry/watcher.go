package registry

import (
	"context"
	"errors"
	"sync"
)

// ErrWatcherOverflow ends a watcher that fell too far behind; its owner should list the
// services again and start a new watch.
var ErrWatcherOverflow = errors.New("registry: watcher fell behind and was stopped")

// watcherQueue is how many results a watcher may have pending before it is ended.
const watcherQueue = 1024

// queueWatcher is the Watcher of the registries in this package: results are queued
// without blocking the registry, and read in order by Next.
type queueWatcher struct {
	service string
	onStop  func(*queueWatcher) // removes the watcher from its registry
	stopCtx func() bool

	mu      sync.Mutex
	queue   []*Result
	err     error
	wake    chan struct{}
	done    chan struct{}
	stopped bool
}

// newQueueWatcher returns a watcher of results for service ("" for all). onStop runs
// once, from Stop, without the watcher's lock.
func newQueueWatcher(o WatchOptions, onStop func(*queueWatcher)) *queueWatcher {
	return &queueWatcher{service: o.Service, onStop: onStop, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// stopWith makes the watcher stop when ctx ends. Call it after the watcher is known to
// its registry.
func (w *queueWatcher) stopWith(ctx context.Context) {
	if ctx == nil || ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(ctx, w.Stop)
	w.mu.Lock()
	w.stopCtx = stop // under w.mu: the AfterFunc may already be running Stop
	w.mu.Unlock()
}

// push queues the results that concern the watcher; it reports false when the watcher
// has ended (overflowed or stopped). It never blocks.
func (w *queueWatcher) push(events []*Result) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.stopped {
		return false
	}
	for _, e := range events {
		if w.service != "" && e.Service.Name != w.service {
			continue
		}
		if len(w.queue) >= watcherQueue {
			w.err = ErrWatcherOverflow
			w.queue = nil
			break
		}
		w.queue = append(w.queue, &Result{Action: e.Action, Service: CopyService(e.Service)})
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return w.err == nil
}

// Next returns the next result, waiting for one; after Stop it returns ErrWatcherStopped.
func (w *queueWatcher) Next() (*Result, error) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, ErrWatcherStopped
		}
		if len(w.queue) > 0 {
			r := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return r, nil
		}
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return nil, err
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.done:
		}
	}
}

// Stop ends the watcher; it is idempotent.
func (w *queueWatcher) Stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.queue = nil
	close(w.done)
	stopCtx := w.stopCtx
	w.mu.Unlock()
	if w.onStop != nil {
		w.onStop(w)
	}
	if stopCtx != nil {
		stopCtx()
	}
}
