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
	// six renewals 100 ms apart outlive the 300 ms TTL, with 200 ms to spare
	for i := 0; i < 6; i++ {
		_ = r.Register(svc("x", "1", "a"), registry.RegisterTTL(300*time.Millisecond))
		time.Sleep(100 * time.Millisecond) // renewal interval, not synchronisation
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

// TestWatchContextAlreadyDone: a watch whose context has already ended is stopped, with
// no race between the context's stop and Watch returning.
func TestWatchContextAlreadyDone(t *testing.T) {
	r := registry.NewMemoryRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 100; i++ {
		w, err := r.Watch(registry.WatchContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("got %v", err)
		}
		w.Stop()
	}
}

// TestDeregisterBeforeExpiry: a node deregistered before its TTL ends is deleted once;
// its expiry reports nothing more.
func TestDeregisterBeforeExpiry(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch(registry.WatchService("x"))
	defer w.Stop()
	_ = r.Register(svc("x", "1", "a"), registry.RegisterTTL(50*time.Millisecond))
	_ = r.Register(svc("x", "1", "b"), registry.RegisterTTL(100*time.Millisecond))
	next(t, w)
	next(t, w)
	_ = r.Deregister(svc("x", "1", "a"))
	if ev := next(t, w); ev.Action != "delete" || len(ev.Service.Nodes) != 1 || ev.Service.Nodes[0].Id != "a" {
		t.Fatalf("%+v", ev)
	}
	// the next event is b's expiry, not a second delete of a
	if ev := next(t, w); ev.Action != "delete" || len(ev.Service.Nodes) != 1 || ev.Service.Nodes[0].Id != "b" {
		t.Fatalf("%+v", ev.Service.Nodes)
	}
	if _, err := r.GetService("x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

// TestExpiredNodeHiddenOnRead: an expired node is gone from lookups at once, whether or
// not the expiry timer has fired yet.
func TestExpiredNodeHiddenOnRead(t *testing.T) {
	r := registry.NewMemoryRegistry()
	_ = r.Register(svc("x", "1", "a"), registry.RegisterTTL(time.Millisecond))
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := r.GetService("x")
		if errors.Is(err, registry.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not expire")
		}
		time.Sleep(time.Millisecond)
	}
	if list, _ := r.ListServices(); len(list) != 0 {
		t.Fatalf("%+v", list)
	}
}

func TestUnchangedReregisterIsQuiet(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch()
	defer w.Stop()
	_ = r.Register(svc("x", "1", "a"))
	_ = r.Register(svc("x", "1", "a")) // same: no event
	_ = r.Register(svc("y", "1", "a"))
	if ev := next(t, w); ev.Service.Name != "x" || ev.Action != "create" {
		t.Fatalf("%+v", ev)
	}
	if ev := next(t, w); ev.Service.Name != "y" {
		t.Fatalf("an unchanged re-registration was reported: %s %s", ev.Action, ev.Service.Name)
	}
}

func TestWatchEventsAreCopies(t *testing.T) {
	r := registry.NewMemoryRegistry()
	w1, _ := r.Watch()
	defer w1.Stop()
	w2, _ := r.Watch()
	defer w2.Stop()
	_ = r.Register(svc("x", "1", "a"))
	ev := next(t, w1)
	ev.Service.Nodes[0].Metadata["n"] = "mutated"
	if ev2 := next(t, w2); ev2.Service.Nodes[0].Metadata["n"] != "a" {
		t.Fatal("watchers share results")
	}
	if got, _ := r.GetService("x"); got[0].Nodes[0].Metadata["n"] != "a" {
		t.Fatal("a watcher changed the registry")
	}
}

func TestInitPreload(t *testing.T) {
	r := registry.NewMemoryRegistry()
	if err := r.Init(registry.Services(map[string][]*registry.Service{"x": {svc("x", "1", "a")}})); err != nil {
		t.Fatal(err)
	}
	if got, err := r.GetService("x"); err != nil || got[0].Nodes[0].Id != "a" {
		t.Fatal(err)
	}
}

func TestCopy(t *testing.T) {
	s := svc("x", "1", "a")
	s.Endpoints[0].Request = &registry.Value{Name: "req", Values: []*registry.Value{{Name: "f", Type: "string"}}}
	c := registry.Copy([]*registry.Service{s})[0]
	c.Nodes[0].Metadata["n"] = "changed"
	c.Endpoints[0].Metadata["k"] = "changed"
	c.Endpoints[0].Request.Values[0].Name = "changed"
	if s.Nodes[0].Metadata["n"] != "a" || s.Endpoints[0].Metadata["k"] != "v" || s.Endpoints[0].Request.Values[0].Name != "f" {
		t.Fatal("the copy shares state with the original")
	}
	if registry.CopyService(nil) != nil {
		t.Fatal("copy of nil")
	}
}

func TestOverflowedWatcherDoesNotHoldOthersBack(t *testing.T) {
	r := registry.NewMemoryRegistry()
	slow, _ := r.Watch()
	defer slow.Stop()
	fast, _ := r.Watch()
	defer fast.Stop()
	for i := 0; i < 2000; i++ {
		_ = r.Register(svc(fmt.Sprint("s", i), "1", "a"))
		if ev := next(t, fast); ev.Service.Name != fmt.Sprint("s", i) {
			t.Fatalf("event %d for %s", i, ev.Service.Name)
		}
	}
	if _, err := slow.Next(); !errors.Is(err, registry.ErrWatcherOverflow) {
		t.Fatalf("got %v", err)
	}
	slow.Stop()
	if _, err := slow.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("after Stop: %v", err)
	}
}
