package server_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
)

func hello(c client.Client, ctx context.Context, service string, opts ...client.CallOption) error {
	var rsp testproto.Response
	return c.Call(ctx, c.NewRequest(service, "Greeter.Hello", &testproto.Request{Name: "x"}), &rsp, opts...)
}

// TestB4StalePooledConnection restarts the server on the same port between two calls of
// one client: the call after each restart succeeds.
func TestB4StalePooledConnection(t *testing.T) {
	testutil.Scenario(t)
	reg := registry.NewMemoryRegistry()
	addr := testutil.FreeAddr(t)
	c := testutil.NewClient(t, reg)
	rounds := 100
	for i := 0; i < rounds; i++ {
		srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter), server.Address(addr))
		if err := hello(c, context.Background(), "greeter", client.WithAddress(addr)); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// chain is a handler that calls the next service with its own context.
type Chain struct {
	c        client.Client
	next     string
	deadline chan time.Time
}

// Hop records its deadline and calls the next hop.
func (h *Chain) Hop(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	dl, _ := ctx.Deadline()
	h.deadline <- dl
	var out testproto.Response
	return h.c.Call(ctx, h.c.NewRequest(h.next, "Greeter.Block", req), &out)
}

// lateBound is how long after its deadline a call may return: 20 ms (B6), widened under
// the race detector, whose scheduling delays on a loaded 2-core machine exceed it.
func lateBound() time.Duration {
	if testutil.Race {
		return 60 * time.Millisecond
	}
	return 20 * time.Millisecond
}

// TestB6DeadlinePropagation: A calls B with 300 ms, B calls C, C blocks.
func TestB6DeadlinePropagation(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	gC := &testutil.Greeter{Release: make(chan struct{}), Ended: make(chan error, 4), Started: make(chan struct{}, 4)}
	testutil.NewServer(t, reg, "c", gC)
	b := &Chain{c: testutil.NewClient(t, reg), next: "c", deadline: make(chan time.Time, 4)}
	testutil.NewServer(t, reg, "b", b)
	a := testutil.NewClient(t, reg)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	aDeadline, _ := ctx.Deadline()
	var rsp testproto.Response
	err := a.Call(ctx, a.NewRequest("b", "Chain.Hop", &testproto.Request{}), &rsp)
	returned := time.Now()
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if late := returned.Sub(aDeadline); late > lateBound() {
		t.Fatalf("Call returned %s after the deadline", late)
	}
	bDeadline := <-b.deadline
	slack := 5 * time.Millisecond
	if testutil.Race {
		slack = 10 * time.Millisecond // the race detector slows the request's way to B
	}
	if d := bDeadline.Sub(aDeadline); d > slack {
		t.Fatalf("B's deadline is %s after A's", d)
	}
	<-gC.Started
	select {
	case cerr := <-gC.Ended:
		if !stderrors.Is(cerr, context.DeadlineExceeded) && !stderrors.Is(cerr, context.Canceled) {
			t.Fatalf("C's context ended with %v", cerr)
		}
		if late := time.Since(aDeadline); late > 50*time.Millisecond {
			t.Fatalf("C saw the end %s after the deadline", late)
		}
	case <-time.After(time.Second):
		t.Fatal("C's context did not end")
	}
}

