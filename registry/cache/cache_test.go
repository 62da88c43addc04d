package cache_test

import (
	"bytes"
	"errors"
	"fmt"
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

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServesFromMemoryAndStaleWhenDown(t *testing.T) {
	f := &flaky{Registry: registry.NewMemoryRegistry()}
	_ = f.Register(node("a"))
	var logs syncBuf
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

func TestWatchKeepsEntriesFresh(t *testing.T) {
	r := registry.NewMemoryRegistry()
	_ = r.Register(node("a"))
	c := cache.New(r)
	defer c.Stop()
	if _, err := c.GetService("x"); err != nil {
		t.Fatal(err)
	}
	_ = r.Register(node("b"))
	testutil.Eventually(t, 2*time.Second, func() bool {
		got, _ := c.GetService("x")
		return len(got) == 1 && len(got[0].Nodes) == 2
	}, "the new node appears")
	_ = r.Deregister(node("a"))
	testutil.Eventually(t, 2*time.Second, func() bool {
		got, _ := c.GetService("x")
		return len(got) == 1 && len(got[0].Nodes) == 1 && got[0].Nodes[0].Id == "b"
	}, "the deregistered node disappears")
	_ = r.Deregister(node("b"))
	testutil.Eventually(t, 2*time.Second, func() bool {
		_, err := c.GetService("x")
		return errors.Is(err, registry.ErrNotFound)
	}, "the service disappears")
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

func BenchmarkGetServiceCached(b *testing.B) {
	r := registry.NewMemoryRegistry()
	_ = r.Register(node("a"))
	c := cache.New(r)
	defer c.Stop()
	_, _ = c.GetService("x")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = c.GetService("x")
	}
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
	c := cache.New(f, cache.WithMinimumRetryInterval(time.Hour), cache.WithLogger(logger.NewLogger(logger.WithOutput(&syncBuf{}))))
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
