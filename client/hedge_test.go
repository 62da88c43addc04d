package client_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
)

// HedgeNode answers Hello after its delay, counting the calls it started and those
// whose context was cancelled before it answered.
type HedgeNode struct {
	name      string
	delay     time.Duration
	started   atomic.Int64
	cancelled atomic.Int64
}

// Hello greets after the node's delay.
func (h *HedgeNode) Hello(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	h.started.Add(1)
	t := time.NewTimer(h.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		h.cancelled.Add(1)
		return ctx.Err()
	}
	rsp.Message = "Hello " + req.Name + " from " + h.name
	return nil
}

// slowFirst is a strategy whose Nexts give the node at address first, then the others.
func slowFirst(first string) selector.Strategy {
	return func(services []*registry.Service) selector.Next {
		var order []*registry.Node
		for _, s := range services {
			for _, n := range s.Nodes {
				if n.Address == first {
					order = append([]*registry.Node{n}, order...)
				} else {
					order = append(order, n)
				}
			}
		}
		var i atomic.Int64
		return func() (*registry.Node, error) {
			return order[int(i.Add(1)-1)%len(order)], nil
		}
	}
}

// hedgePair starts a slow node (2 s) and a fast one, and a client whose calls go to the
// slow one first.
func hedgePair(t *testing.T, opts ...client.Option) (slow, fast *HedgeNode, c client.Client) {
	t.Helper()
	reg := registry.NewMemoryRegistry()
	slow, fast = &HedgeNode{name: "slow", delay: 2 * time.Second}, &HedgeNode{name: "fast"}
	s := testutil.NewServer(t, reg, "hedge", slow)
	testutil.NewServer(t, reg, "hedge", fast)
	sel := selector.NewSelector(selector.Registry(reg), selector.SetStrategy(slowFirst(s.Options().Address)))
	t.Cleanup(func() { _ = sel.Close() })
	return slow, fast, testutil.NewClient(t, reg, append([]client.Option{client.Selector(sel)}, opts...)...)
}

// An idempotent call whose first node is slow is answered by a second attempt on
// another node after the hedging delay; the slow attempt is cancelled, and the reply
// (protobuf or plain struct) is the fast node's.
func TestHedgingAnswersFromAnotherNode(t *testing.T) {
	slow, fast, c := hedgePair(t, client.Hedging(20*time.Millisecond))
	const calls = 10
	for i := 0; i < calls; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var rsp testproto.Response
		err := c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "h"}), &rsp, client.WithIdempotent())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if rsp.Message != "Hello h from fast" {
			t.Fatalf("reply %q, want the fast node's", rsp.Message)
		}
		var plain struct {
			Message string `json:"message"`
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "p"}), &plain, client.WithIdempotent())
		cancel()
		if err != nil || plain.Message != "Hello p from fast" {
			t.Fatalf("plain reply %q, %v", plain.Message, err)
		}
	}
	if n := fast.started.Load(); n != 2*calls {
		t.Fatalf("fast node got %d attempts, want %d", n, 2*calls)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return slow.cancelled.Load() == 2*calls }, "every losing attempt on the slow node cancelled")
	if n := slow.started.Load(); n != 2*calls {
		t.Fatalf("slow node got %d attempts, want %d", n, 2*calls)
	}
}

// Calls not marked idempotent are never hedged, nor are calls with hedging turned off.
func TestHedgingOnlyIdempotent(t *testing.T) {
	slow, fast, c := hedgePair(t, client.Hedging(10*time.Millisecond))
	var rsp testproto.Response
	call := func(opts ...client.CallOption) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "n"}), &rsp, opts...); err != nil {
			t.Fatal(err)
		}
	}
	call()
	if rsp.Message != "Hello n from slow" || fast.started.Load() != 0 {
		t.Fatalf("a call not marked idempotent was hedged: %q, fast node got %d", rsp.Message, fast.started.Load())
	}
	call(client.WithIdempotent(), client.WithHedging(-1))
	if rsp.Message != "Hello n from slow" || fast.started.Load() != 0 {
		t.Fatalf("a call with hedging off was hedged: %q, fast node got %d", rsp.Message, fast.started.Load())
	}
	if slow.cancelled.Load() != 0 {
		t.Fatal("an unhedged call was cancelled")
	}
}

// Hedged attempts are paid from the retry budget: with no share of calls and no rate,
// only the budget's floor of hedges is sent, and the other calls wait for their first
// node.
func TestHedgingBudget(t *testing.T) {
	_, fast, c := hedgePair(t, client.Hedging(5*time.Millisecond), client.RetryBudget(0, 0))
	var wg sync.WaitGroup
	var fromSlow atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var rsp testproto.Response
			if err := c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "b"}), &rsp, client.WithIdempotent()); err != nil {
				t.Error(err)
			}
			if rsp.Message == "Hello b from slow" {
				fromSlow.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := fast.started.Load(); n != 10 {
		t.Fatalf("%d hedged attempts with an empty budget (its floor is 10)", n)
	}
	if fromSlow.Load() != 10 {
		t.Fatalf("%d calls answered by the slow node, want the 10 not hedged", fromSlow.Load())
	}
}

