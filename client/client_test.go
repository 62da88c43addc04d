package client_test

import (
	"context"
	stderrors "errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

func hello(c client.Client, opts ...client.CallOption) (string, error) {
	var rsp testproto.Response
	err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "x"}), &rsp, opts...)
	return rsp.Message, err
}

// TestRandomDistribution: three instances behind the random selector each get 33% ± 5%
// of 3,000 calls.
func TestRandomDistribution(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	var gs []*testutil.Greeter
	for _, n := range []string{"a", "b", "c"} {
		g := &testutil.Greeter{Node: n}
		gs = append(gs, g)
		testutil.NewServer(t, reg, "greeter", g)
	}
	c := testutil.NewClient(t, reg)
	const calls = 3000
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls/8; i++ {
				if _, err := hello(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(calls / 8 * 8)
	for i, g := range gs {
		share := float64(g.Calls.Load()) / float64(total)
		if share < 0.28 || share > 0.38 {
			t.Fatalf("instance %d got %.1f%% of the calls", i, share*100)
		}
	}
}

// TestRetryPastClosedListener: with one instance's listener closed (still registered),
// every call succeeds through retries on the others.
func TestRetryPastClosedListener(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	for _, n := range []string{"a", "b"} {
		testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Node: n})
	}
	// a registered node whose listener is closed
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if err := reg.Register(&registry.Service{Name: "greeter", Version: "latest", Nodes: []*registry.Node{{Id: "dead", Address: dead, Metadata: map[string]string{"protocol": "mucp"}}}}); err != nil {
		t.Fatal(err)
	}
	var marks atomic.Int64
	sel := &markCounter{Selector: selector.NewSelector(selector.Registry(reg)), n: &marks}
	defer sel.Close()
	c := testutil.NewClient(t, reg, client.Selector(sel))
	for i := 0; i < 3000; i++ {
		if _, err := hello(c); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if marks.Load() == 0 {
		t.Fatal("no connection failure was reported to the selector")
	}
}

type markCounter struct {
	selector.Selector
	n *atomic.Int64
}

func (m *markCounter) Mark(service string, node *registry.Node, err error) {
	if err != nil && node.Id == "dead" {
		m.n.Add(1)
	}
	m.Selector.Mark(service, node, err)
}

// TestApplicationErrorRunsOnce: a handler's error is final, never retried (B8 a).
func TestApplicationErrorRunsOnce(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	testutil.NewServer(t, reg, "greeter", g)
	c := testutil.NewClient(t, reg)
	var rsp testproto.Response
	err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Fail", &testproto.Request{}), &rsp, client.WithRetries(5))
	if errors.Code(err) != 404 {
		t.Fatalf("got %v", err)
	}
	if g.Calls.Load() != 1 {
		t.Fatalf("handler ran %d times", g.Calls.Load())
	}
}

// readUntilRequest reads an HTTP/2 connection (prior knowledge) until a whole request
// has arrived: the frame that ends its stream (END_STREAM on DATA or HEADERS).
//
// A connection that opens with micro's native protocol is answered as a micro server
// would, and read until its first request frame.
func readUntilRequest(conn net.Conn) {
	preface := make([]byte, 24)
	if _, err := io.ReadFull(conn, preface); err != nil {
		return
	}
	if string(preface[:24]) == "\x00MICRO-NATIVE-WIRE/1.0\r\n" {
		hello := append([]byte("\x00MICRO-NATIVE-WIRE/1.0\r\n"), 0, 0, 0, 250, 0, 0x40, 0, 0)
		if _, err := conn.Write(hello); err != nil {
			return
		}
		hdr := make([]byte, 10)
		for i := 0; i < 100; i++ { // frames until the request (type 1)
			if _, err := io.ReadFull(conn, hdr); err != nil {
				return
			}
			n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil || hdr[4] == 1 {
				return
			}
		}
		return
	}
	hdr := make([]byte, 9)
	for i := 0; i < 100; i++ {
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil {
			return
		}
		if (hdr[3] == 0x0 || hdr[3] == 0x1) && hdr[4]&0x1 != 0 { // DATA or HEADERS with END_STREAM
			return
		}
	}
}

// resetAfterRequest accepts connections, reads a request, and resets the connection:
// the request was sent, so a call that is not idempotent must not be retried (B8 b).
func TestLostReplyNotRetriedUnlessIdempotent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			readUntilRequest(conn) // the request arrived
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		}
	}()
	defer func() { l.Close(); wg.Wait() }()
	c := testutil.NewClient(t, registry.NewMemoryRegistry())
	_, err = hello(c, client.WithAddress(l.Addr().String()), client.WithRetries(3))
	if err == nil || transport.IsNotSent(err) {
		t.Fatalf("got %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("a call that may have run was sent %d times", n)
	}
	_, err = hello(c, client.WithAddress(l.Addr().String()), client.WithRetries(3), client.WithIdempotent())
	if err == nil {
		t.Fatal("no error")
	}
	if n := accepted.Load(); n != 1+4 {
		t.Fatalf("an idempotent call was sent %d times, want 4", n-1)
	}
}

func TestWithAddressWithoutRegistry(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	c := testutil.NewClient(t, registry.NewMemoryRegistry()) // knows nothing
	msg, err := hello(c, client.WithAddress(srv.Options().Address))
	if err != nil || msg != "Hello x" {
		t.Fatalf("%q %v", msg, err)
	}
}

func TestServiceNotFound(t *testing.T) {
	c := testutil.NewClient(t, registry.NewMemoryRegistry())
	_, err := hello(c)
	if !stderrors.Is(err, selector.ErrNotFound) || errors.Code(err) != 503 {
		t.Fatalf("got %v", err)
	}
}

