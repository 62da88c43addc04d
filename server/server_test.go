package server_test

import (
	"bytes"
	"context"
	stderrors "errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
)

// post sends one HTTP/1.1 request to a server and returns the status, headers and body.
func post(t testing.TB, addr, path string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rsp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rsp.StatusCode, rsp.Header, b
}

func jsonHeaders(endpoint string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Micro-Endpoint": endpoint}
}

func TestCallByNameJSONAndProto(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	c := testutil.NewClient(t, reg)
	for _, ct := range []string{"application/json", "application/protobuf"} {
		t.Run(ct, func(t *testing.T) {
			req := c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "alice"}, client.WithContentType(ct))
			var rsp testproto.Response
			if err := c.Call(context.Background(), req, &rsp); err != nil {
				t.Fatal(err)
			}
			if rsp.Message != "Hello alice" {
				t.Fatalf("got %q", rsp.Message)
			}
		})
	}
}

func TestInvokeTyped(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "typed", nil)
	err := server.HandleFunc(srv, "Math.Double", func(ctx context.Context, in *testproto.Echo, out *testproto.Echo) error {
		out.Seq = in.Seq * 2
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewClient(t, reg)
	out, err := client.Invoke[testproto.Echo, testproto.Echo](context.Background(), c, "typed", "Math.Double", &testproto.Echo{Seq: 21})
	if err != nil {
		t.Fatal(err)
	}
	if out.Seq != 42 {
		t.Fatalf("got %d", out.Seq)
	}
	if err := server.HandleFunc(srv, "Math.Double", func(ctx context.Context, in *testproto.Echo, out *testproto.Echo) error { return nil }); err == nil {
		t.Fatal("registering an endpoint twice succeeded")
	}
	if err := server.HandleFunc(srv, "Double", func(ctx context.Context, in *testproto.Echo, out *testproto.Echo) error { return nil }); err == nil {
		t.Fatal("an endpoint name without a dot was accepted")
	}
}

func TestMetadataAndDeadlineReachHandler(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	c := testutil.NewClient(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ctx = metadata.Set(ctx, "X-Tenant", "acme")
	var rsp testproto.Response
	if err := c.Call(ctx, c.NewRequest("greeter", "Greeter.Meta", &testproto.Request{Name: "X-Tenant"}), &rsp); err != nil {
		t.Fatal(err)
	}
	val, ms, _ := strings.Cut(rsp.Message, "|")
	if val != "acme" {
		t.Fatalf("metadata: got %q", val)
	}
	var left int
	for _, ch := range ms {
		left = left*10 + int(ch-'0')
	}
	if left <= 2000 || left > 3000 {
		t.Fatalf("handler deadline: %s ms left, want a little under 3000", ms)
	}
}

func TestHandlerErrorRoundTrip(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	c := testutil.NewClient(t, reg)
	var rsp testproto.Response
	err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Fail", &testproto.Request{Name: "bob"}), &rsp)
	var merr *errors.Error
	if !stderrors.As(err, &merr) {
		t.Fatalf("error %v (%T) is not an *errors.Error", err, err)
	}
	if merr.Id != "greeter" || merr.Code != 404 || merr.Detail != "no such name: bob" || merr.Status != "Not Found" {
		t.Fatalf("got %+v", merr)
	}
	if !stderrors.Is(err, errors.NotFound("", "")) {
		t.Fatal("errors.Is does not match a 404")
	}
	if !stderrors.Is(err, errors.NotFound("greeter", "no such name: bob")) {
		t.Fatal("errors.Is does not match the same error")
	}
	if stderrors.Is(err, errors.NotFound("other", "")) {
		t.Fatal("errors.Is matched another id")
	}
}

func TestB6CancelStaysMatchable(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := &testutil.Greeter{Started: make(chan struct{}, 1), Release: make(chan struct{}), Ended: make(chan error, 1)}
	testutil.NewServer(t, reg, "greeter", g)
	c := testutil.NewClient(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var rsp testproto.Response
		done <- c.Call(ctx, c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), &rsp)
	}()
	<-g.Started
	cancelled := time.Now()
	cancel()
	err := <-done
	if !stderrors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	select {
	case herr := <-g.Ended:
		if !stderrors.Is(herr, context.Canceled) {
			t.Fatalf("handler context ended with %v", herr)
		}
		bound := 20 * time.Millisecond
		if testutil.Race {
			bound = 50 * time.Millisecond
		}
		if d := time.Since(cancelled); d > bound {
			t.Fatalf("the handler saw the cancel after %s (B6)", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
}

func TestDeadlineExceededStaysMatchable(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := &testutil.Greeter{Release: make(chan struct{})}
	testutil.NewServer(t, reg, "greeter", g)
	c := testutil.NewClient(t, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var rsp testproto.Response
	err := c.Call(ctx, c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), &rsp)
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if errors.Code(err) != 408 {
		t.Fatalf("code %d, want 408", errors.Code(err))
	}
}

func TestHandleRefusesValueWithoutEndpoints(t *testing.T) {
	srv := server.NewServer()
	type Empty struct{}
	err := srv.Handle(srv.NewHandler(new(Empty)))
	if err == nil || !strings.Contains(err.Error(), "Empty") {
		t.Fatalf("got %v, want an error naming Empty", err)
	}
	if err := srv.Handle(srv.NewHandler(&badHandler{})); err == nil || !strings.Contains(err.Error(), "badHandler") {
		t.Fatalf("got %v", err)
	}
	if err := srv.Handle(srv.NewHandler(&Wrong{})); err == nil || !strings.Contains(err.Error(), "Wrong") {
		t.Fatalf("got %v", err)
	}
}

type badHandler struct{}

func (b *badHandler) Hello(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	return nil
}

// Wrong has an exported method of the wrong shape only.
type Wrong struct{}

// Hello returns a string instead of an error.
func (w *Wrong) Hello(ctx context.Context, req *testproto.Request, rsp *testproto.Response) string {
	return ""
}

func TestEndpointsAdvertised(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	svcs, err := reg.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range svcs[0].Endpoints {
		names = append(names, e.Name)
	}
	want := "Greeter.Block,Greeter.Fail,Greeter.Hello,Greeter.Meta,Greeter.Panic"
	if strings.Join(names, ",") != want {
		t.Fatalf("endpoints %v, want %s", names, want)
	}
	n := svcs[0].Nodes[0]
	if n.Metadata["protocol"] != "mucp" || n.Metadata["transport"] != "http" {
		t.Fatalf("node metadata %v", n.Metadata)
	}
	if !strings.HasPrefix(n.Address, "127.0.0.1:") {
		t.Fatalf("node address %s", n.Address)
	}
}

func TestConcurrentCalls(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	testutil.NewServer(t, reg, "greeter", g)
	c := testutil.NewClient(t, reg)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				var rsp testproto.Response
				if err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "x"}), &rsp); err != nil {
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
	if g.Calls.Load() != 64*20 {
		t.Fatalf("%d calls", g.Calls.Load())
	}
}

func metadataSet(ctx context.Context, k, v string) context.Context { return metadata.Set(ctx, k, v) }

// downRegistry fails the first `fail` Register calls: a registry that is unreachable
// when the server starts (a fault the memory registry cannot have for real).
type downRegistry struct {
	registry.Registry
	fail  atomic.Int32
	calls atomic.Int32
}

func (d *downRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	d.calls.Add(1)
	if d.fail.Add(-1) >= 0 {
		return stderrors.New("registry unreachable")
	}
	return d.Registry.Register(s, opts...)
}

// TestRegisterRetriesSoonAfterFailure: a server whose registry is down when it starts
// registers a second after the registry is back, not a whole interval later, and then
// renews at the interval again.
func TestRegisterRetriesSoonAfterFailure(t *testing.T) {
	reg := &downRegistry{Registry: registry.NewMemoryRegistry()}
	reg.fail.Store(3) // Start's registration tries three times
	start := time.Now()
	testutil.NewServer(t, reg, "late", new(testutil.Greeter), server.WithLogger(quiet), server.RegisterInterval(time.Minute))
	testutil.Eventually(t, 3*time.Second, func() bool {
		_, err := reg.GetService("late")
		return err == nil
	}, "the node is registered soon after the registry answers")
	t.Logf("registered %s after start", time.Since(start).Round(time.Millisecond))
	if n := reg.calls.Load(); n != 4 {
		t.Fatalf("%d Register calls, want 3 failed and 1 that worked", n)
	}
}
