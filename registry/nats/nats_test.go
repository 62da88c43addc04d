package nats_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	natsreg "github.com/seed-b3892490/micro/registry/nats"
	"github.com/seed-b3892490/micro/registry/registrytest"
)

// The suite with one instance doing everything, on the default topics.
func TestConformance(t *testing.T) {
	requireNATS(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry { return newRegistry(t) }, registrytest.Options{Settle: 2 * time.Second})
}

// split registers with one instance and looks up and watches with another, over separate
// connections: how a service and its clients use the registry.
type split struct {
	registry.Registry // lookups and watches
	owner             registry.Registry
}

func (s split) Register(svc *registry.Service, opts ...registry.RegisterOption) error {
	return s.owner.Register(svc, opts...)
}

func (s split) Deregister(svc *registry.Service, opts ...registry.DeregisterOption) error {
	return s.owner.Deregister(svc, opts...)
}

func TestConformanceAcrossInstances(t *testing.T) {
	requireNATS(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		opts := topics()
		return split{Registry: newRegistry(t, opts...), owner: newRegistry(t, opts...)}
	}, registrytest.Options{Settle: 2 * time.Second})
}

// Two owners of one service, a third instance looks up and watches: nodes merge by
// version and node id, and each owner's deregistration removes only its nodes.
func TestInstancesMerge(t *testing.T) {
	opts := topics()
	a, b, client := newRegistry(t, opts...), newRegistry(t, opts...), newRegistry(t, opts...)
	svc := serviceName(t)
	events := collect(t, mustWatch(t, client, registry.WatchService(svc)))

	if err := a.Register(service(svc, "1", "a1", "a2"), registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(service(svc, "1", "b1"), registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(service(svc, "2", "b2"), registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2", "b1", "b2"} {
		waitEvent(t, events, 2*time.Second, "create", id)
	}
	got, err := client.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	if s := describe(got); s != "1:a1,a2,b1 2:b2" {
		t.Fatalf("lookup %s", s)
	}
	if got[0].Metadata["k"] != "v" || got[0].Nodes[0].Address != node("a1").Address {
		t.Fatalf("lookup lost data: %+v %+v", got[0], got[0].Nodes[0])
	}
	list, err := client.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != svc || list[0].Version != "1" || list[1].Version != "2" || len(list[0].Nodes) != 0 {
		t.Fatalf("list %+v", list)
	}

	if err := a.Deregister(service(svc, "1", "a1")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 2*time.Second, "delete", "a1")
	got, err = client.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	if s := describe(got); s != "1:a2,b1 2:b2" {
		t.Fatalf("lookup after deregister %s", s)
	}
}

// describe returns "version:id,id version:id" of a lookup.
func describe(svcs []*registry.Service) string {
	var parts []string
	for _, s := range svcs {
		var ids []string
		for _, n := range s.Nodes {
			ids = append(ids, n.Id)
		}
		parts = append(parts, s.Version+":"+strings.Join(ids, ","))
	}
	return strings.Join(parts, " ")
}

func mustWatch(t testing.TB, r registry.Registry, opts ...registry.WatchOption) registry.Watcher {
	t.Helper()
	w, err := r.Watch(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// Renewals that change nothing produce no event; a change produces one update.
func TestWatchRenewalsAndUpdates(t *testing.T) {
	opts := topics()
	owner, client := newRegistry(t, opts...), newRegistry(t, opts...)
	svc := serviceName(t)
	events := collect(t, mustWatch(t, client, registry.WatchService(svc)))
	s := service(svc, "1", "a")
	for i := 0; i < 5; i++ {
		if err := owner.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	s.Nodes[0].Address = "127.0.0.1:1"
	if err := owner.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	s.Endpoints = []*registry.Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"stream": "false"}}}
	if err := owner.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := owner.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A marker after everything: the events before it are all there are.
	if err := owner.Register(service(svc, "1", "marker")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != "create marker" {
		if len(got) > 20 {
			t.Fatalf("events %q", got)
		}
		select {
		case e := <-events:
			n := e.res.Service.Nodes[0]
			desc := e.res.Action + " " + n.Id
			if e.res.Action == "update" {
				desc += " " + n.Address + " " + fmt.Sprint(len(e.res.Service.Endpoints))
			}
			got = append(got, desc)
		case <-time.After(2 * time.Second):
			t.Fatalf("events so far %q", got)
		}
	}
	want := []string{"create a", "update a 127.0.0.1:1 0", "update a 127.0.0.1:1 1", "create marker"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

// A watcher started after a node registered learns it from its first lookup, and reports
// the delete when the node's TTL passes without renewal, though it never saw the node
// announced.
func TestWatchSeesExpiryOfNodesRegisteredBefore(t *testing.T) {
	opts := topics()
	owner, client := newRegistry(t, opts...), newRegistry(t, opts...)
	svc := serviceName(t)
	if err := owner.Register(service(svc, "1", "early"), registry.RegisterTTL(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	registered := time.Now()
	events := collect(t, mustWatch(t, client, registry.WatchService(svc)))
	e := waitEvent(t, events, 3*time.Second, "delete", "early")
	if d := e.at.Sub(registered); d < 1400*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("delete %s after the registration, want about 1.5 s", d)
	}
}

// Quorum ends a lookup once enough nodes answered, long before the Timeout.
func TestQuorum(t *testing.T) {
	opts := topics()
	owner := newRegistry(t, opts...)
	client := newRegistry(t, append(opts, natsreg.Quorum(1), registry.Timeout(5*time.Second))...)
	svc := serviceName(t)
	if err := owner.Register(service(svc, "1", "a")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := client.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("quorum lookup took %s (Timeout 5 s)", d)
	}
	if describe(got) != "1:a" {
		t.Fatalf("lookup %s", describe(got))
	}
}

// GetContext's context bounds a lookup, with a matchable error.
func TestLookupContext(t *testing.T) {
	r := newRegistry(t, append(topics(), registry.Timeout(5*time.Second))...)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.GetService("nothing", registry.GetContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s", d)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := r.ListServices(registry.ListContext(cancelled)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want Canceled", err)
	}
}

// Stop ends Next with ErrWatcherStopped, is idempotent, and so is ending the context.
func TestWatcherStop(t *testing.T) {
	r := newRegistry(t, topics()...)
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan error, 1)
	go func() {
		_, err := w.Next()
		next <- err
	}()
	w.Stop()
	w.Stop()
	select {
	case err := <-next:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("Next: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return after Stop")
	}
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w2, err := r.Watch(registry.WatchContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := w2.Next()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("Next after cancel: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancelling the watch context did not stop the watcher")
	}
	w2.Stop()
}

// Close says goodbye for the nodes still held, stops watchers and refuses later calls.
func TestClose(t *testing.T) {
	opts := topics()
	client := newRegistry(t, opts...)
	svc := serviceName(t)
	events := collect(t, mustWatch(t, client, registry.WatchService(svc)))
	owner := natsreg.NewNatsRegistry(append([]registry.Option{registry.Addrs(natsURL())}, opts...)...)
	t.Cleanup(func() { closeRegistry(t, owner) })
	if err := owner.Register(service(svc, "1", "a"), registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	w, err := owner.Watch()
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 2*time.Second, "create", "a")
	closeRegistry(t, owner)
	closeRegistry(t, owner) // idempotent
	waitEvent(t, events, 2*time.Second, "delete", "a")
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("owner's watcher after Close: %v", err)
	}
	if err := owner.Register(service(svc, "1", "b")); !errors.Is(err, natsreg.ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
	if _, err := owner.GetService(svc); !errors.Is(err, natsreg.ErrClosed) {
		t.Fatalf("GetService after Close: %v", err)
	}
	if _, err := owner.Watch(); !errors.Is(err, natsreg.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}

// An answer larger than the max payload is split; the asker merges the parts.
func TestLargeAnswerSplit(t *testing.T) {
	opts := topics()
	owner := newRegistry(t, opts...)
	// Encoding 1.5 MiB of answers takes the race detector longer than 100 ms.
	client := newRegistry(t, append(opts, registry.Timeout(3*time.Second), natsreg.Quorum(48))...)
	svc := serviceName(t)
	s := &registry.Service{Name: svc, Version: "1"}
	const nodes = 48
	pad := strings.Repeat("x", 30<<10) // 48 × 30 KiB > 1 MiB
	for i := 0; i < nodes; i++ {
		s.Nodes = append(s.Nodes, &registry.Node{Id: fmt.Sprintf("n%02d", i), Address: "127.0.0.1:1", Metadata: map[string]string{"pad": pad}})
	}
	if err := owner.Register(s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := client.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Nodes) != nodes {
		t.Fatalf("lookup: %d versions, %d nodes", len(got), len(got[0].Nodes))
	}
	t.Logf("lookup of %d nodes in %s", nodes, time.Since(start).Round(time.Millisecond))
}

func TestBadInput(t *testing.T) {
	r := newRegistry(t, topics()...)
	for _, s := range []*registry.Service{nil, {}, {Version: "1", Nodes: []*registry.Node{node("a")}}} {
		if err := r.Register(s); !errors.Is(err, natsreg.ErrInvalidService) {
			t.Errorf("Register(%+v): %v", s, err)
		}
		if err := r.Deregister(s); !errors.Is(err, natsreg.ErrInvalidService) {
			t.Errorf("Deregister(%+v): %v", s, err)
		}
	}
	svc := serviceName(t)
	if err := r.Register(service(svc, "1", "a"), registry.RegisterTTL(-time.Second)); !errors.Is(err, natsreg.ErrInvalidOption) {
		t.Errorf("negative TTL: %v", err)
	}
	if err := r.Register(&registry.Service{Name: svc, Nodes: []*registry.Node{nil}}); err != nil {
		t.Errorf("nil node only: %v", err)
	}
	if _, err := r.GetService(""); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService(\"\"): %v", err)
	}

	big := service(svc, "1", "big")
	big.Metadata["pad"] = strings.Repeat("x", 2<<20)
	err := r.Register(big)
	if !errors.Is(err, natsreg.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	t.Logf("oversized: %v", err)
	if _, err := r.GetService(svc); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the oversized service was registered: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  registry.Option
	}{
		{"negative quorum", natsreg.Quorum(-1)},
		{"negative timeout", registry.Timeout(-time.Second)},
		{"empty query topic", natsreg.QueryTopic("")},
		{"wildcard watch topic", natsreg.WatchTopic("micro.*")},
		{"bad subject", natsreg.WatchTopic("micro..watch")},
		{"same topics", natsreg.WatchTopic(natsreg.DefaultQueryTopic)},
		{"register action", natsreg.RegisterAction("delete")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := natsreg.NewNatsRegistry(tc.opt)
			defer closeRegistry(t, r)
			if err := r.Register(service("x", "1", "a")); !errors.Is(err, natsreg.ErrInvalidOption) {
				t.Errorf("Register: %v", err)
			}
			if _, err := r.GetService("x"); !errors.Is(err, natsreg.ErrInvalidOption) {
				t.Errorf("GetService: %v", err)
			}
			if _, err := r.Watch(); !errors.Is(err, natsreg.ErrInvalidOption) {
				t.Errorf("Watch: %v", err)
			}
			if err := natsreg.NewNatsRegistry().Init(tc.opt); !errors.Is(err, natsreg.ErrInvalidOption) {
				t.Errorf("Init: %v", err)
			}
			if err := r.Init(natsreg.Quorum(0), registry.Timeout(0), natsreg.QueryTopic("a.q"), natsreg.WatchTopic("a.w"), natsreg.RegisterAction("put")); err != nil {
				t.Errorf("Init with valid options: %v", err)
			}
		})
	}
}

// An unreachable server fails every call within the Timeout, with an error matching
// ErrUnavailable, and leaves no goroutine behind.
func TestUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// A server that accepts connections and never speaks: the handshake must time out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()

	const timeout = 200 * time.Millisecond
	slack := 300 * time.Millisecond
	if testutil.Race {
		slack = time.Second
	}
	for _, tc := range []struct{ name, addr string }{
		{"refused", testutil.FreeAddr(t)},
		{"silent", l.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := natsreg.NewNatsRegistry(registry.Addrs(tc.addr), registry.Timeout(timeout))
			defer closeRegistry(t, r)
			calls := []struct {
				name string
				call func() error
			}{
				{"Register", func() error { return r.Register(service("x", "1", "a")) }},
				{"Deregister", func() error { return r.Deregister(service("x", "1", "a")) }},
				{"GetService", func() error { _, err := r.GetService("x"); return err }},
				{"ListServices", func() error { _, err := r.ListServices(); return err }},
				{"Watch", func() error { _, err := r.Watch(); return err }},
			}
			for _, c := range calls {
				start := time.Now()
				err := c.call()
				d := time.Since(start)
				if !errors.Is(err, natsreg.ErrUnavailable) {
					t.Errorf("%s: %v, want ErrUnavailable", c.name, err)
				}
				if d > timeout+slack {
					t.Errorf("%s took %s, Timeout %s", c.name, d, timeout)
				}
				if c.name == "Register" {
					t.Logf("%s after %s: %v", c.name, d.Round(time.Millisecond), err)
				}
			}
		})
	}
}

// Malformed messages on the registry's subjects are ignored: nothing panics, and lookups
// and watchers go on working.
func TestMalformedMessages(t *testing.T) {
	prefix := "test.micro." + unique()
	r := newRegistry(t, topicsOf(prefix)...)
	svc := serviceName(t)
	events := collect(t, mustWatch(t, r))
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	garbage := []string{
		``, `null`, `[]`, `{"Action":"create"}`, `{"Action":"create","Service":{"name":""}}`,
		`{"Action":"create","Service":{"name":"` + svc + `","nodes":[null,{"id":"x","ttl":-1}]}}`,
		`{"Action":"get","Service":null}`, `{"Action":"list"`, "\x00\xff", `{"name":1}`,
	}
	for _, g := range garbage {
		for _, subject := range []string{prefix + ".query", prefix + ".watch"} {
			if err := nc.PublishRequest(subject, nc.NewInbox(), []byte(g)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Answers of garbage to every lookup: subscribe to the queries and reply with it.
	sub, err := nc.Subscribe(prefix+".query", func(m *nats.Msg) {
		for _, g := range garbage {
			_ = nc.Publish(m.Reply, []byte(g))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(service(svc, "1", "a")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 2*time.Second, "create", "a")
	got, err := r.GetService(svc)
	if err != nil || describe(got) != "1:a" {
		t.Fatalf("lookup %s %v", describe(got), err)
	}
}