func TestConnectionRefusedIsTyped(t *testing.T) {
	addr := testutil.FreeAddr(t)
	c := testutil.NewClient(t, registry.NewMemoryRegistry())
	_, err := hello(c, client.WithAddress(addr), client.WithRetries(1))
	if !transport.IsNotSent(err) || errors.Code(err) != 503 {
		t.Fatalf("got %v", err)
	}
}

// TestCallWrappersRunInOrder checks client-level and call-level call wrappers.
func TestCallWrappersRunInOrder(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	var order []string
	var mu sync.Mutex
	wrap := func(name string) client.CallWrapper {
		return func(next client.CallFunc) client.CallFunc {
			return func(ctx context.Context, node *registry.Node, req client.Request, rsp interface{}, opts client.CallOptions) error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return next(ctx, node, req, rsp, opts)
			}
		}
	}
	c := testutil.NewClient(t, reg, client.WrapCall(wrap("client1"), wrap("client2")))
	if _, err := hello(c, client.WithCallWrapper(wrap("call"))); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "client1,client2,call" {
		t.Fatalf("order %s", got)
	}
}

func TestRequestTimeoutOption(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Release: make(chan struct{})})
	c := testutil.NewClient(t, reg)
	start := time.Now()
	var rsp testproto.Response
	err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), &rsp, client.WithRequestTimeout(150*time.Millisecond))
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestSelectOptionFilters(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Node: "v1"}, server.Version("v1"))
	testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Node: "v2"}, server.Version("v2"))
	c := testutil.NewClient(t, reg)
	for i := 0; i < 50; i++ {
		msg, err := hello(c, client.WithSelectOption(selector.WithFilter(selector.FilterVersion("v2"))))
		if err != nil || msg != "Hello x from v2" {
			t.Fatalf("%q %v", msg, err)
		}
	}
}

// TestB8RetryBudget: against a backend that fails every call with 503, idempotent calls
// are retried only within the budget: at most 20 % more attempts than calls, plus 10 a
// second (and the burst the budget starts with).
func TestB8RetryBudget(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "failing", nil)
	var handled atomic.Int64
	if err := server.HandleFunc(srv, "Greeter.Hello", func(ctx context.Context, in *testproto.Request, out *testproto.Response) error {
		handled.Add(1)
		return errors.ServiceUnavailable("failing", "down")
	}); err != nil {
		t.Fatal(err)
	}
	noWait := client.Backoff(func(context.Context, client.Request, int) (time.Duration, error) { return 0, nil })
	c := testutil.NewClient(t, reg, noWait)
	call := func(c client.Client, opts ...client.CallOption) error {
		var rsp testproto.Response
		return c.Call(context.Background(), c.NewRequest("failing", "Greeter.Hello", &testproto.Request{}), &rsp, append(opts, client.WithIdempotent())...)
	}
	start := time.Now()
	calls := 1000
	for i := 0; i < calls; i++ {
		if errors.Code(call(c)) != 503 {
			t.Fatal("want 503")
		}
	}
	elapsed := time.Since(start).Seconds()
	limit := float64(calls)*1.2 + 10*elapsed + 20
	if n := float64(handled.Load()); n > limit {
		t.Fatalf("%.0f attempts for %d calls in %.1fs, the budget allows %.0f", n, calls, elapsed, limit)
	}
	// without a budget every call is retried to the end
	handled.Store(0)
	c = testutil.NewClient(t, reg, noWait, client.RetryBudget(-1, 0))
	for i := 0; i < 10; i++ {
		_ = call(c, client.WithRetries(3))
	}
	if n := handled.Load(); n != 40 {
		t.Fatalf("%d attempts without a budget, want 40", n)
	}
}

// TestConcurrentCallsOfChangingSize: the client encodes requests and the server replies
// into pooled buffers. Many callers at once, each with requests of its own that grow and
// shrink, get their own replies whole, over the native protocol and over HTTP (a node
// registered without the native protocol's metadata), in JSON and protobuf.
func TestConcurrentCallsOfChangingSize(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	svcs, err := reg.GetService("greeter")
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("%v %v", svcs, err)
	}
	// the same node, registered as a server of HTTP only
	httpReg := registry.NewMemoryRegistry()
	node := *svcs[0].Nodes[0]
	node.Metadata = map[string]string{}
	for k, v := range svcs[0].Nodes[0].Metadata {
		if k != transport.WireMetadata {
			node.Metadata[k] = v
		}
	}
	svc := *svcs[0]
	svc.Nodes = []*registry.Node{&node}
	if err := httpReg.Register(&svc); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 200, 3, 70 << 10, 5, 4000, 2, 100 << 10, 1}
	for _, path := range []struct {
		name string
		reg  registry.Registry
	}{{"native", reg}, {"http", httpReg}} {
		c := testutil.NewClient(t, path.reg)
		for _, ct := range []string{"application/json", "application/protobuf"} {
			t.Run(path.name+" "+ct, func(t *testing.T) {
				var wg sync.WaitGroup
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 20; i++ {
							name := strings.Repeat(string(rune('a'+g)), sizes[(g+i)%len(sizes)])
							var rsp testproto.Response
							req := c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: name}, client.WithContentType(ct))
							if err := c.Call(context.Background(), req, &rsp); err != nil {
								t.Errorf("caller %d call %d: %v", g, i, err)
								return
							}
							if rsp.Message != "Hello "+name {
								t.Errorf("caller %d call %d: %d bytes back for %d sent: %.30q", g, i, len(rsp.Message), len(name)+6, rsp.Message)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}
