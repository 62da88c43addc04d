package cache_test

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flaky wraps a registry and can be made to fail lookups: the registry outage is a fault
// the memory registry cannot have for real.
type flaky struct {
	registry.Registry
	down    atomic.Bool
	lookups atomic.Int64
}

func (f *flaky) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	f.lookups.Add(1)
	if f.down.Load() {
		return nil, errors.New("registry unreachable")
	}
	return f.Registry.GetService(name, opts...)
}

func node(id string) *registry.Service {
	return &registry.Service{Name: "x", Version: "1", Nodes: []*registry.Node{{Id: id, Address: id}}}
}

func TestServesFromMemoryAndStaleWhenDown(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	_ = f.Register(node("a"))
	var logs testutil.SyncBuffer
	c := cache.New(f, cache.WithTTL(50*time.Millisecond), cache.WithMinimumRetryInterval(time.Hour), cache.WithLogger(logger.NewLogger(logger.WithOutput(&logs))))
	defer c.Stop()
	for i := 0; i < 10; i++ {
		if got, err := c.GetService("x"); err != nil || got[0].Nodes[0].Id != "a" {
			t.Fatal(err)
		}
	}
	if n := f.lookups.Load(); n != 1 {
		t.Fatalf("%d backend lookups for 10 cached reads", n)
	}
	f.down.Store(true)
	testutil.Eventually(t, 2*time.Second, func() bool {
		got, err := c.GetService("x")
		return err == nil && got[0].Nodes[0].Id == "a" && f.lookups.Load() == 2
	}, "stale entry served after the TTL while the registry is down")
	for i := 0; i < 100; i++ {
		if _, err := c.GetService("x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.lookups.Load(); n != 2 {
		t.Fatalf("the registry was asked %d times while down", n)
	}
	if s := logs.String(); bytes.Count([]byte(s), []byte("serving cached nodes")) != 1 {
		t.Fatalf("want one warning, logs:\n%s", s)
	}
	if _, err := c.GetService("never-seen"); err == nil {
		t.Fatal("a lookup with no cache and no registry succeeded")
	}
}

// TestWatchKeepsEntriesFresh: create, update and delete results, and the delete the
// memory registry emits when a registration's TTL runs out, reach the cached entry with
// no lookup beyond the first.
func TestWatchKeepsEntriesFresh(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	_ = f.Register(node("a"))
	c := cache.New(f)
	defer c.Stop()
	if _, err := c.GetService("x"); err != nil {
		t.Fatal(err)
	}
	moved := node("a")
	moved.Nodes[0].Address = "a2"
	for _, step := range []struct {
		name   string
		change func() error
		want   string
	}{
		{"create", func() error { return f.Register(node("b")) }, "[1/a@a 1/b@b]"},
		{"update", func() error { return f.Register(moved) }, "[1/a@a2 1/b@b]"},
		{"delete", func() error { return f.Deregister(node("b")) }, "[1/a@a2]"},
		{"create with a TTL", func() error { return f.Register(node("c"), registry.RegisterTTL(100*time.Millisecond)) }, "[1/a@a2 1/c@c]"},
		{"TTL expiry", func() error { return nil }, "[1/a@a2]"},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		testutil.Eventually(t, 2*time.Second, func() bool {
			got, err := c.GetService("x")
			return err == nil && sortedIDs(got) == step.want
		}, step.name+" reaches the cache")
	}
	if n := f.lookups.Load(); n != 1 {
		t.Fatalf("%d registry lookups, want 1: results should have kept the entry fresh", n)
	}
	_ = f.Deregister(moved)
	testutil.Eventually(t, 2*time.Second, func() bool {
		_, err := c.GetService("x")
		return errors.Is(err, registry.ErrNotFound)
	}, "the service disappears")
}

// sortedIDs is ids with the nodes sorted by id.
func sortedIDs(services []*registry.Service) string {
	var all []*registry.Node
	for _, s := range services {
		for _, n := range s.Nodes {
			all = append(all, &registry.Node{Id: s.Version + "/" + n.Id, Address: n.Address})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Id < all[j].Id })
	parts := make([]string, len(all))
	for i, n := range all {
		parts[i] = n.Id + "@" + n.Address
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestOneWarningPerOutage: the stale-serving warning is logged once per outage, again
// for a new outage after the registry answered.
func TestOneWarningPerOutage(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	_ = f.Register(node("a"))
	var logs testutil.SyncBuffer
	c := cache.New(f, cache.WithTTL(20*time.Millisecond), cache.WithMinimumRetryInterval(20*time.Millisecond),
		cache.WithLogger(logger.NewLogger(logger.WithOutput(&logs))))
	defer c.Stop()
	warnings := func() int { return strings.Count(logs.String(), "serving cached nodes") }
	if _, err := c.GetService("x"); err != nil {
		t.Fatal(err)
	}
	for outage := 1; outage <= 2; outage++ {
		f.down.Store(true)
		testutil.Eventually(t, 2*time.Second, func() bool {
			got, err := c.GetService("x")
			if err != nil || len(got) != 1 || got[0].Nodes[0].Id != "a" {
				t.Fatalf("outage %d: got %v %s, want the stale node a", outage, err, ids(got))
			}
			return warnings() == outage
		}, "a warning for the outage")
		before := f.lookups.Load()
		for i := 0; i < 3; i++ { // a few retry intervals
			after := f.lookups.Load()
			testutil.Eventually(t, 2*time.Second, func() bool {
				_, _ = c.GetService("x")
				return f.lookups.Load() > after
			}, "the registry asked again after the retry interval")
		}
		if n := warnings(); n != outage {
			t.Fatalf("outage %d: %d warnings after %d more failed lookups, want %d", outage, n, f.lookups.Load()-before, outage)
		}
		f.down.Store(false)
		up := f.lookups.Load()
		testutil.Eventually(t, 2*time.Second, func() bool {
			_, _ = c.GetService("x")
			return f.lookups.Load() > up
		}, "a lookup that succeeds")
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	_ = f.Register(node("a"))
	c := cache.New(f)
	defer c.Stop()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.GetService("x"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.lookups.Load(); n > 5 {
		t.Fatalf("%d backend lookups for 50 concurrent misses", n)
	}
}

// warmCache returns a cache over a memory registry holding service x with three nodes,
// already looked up once.
func warmCache(b *testing.B) cache.Cache {
	r := registry.NewMemoryRegistry()
	for _, id := range []string{"a", "b", "c"} {
		_ = r.Register(node(id))
	}
	c := cache.New(r)
	b.Cleanup(c.Stop)
	if got, err := c.GetService("x"); err != nil || len(got[0].Nodes) != 3 {
		b.Fatalf("warm-up: %v %v", got, err)
	}
	return c
}

// BenchmarkCachedLookup is GetService of a warm entry: the hit path of every Select.
// Target (issue 4): no allocation, well under 1 µs.
func BenchmarkCachedLookup(b *testing.B) {
	c := warmCache(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.GetService("x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedLookupParallel is BenchmarkCachedLookup from GOMAXPROCS goroutines at
// once: readers must not contend.
func BenchmarkCachedLookupParallel(b *testing.B) {
	c := warmCache(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetService("x"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func ExampleNew() {
	r := registry.NewMemoryRegistry()
	_ = r.Register(&registry.Service{Name: "greeter", Nodes: []*registry.Node{{Id: "1", Address: "127.0.0.1:8080"}}})
	c := cache.New(r)
	defer c.Stop()
	services, _ := c.GetService("greeter")
	fmt.Println(services[0].Nodes[0].Address)
	// Output: 127.0.0.1:8080
}

// TestFailureWithNothingStale: with nothing cached, a failed lookup returns the registry's
// error (not ErrNotFound), and the registry is not asked again before the retry interval.
func TestFailureWithNothingStale(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	f.down.Store(true)
	c := cache.New(f, cache.WithMinimumRetryInterval(time.Hour), cache.WithLogger(logger.NewLogger(logger.WithOutput(&testutil.SyncBuffer{}))))
	defer c.Stop()
	for i := 0; i < 10; i++ {
		_, err := c.GetService("x")
		if err == nil || errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("call %d: got %v, want the registry's error", i, err)
		}
	}
	if n := f.lookups.Load(); n != 1 {
		t.Fatalf("the registry was asked %d times within the retry interval", n)
	}
}

// slowLookup returns a lookup's answer only when released, and reports each watch
// result its watcher has handed over and the cache has finished with (the next Next).
type slowLookup struct {
	registry.Registry
	looked  chan struct{}
	release chan struct{}
	applied chan struct{}
}

func (s *slowLookup) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	res, err := s.Registry.GetService(name, opts...)
	s.looked <- struct{}{}
	<-s.release
	return res, err
}

func (s *slowLookup) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := s.Registry.Watch(opts...)
	if err != nil {
		return nil, err
	}
	return &signalWatcher{Watcher: w, applied: s.applied}, nil
}

type signalWatcher struct {
	registry.Watcher
	applied chan struct{}
	handed  bool
}

func (w *signalWatcher) Next() (*registry.Result, error) {
	if w.handed {
		// the cache asks for the next result only once it applied the last one
		select {
		case w.applied <- struct{}{}:
		default:
		}
	}
	r, err := w.Watcher.Next()
	w.handed = err == nil
	return r, err
}

// TestLookupRacingAWatchEvent: a change that arrives while a lookup is under way is not
// hidden for a TTL by the lookup's older answer.
func TestLookupRacingAWatchEvent(t *testing.T) {
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
	<-s.looked // the answer (node a only) is taken
	_ = mem.Register(node("b"))
	select {
	case <-s.applied:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch result was not applied")
	}
	close(s.release)
	if res := <-got; len(res) != 1 || len(res[0].Nodes) != 1 {
		t.Fatalf("first lookup: %+v", res)
	}
	// the next lookup must not trust the older answer (looked has room for its signal)
	res, err := c.GetService("x")
	if err != nil || len(res) != 1 || len(res[0].Nodes) != 2 {
		t.Fatalf("after the change: %v %+v", err, res)
	}
}
