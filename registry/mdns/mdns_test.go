package mdns_test

import (
	"errors"
	"time"

	"github.com/seed-b3892490/micro/registry/cache"
	"io"
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/mdns"
	"github.com/seed-b3892490/micro/registry/registrytest"
)

// The tests multicast, so they run in a network namespace of their own.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }

func newRegistry(t testing.TB, opts ...registry.Option) registry.Registry {
	t.Helper()
	r := mdns.NewRegistry(opts...)
	t.Cleanup(func() { _ = r.(io.Closer).Close() })
	return r
}

func TestConformance(t *testing.T) {
	testutil.NeedNetns(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry { return newRegistry(t) })
}

func node(svc, id, addr string) *registry.Service {
	return &registry.Service{Name: svc, Version: "1.0", Nodes: []*registry.Node{{Id: id, Address: addr, Metadata: map[string]string{"k": "v"}}},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"stream": "false"}}}}
}

// TestD2GoodbyeAcrossInstances: a node registered by one registry instance (its own
// sockets, as another process would have) is found by another, and its Deregister
// reaches the other's watcher and a cache in front of it within 0.5 s.
func TestD2GoodbyeAcrossInstances(t *testing.T) {
	testutil.NeedNetns(t)
	a, b := newRegistry(t), newRegistry(t)
	w, err := b.Watch(registry.WatchService("d2"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	events := make(chan *registry.Result, 16)
	go func() {
		for {
			r, err := w.Next()
			if err != nil {
				close(events)
				return
			}
			events <- r
		}
	}()
	c := cache.New(b)
	defer c.Stop()

	s := node("d2", "d2-node-1", "127.0.0.1:4001")
	if err := a.Register(s); err != nil {
		t.Fatal(err)
	}
	got := waitEvent(t, events, "create", time.Second)
	if n := got.Service.Nodes[0]; n.Id != "d2-node-1" || n.Address != "127.0.0.1:4001" || n.Metadata["k"] != "v" || got.Service.Version != "1.0" {
		t.Fatalf("create %+v %+v", got.Service, n)
	}
	if len(got.Service.Endpoints) != 1 || got.Service.Endpoints[0].Name != "Greeter.Hello" {
		t.Fatalf("endpoints %+v", got.Service.Endpoints)
	}
	svcs, err := b.GetService("d2")
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("lookup from another instance: %v %v", svcs, err)
	}
	if _, err := c.GetService("d2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.Deregister(s); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "delete", 500*time.Millisecond)
	testutil.Eventually(t, 500*time.Millisecond-time.Since(start), func() bool {
		_, err := c.GetService("d2")
		return errors.Is(err, registry.ErrNotFound)
	}, "the cache drops the node")
	if _, err := b.GetService("d2"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("lookup after goodbye: %v", err)
	}
}

func waitEvent(t *testing.T, events <-chan *registry.Result, action string, within time.Duration) *registry.Result {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r, ok := <-events:
			if !ok {
				t.Fatal("watcher ended")
			}
			if r.Action == action {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", action, within)
		}
	}
}

// split registers through one registry instance and looks up and watches through
// another, so that every answer crosses the network.
type split struct {
	registry.Registry // lookups and watches
	reg               registry.Registry
}

func (s split) Register(svc *registry.Service, opts ...registry.RegisterOption) error {
	return s.reg.Register(svc, opts...)
}

func (s split) Deregister(svc *registry.Service, opts ...registry.DeregisterOption) error {
	return s.reg.Deregister(svc, opts...)
}

// TestAcross runs the suite with registrations in one instance and
// lookups and watches in another: on every interface, then on loopback alone.
func TestAcross(t *testing.T) {
	testutil.NeedNetns(t)
	t.Run("all", func(t *testing.T) {
		registrytest.Run(t, func(t *testing.T) registry.Registry { return split{newRegistry(t), newRegistry(t)} })
	})
	t.Run("lo", func(t *testing.T) {
		lo := mdns.Interfaces("lo")
		registrytest.Run(t, func(t *testing.T) registry.Registry { return split{newRegistry(t, lo), newRegistry(t, lo)} })
	})
}
