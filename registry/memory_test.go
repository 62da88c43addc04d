package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func svc(name, version string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Endpoints: []*registry.Endpoint{{Name: "A.B", Metadata: map[string]string{"k": "v"}}}}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, &registry.Node{Id: n, Address: n + ":1", Metadata: map[string]string{"n": n}})
	}
	return s
}

func next(t *testing.T, w registry.Watcher) *registry.Result {
	t.Helper()
	ch := make(chan *registry.Result, 1)
	go func() {
		r, err := w.Next()
		if err != nil {
			ch <- nil
			return
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		if r == nil {
			t.Fatal("watcher ended")
		}
		return r
	case <-time.After(3 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

func TestRegisterLookupDeregister(t *testing.T) {
	r := registry.NewMemoryRegistry()
	if _, err := r.GetService("x"); err != registry.ErrNotFound {
		t.Fatalf("got %v", err)
	}
	w, _ := r.Watch()
	defer w.Stop()
	if err := r.Register(svc("x", "1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Action != "create" || len(ev.Service.Nodes) != 2 {
		t.Fatalf("%+v", ev)
	}
	_ = r.Register(svc("x", "2", "c"))
	if ev := next(t, w); ev.Action != "create" || ev.Service.Version != "2" {
		t.Fatalf("%+v", ev)
	}
	got, _ := r.GetService("x")
	if len(got) != 2 || got[0].Version != "1" || len(got[0].Nodes) != 2 || got[0].Endpoints[0].Metadata["k"] != "v" {
		t.Fatalf("%+v", got)
	}
	// re-register with new metadata: update
	s := svc("x", "1", "a")
	s.Nodes[0].Metadata["n"] = "changed"
	_ = r.Register(s)
	if ev := next(t, w); ev.Action != "update" {
		t.Fatalf("%+v", ev)
	}
	// callers cannot change the registry through returned or given pointers
	got, _ = r.GetService("x")
	got[0].Nodes[0].Address = "mutated"
	s.Nodes[0].Address = "mutated too"
	again, _ := r.GetService("x")
	if again[0].Nodes[0].Address == "mutated" || again[0].Nodes[0].Address == "mutated too" {
		t.Fatal("registry state shared with callers")
	}
	_ = r.Deregister(svc("x", "1", "a", "b"))
	if ev := next(t, w); ev.Action != "delete" || len(ev.Service.Nodes) != 2 {
		t.Fatalf("%+v", ev)
	}
	_ = r.Deregister(svc("x", "2", "c"))
	next(t, w)
	if _, err := r.GetService("x"); err != registry.ErrNotFound {
		t.Fatalf("got %v", err)
	}
	list, _ := r.ListServices()
	if len(list) != 0 {
		t.Fatalf("%v", list)
	}
}

// TestTTLExpiry: a node that is not renewed disappears and watchers see the delete (D1).
func TestTTLExpiry(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch(registry.WatchService("x"))
	defer w.Stop()
	start := time.Now()
	_ = r.Register(svc("x", "1", "a"), registry.RegisterTTL(200*time.Millisecond))
	_ = r.Register(svc("x", "1", "b"))
	next(t, w)
	next(t, w)
	ev := next(t, w)
	if ev.Action != "delete" || ev.Service.Nodes[0].Id != "a" {
		t.Fatalf("%+v", ev)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > time.Second {
		t.Fatalf("expired after %s", d)
	}
	got, _ := r.GetService("x")
	if len(got[0].Nodes) != 1 || got[0].Nodes[0].Id != "b" {
		t.Fatalf("%+v", got[0].Nodes)
	}
}

func TestRenewalKeepsNode(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for i := 0; i < 5; i++ {
		_ = r.Register(svc("x", "1", "a"), registry.RegisterTTL(150*time.Millisecond))
		time.Sleep(60 * time.Millisecond) // renewal interval, not synchronisation
	}
	if _, err := r.GetService("x"); err != nil {
		t.Fatal("a renewed node expired")
	}
	_ = r.Deregister(svc("x", "1", "a"))
}

func TestWatcherStopAndContext(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch()
	w.Stop()
	w.Stop()
	if _, err := w.Next(); err != registry.ErrWatcherStopped {
		t.Fatalf("got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w2, _ := r.Watch(registry.WatchContext(ctx))
	cancel()
	if _, err := w2.Next(); err != registry.ErrWatcherStopped {
		t.Fatalf("got %v", err)
	}
}

func TestWatcherOverflowIsAnError(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch()
	defer w.Stop()
	for i := 0; i < 1100; i++ {
		_ = r.Register(svc(fmt.Sprint("s", i), "1", "a"))
	}
	_, err := w.Next()
	if !errors.Is(err, registry.ErrWatcherOverflow) {
		t.Fatalf("got %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := registry.NewMemoryRegistry()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w, _ := r.Watch()
			defer w.Stop()
			for j := 0; j < 100; j++ {
				s := svc("x", "1", fmt.Sprint(i, "-", j))
				_ = r.Register(s, registry.RegisterTTL(time.Second))
				_, _ = r.GetService("x")
				_, _ = r.ListServices()
				_ = r.Deregister(s)
			}
		}(i)
	}
	wg.Wait()
}

func TestPreload(t *testing.T) {
	r := registry.NewMemoryRegistry(registry.Services(map[string][]*registry.Service{"x": {svc("x", "1", "a")}}))
	if got, err := r.GetService("x"); err != nil || got[0].Nodes[0].Id != "a" {
		t.Fatal(err)
	}
}

func BenchmarkGetService(b *testing.B) {
	r := registry.NewMemoryRegistry()
	_ = r.Register(svc("x", "1", "a", "b", "c"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = r.GetService("x")
	}
}

func ExampleNewMemoryRegistry() {
	r := registry.NewMemoryRegistry()
	_ = r.Register(&registry.Service{Name: "greeter", Version: "1", Nodes: []*registry.Node{{Id: "greeter-1", Address: "127.0.0.1:8080"}}})
	services, _ := r.GetService("greeter")
	fmt.Println(services[0].Nodes[0].Address)
	// Output: 127.0.0.1:8080
}