// TestB6CallNeverWritesAfterReturn races short deadlines against replies: the reply
// value is never written after Call returned (the race detector would see it).
func TestB6CallNeverWritesAfterReturn(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	c := testutil.NewClient(t, reg)
	n := 2000
	if testutil.Long() {
		n = 10000
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*100*time.Microsecond)
				rsp := &testproto.Response{}
				_ = c.Call(ctx, c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "y"}), rsp)
				cancel()
				rsp.Message = "sentinel" // a write by the client after return would race with this
				if rsp.Message != "sentinel" {
					t.Error("reply changed after Call returned")
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestB6CallReturnsWhenServerNeverAnswers points a client at a listener that accepts
// and never answers.
func TestB6CallReturnsWhenServerNeverAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
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
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	c := testutil.NewClient(t, registry.NewMemoryRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	err = hello(c, ctx, "silent", client.WithAddress(l.Addr().String()))
	if late := time.Since(dl); late > lateBound() {
		t.Fatalf("Call returned %s after its deadline", late)
	}
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// TestC1GracefulStopDrains stops instance A with calls in flight on it while clients keep
// calling: every call succeeds, A is deregistered before it stops accepting, and Stop
// returns promptly after the last call in flight.
func TestC1GracefulStopDrains(t *testing.T) {
	testutil.Scenario(t)
	mem := registry.NewMemoryRegistry()
	probe := &testutil.DeregisterProbe{Registry: mem}
	inflight := 200
	gA := &testutil.Greeter{Node: "a", Started: make(chan struct{}, inflight), Release: make(chan struct{})}
	a := testutil.NewServer(t, probe, "greeter", gA)
	probe.Probe(a.Options().Address)
	gB := &testutil.Greeter{Node: "b"}
	testutil.NewServer(t, mem, "greeter", gB)
	c := testutil.NewClient(t, mem)

	// 200 calls in flight on A
	blocked := make(chan error, inflight)
	for i := 0; i < inflight; i++ {
		go func() {
			var rsp testproto.Response
			blocked <- c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), &rsp, client.WithAddress(a.Options().Address))
		}()
	}
	for i := 0; i < inflight; i++ {
		<-gA.Started
	}
	// 100 clients keep calling by name
	var failures atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	defer func() {
		stopOnce.Do(func() { close(stopLoad) })
		wg.Wait()
	}()
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				if err := hello(c, context.Background(), "greeter"); err != nil {
					if failures.Add(1) == 1 {
						t.Log(err)
					}
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the load run against both instances
	release := time.AfterFunc(500*time.Millisecond, func() { close(gA.Release) })
	defer release.Stop()
	stopped := make(chan time.Time, 1)
	go func() {
		_ = a.Stop()
		stopped <- time.Now()
	}()
	for i := 0; i < inflight; i++ {
		if err := <-blocked; err != nil {
			t.Fatalf("a call in flight failed: %v", err)
		}
	}
	lastDone := time.Now()
	var end time.Time
	select {
	case end = <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	if d := end.Sub(lastDone); d > 200*time.Millisecond {
		t.Fatalf("Stop returned %s after the last call in flight", d)
	}
	time.Sleep(100 * time.Millisecond)
	stopOnce.Do(func() { close(stopLoad) })
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d calls failed during the stop", n)
	}
	if !probe.AcceptedAtDeregister() {
		t.Fatal("the listener was closed before the node was deregistered")
	}
	if conn, err := net.DialTimeout("tcp", probe.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("A still accepts connections after Stop")
	}
}

// TestC2DrainTimeout stops a server whose handler never returns on its own.
func TestC2DrainTimeout(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	base := runtime.NumGoroutine()
	g := &testutil.Greeter{Started: make(chan struct{}, 1), Release: make(chan struct{}), Ended: make(chan error, 1)}
	srv := testutil.NewServer(t, reg, "greeter", g, server.DrainTimeout(time.Second))
	c := testutil.NewClient(t, reg)
	go func() {
		_ = c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), new(testproto.Response))
	}()
	<-g.Started
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 1100*time.Millisecond {
		t.Fatalf("Stop took %s, want 1s ± 0.1s", d)
	}
	select {
	case err := <-g.Ended:
		if err == nil {
			t.Fatal("the handler was released, not cancelled")
		}
	case <-time.After(time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	c.(interface{ Close() error }).Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base+2 }, "goroutines back to baseline")
}

func fds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestA3ReturnToBaseline loads a server, stops everything, and checks that goroutines,
// file descriptors and heap come back.
func TestA3ReturnToBaseline(t *testing.T) {
	baseG, baseFD, baseHeap := runtime.NumGoroutine(), fds(t), heapInuse()
	func() {
		reg := registry.NewMemoryRegistry()
		srv := server.NewServer(server.Name("greeter"), server.Address("127.0.0.1:0"), server.Registry(reg))
		if err := srv.Handle(srv.NewHandler(new(testutil.Greeter))); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		c := testutil.NewClient(t, reg)
		var wg sync.WaitGroup
		var failures atomic.Int64
		deadline := time.Now().Add(time.Second)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if err := hello(c, context.Background(), "greeter"); err != nil {
						failures.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if failures.Load() != 0 {
			t.Fatalf("%d calls failed", failures.Load())
		}
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		c.(interface{ Close() error }).Close()
		c.Options().Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= baseG+2 }, fmt.Sprintf("goroutines back to %d", baseG))
	testutil.Eventually(t, 5*time.Second, func() bool { return fds(t) <= baseFD+2 }, fmt.Sprintf("fds back to %d", baseFD))
	if h := heapInuse(); h > baseHeap+10<<20 {
		t.Fatalf("heap in use %d, baseline %d", h, baseHeap)
	}
}

var _ = errors.New
