package nats

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/registry"
)

const (
	// watchBuffer is how many messages a watcher's subscription holds before NATS counts
	// it as a slow consumer; the watcher then ends with registry.ErrWatcherOverflow.
	watchBuffer = 4096
	// watcherQueue is how many results a watcher may have pending before it is ended with
	// registry.ErrWatcherOverflow.
	watcherQueue = 1024
)

type nodeKey struct{ name, version, id string }

type seenNode struct {
	service *registry.Service // holding this node only; never modified
	expires time.Time         // zero: never
}

// table is what a watcher knows of the nodes it has seen. It is used by the watcher's
// goroutine only.
type table struct {
	service string // only this service, when set
	nodes   map[nodeKey]*seenNode
	next    time.Time // no node expires before it; zero: none expires
}

func newTable(service string) *table {
	return &table{service: service, nodes: make(map[nodeKey]*seenNode)}
}

func (t *table) noteExpiry(at time.Time) {
	if !at.IsZero() && (t.next.IsZero() || at.Before(t.next)) {
		t.next = at
	}
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// single returns a service holding only node n of s.
func single(s *registry.Service, n *registry.Node) *registry.Service {
	return &registry.Service{Name: s.Name, Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints, Nodes: []*registry.Node{n}}
}

// changed reports whether b differs from a in anything a watcher reports.
func changed(a, b *registry.Service) bool {
	na, nb := a.Nodes[0], b.Nodes[0]
	return na.Address != nb.Address || !maps.Equal(na.Metadata, nb.Metadata) ||
		!maps.Equal(a.Metadata, b.Metadata) || !reflect.DeepEqual(a.Endpoints, b.Endpoints)
}

// announce applies an announcement and returns the results to report: "create" for a
// node not seen before, "update" for a change, nothing for a renewal, and "delete" for a
// deregistration (also of nodes not seen: another watcher may have seen them).
func (t *table) announce(a announcement, now time.Time) []*registry.Result {
	s := a.service
	if (t.service != "" && s.Name != t.service) || len(s.Nodes) == 0 {
		return nil
	}
	if a.action == "delete" {
		for _, n := range s.Nodes {
			delete(t.nodes, nodeKey{s.Name, s.Version, n.Id})
		}
		return []*registry.Result{{Action: "delete", Service: registry.CopyService(s)}}
	}
	var out []*registry.Result
	for i, n := range s.Nodes {
		k := nodeKey{s.Name, s.Version, n.Id}
		one := single(s, n)
		action := ""
		if old, ok := t.nodes[k]; !ok {
			action = "create"
		} else if changed(old.service, one) {
			action = "update"
		}
		exp := expiry(now, a.ttls[i])
		t.nodes[k] = &seenNode{service: one, expires: exp}
		t.noteExpiry(exp)
		if action != "" {
			out = append(out, &registry.Result{Action: action, Service: registry.CopyService(one)})
		}
	}
	return out
}

// seed learns the nodes of a lookup answer that it does not know yet, without reporting
// them: they existed before the watch began, and now their expiry is known.
func (t *table) seed(s *registry.Service, ttls []time.Duration, now time.Time) {
	if t.service != "" && s.Name != t.service {
		return
	}
	for i, n := range s.Nodes {
		k := nodeKey{s.Name, s.Version, n.Id}
		if _, ok := t.nodes[k]; ok {
			continue
		}
		exp := expiry(now, ttls[i])
		t.nodes[k] = &seenNode{service: single(s, n), expires: exp}
		t.noteExpiry(exp)
	}
}

// expire forgets the nodes whose TTL passed by now and returns their deletes, earliest
// first; it sets next to the earliest expiry left.
func (t *table) expire(now time.Time) []*registry.Result {
	type gone struct {
		k nodeKey
		n *seenNode
	}
	var expired []gone
	t.next = time.Time{}
	for k, n := range t.nodes {
		switch {
		case n.expires.IsZero():
		case !n.expires.After(now):
			expired = append(expired, gone{k, n})
			delete(t.nodes, k)
		default:
			t.noteExpiry(n.expires)
		}
	}
	sort.Slice(expired, func(i, j int) bool {
		a, b := expired[i], expired[j]
		if !a.n.expires.Equal(b.n.expires) {
			return a.n.expires.Before(b.n.expires)
		}
		if a.k.name != b.k.name {
			return a.k.name < b.k.name
		}
		if a.k.version != b.k.version {
			return a.k.version < b.k.version
		}
		return a.k.id < b.k.id
	})
	out := make([]*registry.Result, len(expired))
	for i, g := range expired {
		out[i] = &registry.Result{Action: "delete", Service: registry.CopyService(g.n.service)}
	}
	return out
}

// watcher is a registry.Watcher. Its goroutine (run) owns the subscriptions and the
// table; Next reads the queue it fills.
type watcher struct {
	reg     *natsRegistry
	conn    *connection
	ch      chan *nats.Msg
	sub     *nats.Subscription // the watch subject
	seedSub *nats.Subscription // the reply inbox of the seeding lookup; nil after it
	slow    <-chan nats.SubStatus
	window  time.Duration
	table   *table

	mu      sync.Mutex
	queue   []*registry.Result
	err     error
	stopped bool
	stopCtx func() bool
	wake    chan struct{}

	stopOnce sync.Once
	done     chan struct{} // closed by Stop
	exited   chan struct{} // closed when run returns
}

// run applies messages and expiries until Stop, the connection's end or an overflow.
func (w *watcher) run() {
	defer close(w.exited)
	defer func() {
		_ = w.sub.Unsubscribe()
		if w.seedSub != nil {
			_ = w.seedSub.Unsubscribe()
		}
	}()
	seedEnd := time.NewTimer(w.window)
	defer seedEnd.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var armed time.Time // when timer fires; zero: stopped
	slow := w.slow
	for {
		var results []*registry.Result
		select {
		case m := <-w.ch:
			now := time.Now()
			if m.Sub == w.sub {
				if a, err := decodeAnnouncement(m.Data); err == nil {
					results = w.table.announce(a, now)
				}
			} else if w.seedSub != nil && m.Sub == w.seedSub {
				if s, ttls, err := decodeAnswer(m.Data); err == nil {
					w.table.seed(s, ttls, now)
				}
			}
		case <-seedEnd.C:
			_ = w.seedSub.Unsubscribe()
			w.seedSub = nil
		case <-timer.C:
			armed = time.Time{}
			results = w.table.expire(time.Now())
		case st, ok := <-slow:
			if !ok {
				slow = nil // the subscription closed: the connection ended, or Stop
				continue
			}
			if st == nats.SubscriptionSlowConsumer {
				w.fail(registry.ErrWatcherOverflow)
				return
			}
		case <-w.conn.lost:
			w.fail(fmt.Errorf("%w: the NATS connection closed", ErrUnavailable))
			return
		case <-w.done:
			return
		}
		if next := w.table.next; !next.IsZero() && (armed.IsZero() || next.Before(armed)) {
			armed = next
			timer.Reset(time.Until(next))
		}
		if len(results) > 0 && !w.push(results) {
			return
		}
	}
}

// push queues results; it reports false when the watcher has ended.
func (w *watcher) push(results []*registry.Result) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.err != nil {
		return false
	}
	if len(w.queue)+len(results) > watcherQueue {
		w.err = registry.ErrWatcherOverflow
		w.queue = nil
	} else {
		w.queue = append(w.queue, results...)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return w.err == nil
}

// fail ends the watcher with err, after the results already queued.
func (w *watcher) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Next returns the next result, in the order the watcher saw them, waiting for one. After
// Stop it returns registry.ErrWatcherStopped; a watcher that fell more than 1024 results
// (or 4096 messages) behind returns registry.ErrWatcherOverflow, and one whose NATS
// connection closed returns an error matching ErrUnavailable.
func (w *watcher) Next() (*registry.Result, error) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, registry.ErrWatcherStopped
		}
		if len(w.queue) > 0 {
			r := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return r, nil
		}
		if err := w.err; err != nil {
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

// Stop ends the watcher: its goroutine has returned and its subscriptions are gone when
// Stop returns. It is idempotent and safe for concurrent use.
func (w *watcher) Stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.queue = nil
		stopCtx := w.stopCtx
		w.mu.Unlock()
		close(w.done)
		<-w.exited
		w.reg.forget(w)
		if stopCtx != nil {
			stopCtx()
		}
	})
}
