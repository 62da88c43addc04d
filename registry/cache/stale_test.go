package cache_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
)

// recv waits for a signal on ch, failing the test after 5 s.
func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting: %s", what)
	}
}

// TestEventDuringLookupThenCreate: a lookup that raced a delete is stored expired; a later
// create result must not make that older answer (with the deleted node) fresh again.
func TestEventDuringLookupThenCreate(t *testing.T) {
	mem := registry.NewMemoryRegistry()
	_ = mem.Register(node("a"))
	s := &slowLookup{Registry: mem, looked: make(chan struct{}, 1), release: make(chan struct{}), applied: make(chan struct{}, 1)}
	c := cache.New(s)
	defer c.Stop()
	got := make(chan []*registry.Service, 1)
	go func() {
		res, _ := c.GetService("x")
		got <- res
	}()
	recv(t, s.looked, "the first lookup") // its answer (node a) is taken
	_ = mem.Deregister(node("a"))
	recv(t, s.applied, "the delete applied")
	close(s.release)
	<-got
	_ = mem.Register(node("b")) // create result: the service now has node b only
	recv(t, s.applied, "the create applied")
	res, err := c.GetService("x")
	if err != nil || len(res) != 1 || len(res[0].Nodes) != 1 || res[0].Nodes[0].Id != "b" {
		t.Fatalf("got %v %s, want node b only", err, ids(res))
	}
}

// restartable is a registry whose watch can be broken, and whose next watch starts only
// when the test lets it; its lookups wait for release.
type restartable struct {
	registry.Registry
	looked  chan struct{} // a lookup took its answer
	release chan struct{} // closed: lookups return
	asked   chan struct{} // a watch after the first was asked for
	rewatch chan struct{} // closed: that watch starts
	running chan struct{} // the cache waits on a watch that started after the first

	mu      sync.Mutex
	watches int
	first   *breakable
}

func (r *restartable) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	res, err := r.Registry.GetService(name, opts...)
	r.looked <- struct{}{}
	<-r.release
	return res, err
}

func (r *restartable) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	r.mu.Lock()
	r.watches++
	n := r.watches
	r.mu.Unlock()
	if n > 1 {
		r.asked <- struct{}{}
		<-r.rewatch
	}
	w, err := r.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	b := &breakable{Watcher: w, broken: make(chan struct{})}
	if n == 1 {
		r.mu.Lock()
		r.first = b
		r.mu.Unlock()
	} else {
		b.running = r.running
	}
	return b, nil
}

// breakable is a watcher that can be made to fail, as a lost connection would.
type breakable struct {
	registry.Watcher
	broken  chan struct{}
	once    sync.Once
	running chan struct{}
}

func (b *breakable) Next() (*registry.Result, error) {
	if b.running != nil {
		select {
		case b.running <- struct{}{}:
		default:
		}
	}
	r, err := b.Watcher.Next()
	select {
	case <-b.broken:
		return nil, errors.New("watch connection lost")
	default:
	}
	return r, err
}

func (b *breakable) fail() {
	b.once.Do(func() {
		close(b.broken)
		b.Watcher.Stop()
	})
}

// TestWatchRestartDuringLookup: a change made while no watch runs, after a lookup took its
// answer, is not hidden for a TTL when a new watch starts before the lookup is stored.
func TestWatchRestartDuringLookup(t *testing.T) {
	mem := registry.NewMemoryRegistry()
	_ = mem.Register(node("a"))
	r := &restartable{
		Registry: mem,
		looked:   make(chan struct{}, 1),
		release:  make(chan struct{}),
		asked:    make(chan struct{}, 1),
		rewatch:  make(chan struct{}),
		running:  make(chan struct{}, 1),
	}
	c := cache.New(r, cache.WithLogger(logger.NewLogger(logger.WithOutput(&testutil.SyncBuffer{}))))
	defer c.Stop()
	got := make(chan []*registry.Service, 1)
	go func() {
		res, _ := c.GetService("x")
		got <- res
	}()
	recv(t, r.looked, "the first lookup") // its answer (node a) is taken, under the first watch
	r.mu.Lock()
	first := r.first
	r.mu.Unlock()
	first.fail()
	recv(t, r.asked, "the cache asking for a new watch")
	_ = mem.Deregister(node("a")) // no watch runs: the cache cannot hear of it
	close(r.rewatch)
	recv(t, r.running, "the new watch running")
	close(r.release)
	<-got
	if res, err := c.GetService("x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("got %v %s, want ErrNotFound", err, ids(res))
	}
}

// ids lists the nodes of services as version/id@address, for failure messages.
func ids(services []*registry.Service) string {
	var b strings.Builder
	b.WriteByte('[')
	for _, s := range services {
		for _, n := range s.Nodes {
			if b.Len() > 1 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s/%s@%s", s.Version, n.Id, n.Address)
		}
	}
	b.WriteByte(']')
	return b.String()
}
