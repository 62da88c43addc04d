//go:build linux

package etcd_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/etcd"
	"github.com/seed-b3892490/micro/registry/registrytest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// newRegistry returns an etcd registry on addr, closed at the end of the test.
func newRegistry(t testing.TB, addr string, opts ...registry.Option) registry.Registry {
	t.Helper()
	r := etcd.NewEtcdRegistry(append([]registry.Option{registry.Addrs(addr)}, opts...)...)
	t.Cleanup(func() {
		if err := r.(io.Closer).Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

// rawClient returns a plain etcd client on addr, closed at the end of the test.
func rawClient(t testing.TB, addr string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func node(name, version, id string) *registry.Service {
	return &registry.Service{Name: name, Version: version, Nodes: []*registry.Node{{Id: id, Address: "127.0.0.1:1", Metadata: map[string]string{"id": id}}}}
}

func TestConformance(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry { return newRegistry(t, addr) }, registrytest.Options{Settle: 2 * time.Second})
}

func TestString(t *testing.T) {
	r := etcd.NewRegistry()
	defer r.(io.Closer).Close()
	if r.String() != "etcd" {
		t.Fatal(r.String())
	}
	o := r.Options()
	if len(o.Addrs) != 1 || o.Addrs[0] != etcd.DefaultAddress || o.Timeout != etcd.DefaultTimeout {
		t.Fatalf("defaults: %v %s", o.Addrs, o.Timeout)
	}
}

// TestLayout: the key and value of a node are Go Micro's.
func TestLayout(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	r := newRegistry(t, addr)
	name := uniqueName("layout") + "/svc"
	s := node(name, "1.0", "node/1")
	s.Metadata = map[string]string{"k": "v"}
	s.Endpoints = []*registry.Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"stream": "false"}}}
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	defer r.Deregister(s)
	resp, err := rawClient(t, addr).Get(context.Background(), "/micro/registry/"+strings.ReplaceAll(name, "/", "-")+"/node-1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get: %v %v", resp, err)
	}
	want := `{"name":"` + name + `","version":"1.0","metadata":{"k":"v"},"endpoints":[{"request":null,"response":null,"metadata":{"stream":"false"},"name":"Greeter.Hello"}],"nodes":[{"metadata":{"id":"node/1"},"id":"node/1","address":"127.0.0.1:1"}]}`
	if got := string(resp.Kvs[0].Value); got != want {
		t.Fatalf("value\n got %s\nwant %s", got, want)
	}
	got, err := r.GetService(name)
	if err != nil || len(got) != 1 || got[0].Nodes[0].Id != "node/1" || got[0].Metadata["k"] != "v" || len(got[0].Endpoints) != 1 {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	// a name that escapes to the same key segment is another service
	escaped := strings.ReplaceAll(name, "/", "-")
	if _, err := r.GetService(escaped); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("%s: %v", escaped, err)
	}
}

