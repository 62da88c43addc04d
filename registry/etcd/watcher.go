package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/registry"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrWatchEnded is returned (wrapped, with etcd's reason) by Watcher.Next when etcd ended
// the watch, for example because the revisions it needed were compacted. The owner should
// look the services up again and start a new watch, as registry/cache does.
var ErrWatchEnded = errors.New("registry/etcd: watch ended")

// Watch watches the nodes of one service (registry.WatchService) or of all, from now on:
// it returns once etcd has set the watch up, within the registry's Timeout, so no change
// made after Watch returns is missed. Results come in etcd's order: "create" for a new
// node, "update" for a changed one, "delete" for a node deregistered or whose lease
// expired, each with a service holding that one node. The watcher ends with Stop, with
// the context of registry.WatchContext, or with Close of the registry.
func (r *etcdRegistry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	c, err := r.client()
	if err != nil {
		return nil, err
	}
	prefix := Prefix
	if o.Service != "" {
		prefix = servicePrefix(o.Service)
	}
	// The etcd client's Watch blocks until its stream is up: the timer bounds it, and the
	// wait for etcd's creation notice, by cancelling the watch.
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(c.timeout, cancel)
	ew := clientv3.NewWatcher(c.cli)
	fail := func(err error) (registry.Watcher, error) {
		timer.Stop()
		cancel()
		_ = ew.Close()
		return nil, c.errorf(err, "watch %s", prefix)
	}
	var stopCtx func() bool
	if o.Context != nil && o.Context.Done() != nil {
		stopCtx = context.AfterFunc(o.Context, cancel)
	}
	ch := ew.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	resp, ok := <-ch
	inTime := timer.Stop()
	created := (stopCtx == nil || stopCtx()) && inTime
	switch {
	case !created && o.Context != nil && o.Context.Err() != nil:
		return fail(o.Context.Err())
	case !created:
		return fail(context.DeadlineExceeded)
	case !ok:
		return fail(errors.New("watch channel closed"))
	case resp.Err() != nil:
		return fail(resp.Err())
	case !resp.Created:
		return fail(errors.New("no creation notice"))
	}

	w := &watcher{reg: r, service: o.Service, ew: ew, ch: ch, cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fail(ErrClosed)
	}
	r.watchers[w] = struct{}{}
	r.mu.Unlock()
	if o.Context != nil && o.Context.Done() != nil {
		stop := context.AfterFunc(o.Context, w.Stop)
		w.mu.Lock()
		w.stopCtx = stop // under w.mu: the AfterFunc may already be running Stop
		w.mu.Unlock()
	}
	return w, nil
}

// watcher reads an etcd watch in the goroutine that calls Next; the etcd client's own
// goroutines for it end with Stop.
type watcher struct {
	reg     *etcdRegistry
	service string
	ew      clientv3.Watcher
	ch      clientv3.WatchChan
	cancel  context.CancelFunc

	nextMu  sync.Mutex // serialises Next, which owns pending
	pending []*registry.Result

	mu      sync.Mutex
	stopped bool
	done    chan struct{}
	stopCtx func() bool
}

// Next returns the next result, waiting for one. After Stop it returns
// registry.ErrWatcherStopped; when etcd ends the watch, an error wrapping ErrWatchEnded.
func (w *watcher) Next() (*registry.Result, error) {
	w.nextMu.Lock()
	defer w.nextMu.Unlock()
	for {
		select {
		case <-w.done:
			return nil, registry.ErrWatcherStopped
		default:
		}
		if len(w.pending) > 0 {
			r := w.pending[0]
			w.pending[0] = nil
			w.pending = w.pending[1:]
			return r, nil
		}
		select {
		case <-w.done:
			return nil, registry.ErrWatcherStopped
		case resp, ok := <-w.ch:
			if !ok {
				select {
				case <-w.done:
					return nil, registry.ErrWatcherStopped
				default:
				}
				return nil, fmt.Errorf("%w: the connection was closed", ErrWatchEnded)
			}
			if err := resp.Err(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrWatchEnded, err)
			}
			if resp.Canceled {
				return nil, fmt.Errorf("%w: cancelled by etcd", ErrWatchEnded)
			}
			for _, ev := range resp.Events {
				if r := w.result(ev); r != nil {
					w.pending = append(w.pending, r)
				}
			}
		}
	}
}

// result turns an etcd event into a registry result, or nil for an event that concerns no
// node of the watched service.
func (w *watcher) result(ev *clientv3.Event) *registry.Result {
	var (
		s      *registry.Service
		err    error
		action string
	)
	switch ev.Type {
	case mvccpb.PUT:
		action = "update"
		if ev.IsCreate() {
			action = "create"
		}
		s, err = decode(ev.Kv.Value)
	case mvccpb.DELETE:
		action = "delete"
		if ev.PrevKv != nil {
			s, err = decode(ev.PrevKv.Value)
		} else if s, err = fromKey(string(ev.Kv.Key)); err == nil && w.service != "" && s.Name == escape(w.service) {
			s.Name = w.service
		}
	default:
		return nil
	}
	if err != nil || (w.service != "" && s.Name != w.service) {
		return nil
	}
	return &registry.Result{Action: action, Service: s}
}

// fromKey describes a deleted node whose value is unknown: the service name and node id
// as stored in the key (with "-" for any slash).
func fromKey(key string) (*registry.Service, error) {
	name, id, ok := strings.Cut(strings.TrimPrefix(key, Prefix), "/")
	if !ok || name == "" || id == "" {
		return nil, errors.New("registry/etcd: not a node key")
	}
	return &registry.Service{Name: name, Nodes: []*registry.Node{{Id: id}}}, nil
}

// Stop ends the watcher and the etcd client's goroutines for it; it is idempotent.
func (w *watcher) Stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	close(w.done)
	stopCtx := w.stopCtx
	w.mu.Unlock()
	w.cancel()
	_ = w.ew.Close()
	if stopCtx != nil {
		stopCtx()
	}
	w.reg.mu.Lock()
	delete(w.reg.watchers, w)
	w.reg.mu.Unlock()
}
