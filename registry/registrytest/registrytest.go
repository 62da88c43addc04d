// Package registrytest is the conformance suite every registry implementation passes:
// register, re-register, deregister, versions and nodes, endpoints with metadata, TTL
// expiry (seen by lookups and by a watcher), watch events in order, and concurrent use.
//
// A backend's test calls Run with a function that returns a fresh registry (or one whose
// service names cannot clash with other tests: the suite names its services after the
// test):
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Registry { return NewMyRegistry() })
//	}
package registrytest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

// Options tune the suite to a backend.
type Options struct {
	// Settle is how long a backend may take for a change to be visible to lookups and
	// watchers. Default 2 s.
	Settle time.Duration
	// SkipTTL skips the expiry test, for backends that cannot expire registrations.
	SkipTTL bool
}

// Run runs the suite.
func Run(t *testing.T, newRegistry func(t *testing.T) registry.Registry, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	tests := []struct {
		name string
		fn   func(*testing.T, registry.Registry, Options)
	}{
		{"RegisterLookupDeregister", testRegisterLookupDeregister},
		{"Reregister", testReregister},
		{"VersionsAndNodes", testVersionsAndNodes},
		{"Endpoints", testEndpoints},
		{"TTLExpiry", testTTLExpiry},
		{"WatchInOrder", testWatchInOrder},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "TTLExpiry" && o.SkipTTL {
				t.Skip("the backend cannot expire registrations")
			}
			tc.fn(t, newRegistry(t), o)
		})
	}
}

// name returns a service name unique to the running test.
func name(t *testing.T) string {
	n := strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	return fmt.Sprintf("%s-%d", n, time.Now().UnixNano()%100000)
}

func service(name, version string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, &registry.Node{Id: n, Address: "127.0.0.1:" + fmt.Sprint(10000+len(n)), Metadata: map[string]string{"node": n}})
	}
	return s
}