// With delay 0 a hedged call waits for the p95 latency of its node: a node whose
// answers take about 50 ms is not hedged at 5 ms.
func TestHedgingDelayIsNodeP95(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	a, b := &HedgeNode{name: "a", delay: 50 * time.Millisecond}, &HedgeNode{name: "b", delay: 50 * time.Millisecond}
	sa := testutil.NewServer(t, reg, "hedge", a)
	testutil.NewServer(t, reg, "hedge", b)
	sel := selector.NewSelector(selector.Registry(reg), selector.SetStrategy(slowFirst(sa.Options().Address)))
	t.Cleanup(func() { _ = sel.Close() })
	c := testutil.NewClient(t, reg, client.Selector(sel), client.Hedging(0))
	var rsp testproto.Response
	for i := 0; i < 30; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "q"}), &rsp, client.WithIdempotent())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The first calls waited DefaultHedgeDelay (100 ms), more than a's 50 ms; once a's
	// p95 (the top of its bucket, 50-59 ms) is known, only a call slower than that (noise
	// of this machine) is hedged. A delay not taken from the p95 (say 5 ms) would hedge
	// all 30.
	if n := b.started.Load(); n > 5 {
		t.Fatalf("%d of 30 calls hedged on a node answering in a steady 50 ms", n)
	}
	d, ok := sel.(selector.Latencies).Latency("hedge", &registry.Node{Id: nodeID(t, reg, sa.Options().Address)}, 0.95)
	if !ok || d < 50*time.Millisecond || d > time.Second {
		t.Fatalf("p95 of a: %v %v", d, ok)
	}
}

func nodeID(t *testing.T, reg registry.Registry, addr string) string {
	t.Helper()
	svcs, err := reg.GetService("hedge")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		for _, n := range s.Nodes {
			if n.Address == addr {
				return n.Id
			}
		}
	}
	t.Fatalf("no node at %s", addr)
	return ""
}

// With delay 0, a call to a node slower than the rest is hedged after the p95 of the
// quickest node: once the fast node's latency is known (a few ms), the second attempt
// starts long before DefaultHedgeDelay (100 ms), let alone the slow node's latency.
func TestHedgingDelayIsQuickestNodeP95(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	slow, fast := &HedgeNode{name: "slow", delay: time.Second}, &HedgeNode{name: "fast"}
	s := testutil.NewServer(t, reg, "hedge", slow)
	testutil.NewServer(t, reg, "hedge", fast)
	sel := selector.NewSelector(selector.Registry(reg), selector.SetStrategy(slowFirst(s.Options().Address)))
	t.Cleanup(func() { _ = sel.Close() })
	var mu sync.Mutex
	var starts []time.Time
	wrap := func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, node *registry.Node, req client.Request, rsp interface{}, opts client.CallOptions) error {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			return next(ctx, node, req, rsp, opts)
		}
	}
	c := testutil.NewClient(t, reg, client.Selector(sel), client.Hedging(0), client.WrapCall(wrap), client.RetryBudget(1, 100))
	var gaps []time.Duration
	for i := 0; i < 40; i++ {
		mu.Lock()
		starts = starts[:0]
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var rsp testproto.Response
		err := c.Call(ctx, c.NewRequest("hedge", "HedgeNode.Hello", &testproto.Request{Name: "q"}), &rsp, client.WithIdempotent())
		cancel()
		if err != nil || rsp.Message != "Hello q from fast" {
			t.Fatalf("call %d: %q %v", i, rsp.Message, err)
		}
		mu.Lock()
		if len(starts) != 2 {
			t.Fatalf("call %d made %d attempts, want 2 (slow, then the hedge)", i, len(starts))
		}
		gaps = append(gaps, starts[1].Sub(starts[0]))
		mu.Unlock()
	}
	d, ok := sel.(selector.Latencies).Latency("hedge", nil, 0.95)
	t.Logf("hedge delays: first %v, last %v; the quickest node's p95 %v (%v)", gaps[0], gaps[len(gaps)-1], d, ok)
	// the hedge timer starts when the first attempt is launched; the wrapper records the
	// attempt's start a little later, on its goroutine (0.2 ms under load here)
	if gaps[0] < client.DefaultHedgeDelay-5*time.Millisecond {
		t.Fatalf("the first call hedged after %v, before DefaultHedgeDelay with nothing known", gaps[0])
	}
	// the last ten: the fast node's p95 is known (16 samples or more)
	for _, g := range gaps[30:] {
		if g >= client.DefaultHedgeDelay/2 {
			t.Fatalf("hedged after %v with the fast node's p95 at %v", g, d)
		}
	}
}