// TestLease: a TTL gives the key a lease of whole seconds; an unchanged re-registration
// renews it without writing; a changed one writes with the same lease; TTL 0 has none.
func TestLease(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	r := newRegistry(t, addr)
	cli := rawClient(t, addr)
	ctx := context.Background()
	name := uniqueName("lease")
	get := func() (rev, lease int64) {
		t.Helper()
		resp, err := cli.Get(ctx, "/micro/registry/"+name+"/a")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get: %v %v", resp, err)
		}
		return resp.Kvs[0].ModRevision, resp.Kvs[0].Lease
	}
	s := node(name, "1", "a")
	if err := r.Register(s, registry.RegisterTTL(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	rev, lease := get()
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(lease))
	if err != nil || ttl.GrantedTTL != 2 {
		t.Fatalf("lease %x: %+v %v", lease, ttl, err)
	}
	if err := r.Register(s, registry.RegisterTTL(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rev2, lease2 := get(); rev2 != rev || lease2 != lease {
		t.Fatalf("unchanged re-registration wrote: rev %d→%d lease %x→%x", rev, rev2, lease, lease2)
	}
	s.Nodes[0].Address = "127.0.0.1:2"
	if err := r.Register(s, registry.RegisterTTL(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rev2, lease2 := get(); rev2 == rev || lease2 != lease {
		t.Fatalf("changed re-registration: rev %d→%d lease %x→%x", rev, rev2, lease, lease2)
	}
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	if _, lease2 := get(); lease2 != 0 {
		t.Fatalf("TTL 0 kept lease %x", lease2)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(lease)); err != nil || ttl.TTL != -1 {
		t.Fatalf("the unused lease was not revoked: %+v %v", ttl, err)
	}
	if err := r.Deregister(s); err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Get(ctx, "/micro/registry/"+name+"/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("after deregister: %v %v", resp, err)
	}
}

// TestLeaseLost: a lease revoked behind the registry's back (as when it expires) is
// replaced at the next registration, and the key written again.
func TestLeaseLost(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	r := newRegistry(t, addr)
	cli := rawClient(t, addr)
	ctx := context.Background()
	name := uniqueName("lost")
	s := node(name, "1", "a")
	if err := r.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	defer r.Deregister(s)
	resp, err := cli.Get(ctx, "/micro/registry/"+name+"/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get: %v %v", resp, err)
	}
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)
	if _, err := cli.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetService(name); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after revoke: %v", err)
	}
	if err := r.Register(s, registry.RegisterTTL(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err = cli.Get(ctx, "/micro/registry/"+name+"/a")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == int64(lease) || resp.Kvs[0].Lease == 0 {
		t.Fatalf("after re-registration: %v %v", resp, err)
	}
}

func TestListServices(t *testing.T) {
	r := newRegistry(t, testutil.EtcdEndpoint(t))
	p := uniqueName("list")
	for _, s := range []*registry.Service{node(p+"-b", "1", "x"), node(p+"-a", "2", "y"), node(p+"-a", "1", "z"), node(p+"-a", "1", "w")} {
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
		defer r.Deregister(s)
	}
	list, err := r.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		if strings.HasPrefix(s.Name, p) {
			got = append(got, strings.TrimPrefix(s.Name, p)+":"+s.Version)
			if len(s.Nodes) != 0 {
				t.Fatalf("%s lists nodes", s.Name)
			}
		}
	}
	if strings.Join(got, ",") != "-a:1,-a:2,-b:1" {
		t.Fatalf("listed %v", got)
	}
}

// TestWatchEvents: create, update and delete, in order, for the watched service only,
// with the node that changed; Stop ends Next.
func TestWatchEvents(t *testing.T) {
	r := newRegistry(t, testutil.EtcdEndpoint(t))
	watched, other := uniqueName("watched"), uniqueName("other")
	w, err := r.Watch(registry.WatchService(watched))
	if err != nil {
		t.Fatal(err)
	}
	s := node(watched, "1", "a")
	steps := []func() error{
		func() error { return r.Register(node(other, "1", "b")) },
		func() error { return r.Register(s) },
		func() error { s.Nodes[0].Address = "127.0.0.1:9"; return r.Register(s) },
		func() error { return r.Register(s) }, // unchanged: no event
		func() error { return r.Deregister(s) },
		func() error { return r.Deregister(node(other, "1", "b")) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"create 127.0.0.1:1", "update 127.0.0.1:9", "delete 127.0.0.1:9"} {
		res, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Action + " " + res.Service.Nodes[0].Address; got != want || res.Service.Name != watched || res.Service.Nodes[0].Id != "a" {
			t.Fatalf("event %d: %s (%s), want %s", i, got, res.Service.Name, want)
		}
	}
	next := make(chan error, 1)
	go func() {
		_, err := w.Next()
		next <- err
	}()
	w.Stop()
	select {
	case err := <-next:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("blocked Next after Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end a blocked Next")
	}
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
	w.Stop() // idempotent
}

// TestWatchContext: a watcher ends with its context.
func TestWatchContext(t *testing.T) {
	r := newRegistry(t, testutil.EtcdEndpoint(t))
	ctx, cancel := context.WithCancel(context.Background())
	w, err := r.Watch(registry.WatchContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after the context ended: %v", err)
	}
}

// TestClose: Close ends watchers, and later calls return ErrClosed.
func TestClose(t *testing.T) {
	r := etcd.NewEtcdRegistry(registry.Addrs(testutil.EtcdEndpoint(t)))
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := r.Register(node("closed", "1", "a")); !errors.Is(err, etcd.ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
	if _, err := r.GetService("closed"); !errors.Is(err, etcd.ErrClosed) {
		t.Fatalf("GetService after Close: %v", err)
	}
	if err := r.(io.Closer).Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestAuth: with authentication on in etcd, the registry works with Auth and fails
// clearly without it.
func TestAuth(t *testing.T) {
	addr := testutil.StartEtcd(t).Endpoint() // private: auth stays on
	cli := rawClient(t, addr)
	ctx := context.Background()
	if _, err := cli.UserAdd(ctx, "root", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, addr, etcd.Auth("root", "secret"), registry.Timeout(2*time.Second))
	if err := r.Register(node("auth", "1", "a")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.GetService("auth"); err != nil || len(got) != 1 {
		t.Fatalf("lookup: %v %v", got, err)
	}
	anon := newRegistry(t, addr, registry.Timeout(2*time.Second))
	if _, err := anon.GetService("auth"); err == nil {
		t.Fatal("lookup without credentials succeeded")
	}
	wrong := newRegistry(t, addr, etcd.Auth("root", "wrong"), registry.Timeout(2*time.Second))
	if err := wrong.Register(node("auth", "1", "b")); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestBadInput: services that cannot be stored are refused with ErrInvalidService,
// before any connection is made.
func TestBadInput(t *testing.T) {
	r := newRegistry(t, "127.0.0.1:1")
	big := node("big", "1", "a")
	big.Nodes[0].Metadata["blob"] = strings.Repeat("x", etcd.MaxEntrySize)
	cases := map[string]*registry.Service{
		"nil":             nil,
		"no name":         {Nodes: []*registry.Node{{Id: "a"}}},
		"no nodes":        {Name: "x"},
		"only nil nodes":  {Name: "x", Nodes: []*registry.Node{nil}},
		"node without id": {Name: "x", Nodes: []*registry.Node{{Address: "127.0.0.1:1"}}},
		"bad utf-8 name":  {Name: "x\xff", Nodes: []*registry.Node{{Id: "a"}}},
		"bad utf-8 id":    {Name: "x", Nodes: []*registry.Node{{Id: "a\xff"}}},
		"oversized":       big,
	}
	for name, s := range cases {
		start := time.Now()
		err := r.Register(s)
		if !errors.Is(err, etcd.ErrInvalidService) {
			t.Errorf("%s: %v", name, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s: refused after %s", name, d)
		}
	}
	if err := r.Deregister(nil); !errors.Is(err, etcd.ErrInvalidService) {
		t.Errorf("Deregister(nil): %v", err)
	}
	if _, err := r.GetService(""); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("GetService(\"\"): %v", err)
	}
}

// TestUnreachable: with nobody listening, every call fails within the timeout with a
// matchable deadline error, and nothing is left running after Close.
func TestUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	timeout := 500 * time.Millisecond
	r := etcd.NewEtcdRegistry(registry.Addrs(testutil.FreeAddr(t)), registry.Timeout(timeout))
	calls := map[string]func() error{
		"Register":   func() error { return r.Register(node("x", "1", "a"), registry.RegisterTTL(time.Second)) },
		"Deregister": func() error { return r.Deregister(node("x", "1", "a")) },
		"GetService": func() error { _, err := r.GetService("x"); return err },
		"List":       func() error { _, err := r.ListServices(); return err },
		"Watch":      func() error { _, err := r.Watch(); return err },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Add(1)
		go func() { // concurrently: each waits for the whole timeout
			defer wg.Done()
			start := time.Now()
			err := call()
			d := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s: %v", name, err)
			}
			if d > timeout+time.Second {
				t.Errorf("%s: failed after %s", name, d)
			}
			t.Logf("%s: %v after %s", name, err, d.Round(time.Millisecond))
		}()
	}
	wg.Wait()
	// the caller's context bounds a call too
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.GetService("x", registry.GetContext(ctx)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > timeout {
		t.Errorf("GetService with a 50 ms context: %v after %s", err, time.Since(start))
	}
	if err := r.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInit: Init with new addresses drops the connection; the next call uses the new
// ones, and watchers on the old connection end with ErrWatchEnded.
func TestInit(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	r := newRegistry(t, testutil.FreeAddr(t), registry.Timeout(300*time.Millisecond))
	if _, err := r.GetService("init"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before Init: %v", err)
	}
	if err := r.Init(registry.Addrs(addr)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetService("init"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after Init: %v", err)
	}
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := r.Init(registry.Timeout(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, etcd.ErrWatchEnded) {
		t.Fatalf("watcher after Init: %v", err)
	}
	if r.Options().Timeout != time.Second {
		t.Fatalf("timeout %s", r.Options().Timeout)
	}
}
