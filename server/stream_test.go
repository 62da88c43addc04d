package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/protorpc"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
)

func openStream(t testing.TB, c client.Client, ctx context.Context, ep string, body interface{}, ct string) client.Stream {
	t.Helper()
	st, err := c.Stream(ctx, c.NewRequest("streamer", ep, body, client.WithContentType(ct)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func echoStream(t testing.TB, st client.Stream, n int) {
	t.Helper()
	sendErr := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if err := st.Send(&testproto.Echo{Seq: int64(i), Text: "m"}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- st.CloseSend()
	}()
	for i := 1; i <= n; i++ {
		var m testproto.Echo
		if err := st.Recv(&m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Seq != int64(i) {
			t.Fatalf("message %d arrived as %d", i, m.Seq)
		}
	}
	if err := st.Recv(new(testproto.Echo)); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
}

func TestStreamEcho(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(t, reg)
	for _, ct := range []string{"application/json", "application/protobuf"} {
		t.Run(ct, func(t *testing.T) {
			echoStream(t, openStream(t, c, context.Background(), "Streamer.Echo", &testproto.Echo{}, ct), 10000)
		})
	}
	t.Run("100 concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				echoStream(t, openStream(t, c, context.Background(), "Streamer.Echo", nil, "application/protobuf"), 200)
			}()
		}
		wg.Wait()
	})
}

// TestStreamMessagesOfChangingSize: each side of a stream encodes its messages into one
// buffer it reuses, and the native transport copies small bodies into shared chunks; a
// short message after a long one, a message too large to keep the buffer of, and an
// empty one each arrive exactly as sent.
func TestStreamMessagesOfChangingSize(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(t, reg)
	sizes := []int{300, 1, 100 << 10, 5, 0, 600, 2, 4000, 3, 70 << 10, 0, 1}
	for _, ct := range []string{"application/json", "application/protobuf"} {
		t.Run(ct, func(t *testing.T) {
			st := openStream(t, c, context.Background(), "Streamer.Echo", nil, ct)
			for i, n := range sizes {
				want := strings.Repeat(string(rune('a'+i)), n)
				if err := st.Send(&testproto.Echo{Seq: int64(i), Text: want}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				var m testproto.Echo
				if err := st.Recv(&m); err != nil {
					t.Fatalf("recv %d: %v", i, err)
				}
				if m.Seq != int64(i) || m.Text != want {
					t.Fatalf("message %d (%d bytes) came back as %d, %d bytes: %.20q", i, n, m.Seq, len(m.Text), m.Text)
				}
			}
		})
	}
}

func TestServerStreaming(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(t, reg)
	st := openStream(t, c, context.Background(), "Streamer.Count", &testproto.Request{Name: "50"}, "application/json")
	for i := 1; i <= 50; i++ {
		var m testproto.Echo
		if err := st.Recv(&m); err != nil || m.Seq != int64(i) {
			t.Fatalf("%d: %d %v", i, m.Seq, err)
		}
	}
	if err := st.Recv(new(testproto.Echo)); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// a bad request ends the stream with the handler's error
	st = openStream(t, c, context.Background(), "Streamer.Count", &testproto.Request{Name: "many"}, "application/json")
	if err := st.Recv(new(testproto.Echo)); errors.Code(err) != 400 {
		t.Fatalf("got %v", err)
	}
}

func TestCloseSend(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(t, reg)
	st := openStream(t, c, context.Background(), "Streamer.Half", nil, "application/protobuf")
	for i := 0; i < 3; i++ {
		if err := st.Send(&testproto.Echo{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		var m testproto.Echo
		if err := st.Recv(&m); err != nil || m.Seq != int64(3+i) {
			t.Fatalf("message %d: %d %v", i, m.Seq, err)
		}
	}
	if err := st.Recv(new(testproto.Echo)); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if st.Error() != nil {
		t.Fatal(st.Error())
	}
}

func TestStreamErrorsAndPanics(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer), server.WithLogger(quiet))
	c := testutil.NewClient(t, reg)
	st := openStream(t, c, context.Background(), "Streamer.Fail", nil, "application/json")
	err := st.Recv(new(testproto.Echo))
	var e *errors.Error
	if !stderrors.As(err, &e) || e.Code != 400 || e.Id != "streamer" || e.Detail != "bad stream" {
		t.Fatalf("got %v", err)
	}
	if st.Error() == nil {
		t.Fatal("Error() is nil after a failed stream")
	}
	other := openStream(t, c, context.Background(), "Streamer.Echo", nil, "application/json")
	st = openStream(t, c, context.Background(), "Streamer.Panic", nil, "application/json")
	if err := st.Recv(new(testproto.Echo)); errors.Code(err) != 500 {
		t.Fatalf("panic: %v", err)
	}
	echoStream(t, other, 5) // the other stream on the same connection lives on
	if _, err := c.Stream(context.Background(), c.NewRequest("streamer", "Streamer.Nope", nil)); errors.Code(err) != 404 {
		t.Fatalf("unknown stream endpoint: %v", err)
	}
}

// TestStreamCancel: cancelling the caller's context ends the handler's context promptly,
// and a thousand opened-and-cancelled streams leave no goroutine behind.
func TestStreamCancel(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	s := &testutil.Streamer{Started: make(chan struct{}, 1), Ended: make(chan error, 1)}
	testutil.NewServer(t, reg, "streamer", s)
	c := testutil.NewClient(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	st := openStream(t, c, ctx, "Streamer.Wait", nil, "application/json")
	<-s.Started
	start := time.Now()
	cancel()
	select {
	case <-s.Ended:
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("the handler saw the cancel after %s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler's context did not end")
	}
	if err := st.Recv(new(testproto.Echo)); !stderrors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}

	s.Started, s.Ended = nil, nil
	base := runtime.NumGoroutine()
	n := 1000
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := c.Stream(ctx, c.NewRequest("streamer", "Streamer.Echo", nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(&testproto.Echo{Seq: 1})
		cancel()
		_ = st.Close()
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base+5 }, fmt.Sprintf("goroutines back to %d", base))
}

// TestStreamBackpressure: a client that never reads makes the server's Send block, and
// fail once the stream's context ends; the server buffers only what flow control allows.
func TestStreamBackpressure(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	s := &testutil.Streamer{Ended: make(chan error, 1)}
	testutil.NewServer(t, reg, "streamer", s)
	c := testutil.NewClient(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	openStream(t, c, ctx, "Streamer.Flood", &testproto.Request{}, "application/protobuf")
	var last int64
	testutil.Eventually(t, 5*time.Second, func() bool {
		n := s.Sent.Load()
		stalled := n > 0 && n == last
		last = n
		time.Sleep(50 * time.Millisecond) // sample the send count
		return stalled
	}, "the server's Send blocks when nobody reads")
	if n := s.Sent.Load(); n > 20000 {
		t.Fatalf("the server sent %d KiB into a stream nobody reads", n)
	}
	cancel()
	select {
	case err := <-s.Ended:
		if err == nil {
			t.Fatal("Send did not fail")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the blocked Send did not end with the stream")
	}
}

// TestNDJSONOverHTTP1: a plain HTTP/1.1 POST to a server-streaming endpoint gets each
// message as a line as soon as it is sent.
func TestNDJSONOverHTTP1(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	s := &testutil.Streamer{Next: make(chan struct{})}
	srv := testutil.NewServer(t, reg, "streamer", s)
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Options().Address+"/Streamer/Step", strings.NewReader(`{"name":"go"}`))
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	type result struct {
		rsp *http.Response
		err error
	}
	got := make(chan result, 1)
	go func() {
		rsp, err := tr.RoundTrip(req)
		got <- result{rsp, err}
	}()
	s.Next <- struct{}{} // the first message makes the headers go out
	r := <-got
	rsp, err := r.rsp, r.err
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	if rsp.StatusCode != 200 || rsp.ProtoMajor != 1 || rsp.TransferEncoding[0] != "chunked" {
		t.Fatalf("%d %s %v", rsp.StatusCode, rsp.Proto, rsp.TransferEncoding)
	}
	lines := bufio.NewReader(rsp.Body)
	for i := 1; i <= 3; i++ {
		line, err := lines.ReadString('\n')
		if err != nil || !strings.Contains(line, fmt.Sprintf(`"step %d"`, i)) {
			t.Fatalf("line %d: %q %v", i, line, err)
		}
		// the handler is still running: it sends the next line only when told
		if i < 3 {
			s.Next <- struct{}{}
		}
	}
	close(s.Next)
	if rest, _ := io.ReadAll(lines); len(rest) != 0 {
		t.Fatalf("extra output %q", rest)
	}
	if rsp.Trailer.Get("Micro-Error") != "" {
		t.Fatalf("error trailer %q", rsp.Trailer.Get("Micro-Error"))
	}
}

func BenchmarkStream(b *testing.B) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(b, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(b, reg)
	st, err := c.Stream(context.Background(), c.NewRequest("streamer", "Streamer.Echo", nil, client.WithContentType("application/protobuf")))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	go func() {
		for i := 0; i < b.N; i++ {
			if err := st.Send(&testproto.Echo{Seq: int64(i)}); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var m testproto.Echo
		if err := st.Recv(&m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// TestJSONRPCBody: a plain JSON-RPC body without Micro-* headers is served as Go Micro
// serves it.
func TestJSONRPCBody(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	status, hdr, body := post(t, srv.Options().Address, "/", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"method":"Greeter.Hello","params":[{"name":"alice"}],"id":1}`))
	if status != 200 || compactJSON(body) != `{"id":"1","result":{"message":"Hello alice"},"error":null}` || hdr.Get("Micro-Error") != "" {
		t.Fatalf("%d %s", status, body)
	}
	status, hdr, body = post(t, srv.Options().Address, "/", map[string]string{"Content-Type": "application/json-rpc"},
		[]byte(`{"method":"Greeter.Fail","params":[{"name":"bob"}],"id":"x"}`))
	if status != 200 || !strings.Contains(string(body), `"id":"x","result":null,"error":"{\"id\":\"greeter\",\"code\":404`) || errors.Parse(hdr.Get("Micro-Error")).Code != 404 {
		t.Fatalf("%d %s %v", status, body, hdr)
	}
}

// TestProtoRPCBody: a proto-rpc envelope without Micro-* headers.
func TestProtoRPCBody(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	var req bytesBuf
	_ = protorpc.NewCodec(&req).Write(&codec.Message{Type: codec.Request, Endpoint: "Greeter.Hello", Id: "9"}, &testproto.Request{Name: "pb"})
	status, _, body := post(t, srv.Options().Address, "/", map[string]string{"Content-Type": "application/protobuf"}, req.Bytes())
	if status != 200 {
		t.Fatalf("%d %q", status, body)
	}
	c := protorpc.NewCodec(&bytesBuf{*bytes.NewBuffer(body)})
	var m codec.Message
	var rsp testproto.Response
	if err := c.ReadHeader(&m, codec.Response); err != nil || m.Id != "9" || m.Error != "" {
		t.Fatalf("%+v %v", m, err)
	}
	if err := c.ReadBody(&rsp); err != nil || rsp.Message != "Hello pb" {
		t.Fatalf("%q %v", rsp.Message, err)
	}
}

type bytesBuf struct{ bytes.Buffer }

func (*bytesBuf) Close() error { return nil }

func compactJSON(b []byte) string {
	var out bytes.Buffer
	_ = json.Compact(&out, bytes.TrimSpace(b))
	return out.String()
}

func TestStreamEndpointsAdvertised(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	svcs, err := reg.GetService("streamer")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range svcs[0].Endpoints {
		if e.Metadata["stream"] != "true" {
			t.Fatalf("%s is not advertised as a stream", e.Name)
		}
		if e.Name == "Streamer.Count" && (e.Request == nil || e.Request.Name != "Request") {
			t.Fatalf("the request of %s is not described: %+v", e.Name, e.Request)
		}
	}
}

// TestStreamOutlivesMaxTimeout: the server's cap on handler deadlines bounds calls, not
// streams without a deadline of their own.
func TestStreamOutlivesMaxTimeout(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer), server.MaxTimeout(100*time.Millisecond))
	c := testutil.NewClient(t, reg)
	st := openStream(t, c, context.Background(), "Streamer.Echo", nil, "application/json")
	time.Sleep(300 * time.Millisecond) // past the cap
	echoStream(t, st, 3)
}

// BenchmarkStreamEcho is the benchmark suite's stream echo: each caller sends one
// message on its stream and waits for the echo (lockstep), 16 streams per CPU.
func BenchmarkStreamEcho(b *testing.B) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(b, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(b, reg)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		st, err := c.Stream(context.Background(), c.NewRequest("streamer", "Streamer.Echo", nil, client.WithContentType("application/protobuf")))
		if err != nil {
			b.Error(err)
			return
		}
		defer st.Close()
		for pb.Next() {
			if err := st.Send(&testproto.Echo{Text: "alice"}); err != nil {
				b.Error(err)
				return
			}
			var m testproto.Echo
			if err := st.Recv(&m); err != nil || m.Text != "alice" {
				b.Error(err)
				return
			}
		}
	})
}