// nodes returns the sorted node ids of a lookup, version:id.
func nodes(svcs []*registry.Service) string {
	var out []string
	for _, s := range svcs {
		for _, n := range s.Nodes {
			out = append(out, s.Version+":"+n.Id)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// eventually polls a lookup until it gives want (or "" for not found).
func eventually(t *testing.T, r registry.Registry, svc, want string, settle time.Duration) {
	t.Helper()
	deadline := time.Now().Add(settle)
	var got string
	for {
		svcs, err := r.GetService(svc)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			got = ""
		case err != nil:
			got = "error: " + err.Error()
		default:
			got = nodes(svcs)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup of %s: got %q, want %q", svc, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testRegisterLookupDeregister(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	if _, err := r.GetService(svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unknown service: got %v, want ErrNotFound", err)
	}
	s := service(svc, "1.0", "a")
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	eventually(t, r, svc, "1.0:a", o.Settle)
	got, _ := r.GetService(svc)
	if got[0].Nodes[0].Metadata["node"] != "a" || got[0].Nodes[0].Address != s.Nodes[0].Address {
		t.Fatalf("node %+v", got[0].Nodes[0])
	}
	list, err := r.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		found = found || l.Name == svc
	}
	if !found {
		t.Fatalf("%s not in ListServices", svc)
	}
	if err := r.Deregister(s); err != nil {
		t.Fatal(err)
	}
	eventually(t, r, svc, "", o.Settle)
}

func testReregister(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	s := service(svc, "1", "a")
	_ = r.Register(s)
	eventually(t, r, svc, "1:a", o.Settle)
	s.Nodes[0].Metadata["node"] = "changed"
	s.Nodes[0].Address = "127.0.0.1:1"
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(o.Settle)
	for {
		got, err := r.GetService(svc)
		if err == nil && len(got) == 1 && len(got[0].Nodes) == 1 && got[0].Nodes[0].Metadata["node"] == "changed" && got[0].Nodes[0].Address == "127.0.0.1:1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-registration not seen: %v %v", nodes(got), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = r.Deregister(s)
}

func testVersionsAndNodes(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	_ = r.Register(service(svc, "1", "a"))
	_ = r.Register(service(svc, "1", "b"))
	_ = r.Register(service(svc, "2", "c"))
	eventually(t, r, svc, "1:a,1:b,2:c", o.Settle)
	_ = r.Deregister(service(svc, "1", "a"))
	eventually(t, r, svc, "1:b,2:c", o.Settle)
	_ = r.Deregister(service(svc, "1", "b"))
	_ = r.Deregister(service(svc, "2", "c"))
	eventually(t, r, svc, "", o.Settle)
}

func testEndpoints(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	s := service(svc, "1", "a")
	s.Endpoints = []*registry.Endpoint{{
		Name:     "Greeter.Hello",
		Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
		Response: &registry.Value{Name: "Response", Type: "Response"},
		Metadata: map[string]string{"stream": "false", "k": "v"},
	}}
	_ = r.Register(s)
	eventually(t, r, svc, "1:a", o.Settle)
	got, _ := r.GetService(svc)
	if len(got[0].Endpoints) != 1 {
		t.Fatalf("endpoints %+v", got[0].Endpoints)
	}
	e := got[0].Endpoints[0]
	if e.Name != "Greeter.Hello" || e.Metadata["k"] != "v" || e.Request == nil || len(e.Request.Values) != 1 || e.Request.Values[0].Name != "name" {
		t.Fatalf("endpoint %+v", e)
	}
	_ = r.Deregister(s)
}

func testTTLExpiry(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	ttl := time.Second
	w, err := r.Watch(registry.WatchService(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deleted := make(chan struct{})
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			if res.Action != "delete" {
				continue
			}
			for _, n := range res.Service.Nodes {
				if n.Id == "a" {
					close(deleted)
					return
				}
			}
		}
	}()
	if err := r.Register(service(svc, "1", "a"), registry.RegisterTTL(ttl)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(service(svc, "1", "b")); err != nil {
		t.Fatal(err)
	}
	eventually(t, r, svc, "1:a,1:b", o.Settle)
	start := time.Now()
	eventually(t, r, svc, "1:b", ttl+o.Settle)
	if d := time.Since(start); d > ttl+o.Settle {
		t.Fatalf("expired after %s", d)
	}
	select {
	case <-deleted:
	case <-time.After(o.Settle):
		t.Fatal("the watcher saw no delete of the expired node")
	}
	_ = r.Deregister(service(svc, "1", "b"))
}

func testWatchInOrder(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	w, err := r.Watch(registry.WatchService(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	results := make(chan *registry.Result, 16)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				close(results)
				return
			}
			results <- res
		}
	}()
	_ = r.Register(service(svc, "1", "a"))
	_ = r.Register(service(svc, "1", "b"))
	_ = r.Deregister(service(svc, "1", "a"))
	want := []struct{ action, node string }{{"create", "a"}, {"create", "b"}, {"delete", "a"}}
	for i, wnt := range want {
		select {
		case res, ok := <-results:
			if !ok {
				t.Fatal("watcher ended")
			}
			if res.Service.Name != svc {
				t.Fatalf("event %d for %s", i, res.Service.Name)
			}
			action := res.Action
			if action == "update" && wnt.action == "create" {
				action = "create" // a new node may be reported as an update of its service
			}
			has := false
			for _, n := range res.Service.Nodes {
				has = has || n.Id == wnt.node
			}
			if action != wnt.action || !has {
				t.Fatalf("event %d: %s %s, want %s %s", i, res.Action, nodes([]*registry.Service{res.Service}), wnt.action, wnt.node)
			}
		case <-time.After(o.Settle):
			t.Fatalf("event %d (%s %s) not seen", i, wnt.action, wnt.node)
		}
	}
	_ = r.Deregister(service(svc, "1", "b"))
}

func testConcurrent(t *testing.T, r registry.Registry, o Options) {
	svc := name(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := service(svc, "1", fmt.Sprint("n", i))
			for j := 0; j < 20; j++ {
				if err := r.Register(s); err != nil {
					t.Error(err)
					return
				}
				_, _ = r.GetService(svc)
			}
		}(i)
	}
	wg.Wait()
	eventually(t, r, svc, "1:n0,1:n1,1:n2,1:n3,1:n4,1:n5,1:n6,1:n7", o.Settle)
	for i := 0; i < 8; i++ {
		_ = r.Deregister(service(svc, "1", fmt.Sprint("n", i)))
	}
	eventually(t, r, svc, "", o.Settle)
}
