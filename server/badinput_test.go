package server_test

import (
	"bufio"
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

// quiet is a logger for tests that provoke error logs on purpose.
var quiet = logger.NewLogger(logger.WithOutput(io.Discard))

func checkError(t *testing.T, status int, hdr http.Header, body []byte, wantStatus int, wantDetail string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, body)
	}
	e := errors.Parse(string(body))
	if e.Code != int32(wantStatus) || !strings.Contains(e.Detail, wantDetail) || e.Status == "" {
		t.Fatalf("body %s: want code %d and detail containing %q", body, wantStatus, wantDetail)
	}
	if hdr.Get("Micro-Error") != strings.TrimSpace(string(body)) {
		t.Fatalf("Micro-Error %q differs from the body %q", hdr.Get("Micro-Error"), body)
	}
	if hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("error Content-Type %q", hdr.Get("Content-Type"))
	}
}

func TestBadInput(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	srv := testutil.NewServer(t, reg, "greeter", g, server.WithLogger(quiet))
	addr := srv.Options().Address
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   string
		status int
		detail string
	}{
		{"malformed JSON", "/", jsonHeaders("Greeter.Hello"), `{"name": `, 400, "cannot decode the application/json request"},
		{"JSON of the wrong type", "/", jsonHeaders("Greeter.Hello"), `{"name": 5}`, 400, "cannot decode"},
		{"malformed protobuf", "/", map[string]string{"Content-Type": "application/protobuf", "Micro-Endpoint": "Greeter.Hello"}, "\xff\xff\xff", 400, "cannot decode"},
		{"unknown endpoint", "/", jsonHeaders("Greeter.Nope"), `{}`, 404, `unknown endpoint "Greeter.Nope"`},
		{"unknown handler", "/", jsonHeaders("Nope.Hello"), `{}`, 404, `unknown endpoint "Nope.Hello"`},
		{"unsupported Content-Type", "/", map[string]string{"Content-Type": "application/xml", "Micro-Endpoint": "Greeter.Hello"}, `<a/>`, 415, `unsupported Content-Type "application/xml"`},
		{"form body from curl -d", "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Micro-Endpoint": "Greeter.Hello"}, `a=b`, 415, "unsupported Content-Type"},
		{"endpoint without a dot", "/", jsonHeaders("Hello"), `{}`, 400, "not of the form Type.Method"},
		{"endpoint with two dots", "/", jsonHeaders("A.B.C"), `{}`, 400, "not of the form Type.Method"},
		{"no endpoint at all", "/", map[string]string{"Content-Type": "application/json"}, `{}`, 400, "missing Micro-Endpoint"},
		{"handler panic", "/", jsonHeaders("Greeter.Panic"), `{}`, 500, "handler Greeter.Panic panicked"},
		{"garbage Timeout", "/", map[string]string{"Content-Type": "application/json", "Micro-Endpoint": "Greeter.Hello", "Timeout": "soon"}, `{}`, 400, "invalid Timeout header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := g.Calls.Load()
			status, hdr, body := post(t, addr, tc.path, tc.hdr, []byte(tc.body))
			checkError(t, status, hdr, body, tc.status, tc.detail)
			if strings.Contains(string(body), "goroutine") || strings.Contains(string(body), ".go:") {
				t.Fatalf("a stack trace reached the caller: %s", body)
			}
			called := g.Calls.Load() - before
			if tc.status == 500 && called != 1 || tc.status != 500 && called != 0 {
				t.Fatalf("handler ran %d times", called)
			}
			// the server keeps serving
			status, _, body = post(t, addr, "/", jsonHeaders("Greeter.Hello"), []byte(`{"name":"next"}`))
			if status != 200 || string(body) != "{\"message\":\"Hello next\"}\n" {
				t.Fatalf("next call: %d %s", status, body)
			}
		})
	}
}

func TestPathRouting(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter))
	for _, path := range []string{"/Greeter/Hello", "/Greeter.Hello"} {
		status, hdr, body := post(t, srv.Options().Address, path, map[string]string{"Content-Type": "application/json; charset=utf-8"}, []byte(`{"name":"p"}`))
		if status != 200 || string(body) != "{\"message\":\"Hello p\"}\n" {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		if hdr.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", path, hdr.Get("Content-Type"))
		}
	}
}

// TestF6PanicsDoNotLeak makes many handlers panic and checks the goroutine count.
func TestF6PanicsDoNotLeak(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "greeter", new(testutil.Greeter), server.WithLogger(quiet))
	c := testutil.NewClient(t, reg)
	n := 2000
	if testutil.Long() {
		n = 10000
	}
	call := func(ep string) error {
		var rsp testproto.Response
		return c.Call(context.Background(), c.NewRequest("greeter", ep, &testproto.Request{}), &rsp)
	}
	if err := call("Greeter.Hello"); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8; i++ {
				if errors.Code(call("Greeter.Panic")) != 500 {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d panics did not come back as 500", bad)
	}
	if err := call("Greeter.Hello"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base+2 }, fmt.Sprintf("goroutines back to %d", base))
}

// rawRequest writes raw bytes to addr and returns the status line (or the error).
func rawRequest(t *testing.T, addr string, req string) (string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return "", err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestF1Oversized sends a body one byte over the limit, then bodies far over it.
func TestF1Oversized(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	srv := testutil.NewServer(t, reg, "greeter", g)
	addr := srv.Options().Address
	limit := 4 << 20

	body := make([]byte, limit+1)
	start := time.Now()
	status, hdr, rb := post(t, addr, "/", map[string]string{"Content-Type": "application/octet-stream", "Micro-Endpoint": "Greeter.Hello"}, body)
	checkError(t, status, hdr, rb, 413, "request exceeds 4194304 bytes")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("413 took %s", d)
	}

	// Bodies of unknown length streamed far past the limit: refused after the limit,
	// never read whole.
	clients, size := 8, int64(64<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", io.LimitReader(zeros{}, size))
			req.ContentLength = -1
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Micro-Endpoint", "Greeter.Hello")
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			rsp, err := tr.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			defer rsp.Body.Close()
			if rsp.StatusCode != 413 {
				errs <- fmt.Errorf("status %d", rsp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if max := uint64(clients) * uint64(limit) * 3; allocated > max {
		t.Fatalf("allocated %d bytes for %d oversized requests, want under %d", allocated, clients, max)
	}
	if g.Calls.Load() != 0 {
		t.Fatal("the handler ran for an oversized request")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestF2LyingLengths sends Content-Lengths that lie.
func TestF2LyingLengths(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	srv := testutil.NewServer(t, reg, "greeter", g)
	addr := srv.Options().Address
	head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMicro-Endpoint: Greeter.Hello\r\n"

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	line, err := rawRequest(t, addr, head+"Content-Length: 4294967296\r\n\r\n{}{}")
	runtime.ReadMemStats(&after)
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
		t.Fatalf("4 GiB claim: %q %v", line, err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Fatalf("a 4 GiB claim allocated %d bytes", d)
	}

	line, err = rawRequest(t, addr, head+"Content-Length: 100\r\n\r\n{}{}")
	if err == nil && !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("truncated body: %q", line)
	}
	if g.Calls.Load() != 0 {
		t.Fatal("the handler ran for a truncated body")
	}
	// the server still serves
	if status, _, _ := post(t, addr, "/", jsonHeaders("Greeter.Hello"), []byte(`{}`)); status != 200 {
		t.Fatalf("status %d", status)
	}
}

// TestF3Headers sends oversized, numerous and malformed headers, and odd Timeouts.
func TestF3Headers(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	g := new(testutil.Greeter)
	srv := testutil.NewServer(t, reg, "greeter", g, server.MaxTimeout(time.Minute))
	addr := srv.Options().Address
	head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMicro-Endpoint: Greeter.Hello\r\nContent-Length: 2\r\n"

	big := head + "X-Big: " + strings.Repeat("a", 1<<20+1) + "\r\n\r\n{}"
	if line, err := rawRequest(t, addr, big); err != nil || !strings.HasPrefix(line, "HTTP/1.1 431") {
		t.Fatalf("1 MiB header: %q %v", line, err)
	}
	var many strings.Builder
	many.WriteString(head)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n{}")
	if line, err := rawRequest(t, addr, many.String()); err != nil || !strings.HasPrefix(line, "HTTP/1.1 431") {
		t.Fatalf("10,000 headers: %q %v", line, err)
	}
	if line, err := rawRequest(t, addr, head+"X-Bad: a\rb\r\n\r\n{}"); err != nil || !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("CR in a header value: %q %v", line, err)
	}
	if g.Calls.Load() != 0 {
		t.Fatal("the handler ran for a bad header block")
	}

	// Timeouts: the handler's deadline is never negative and never above the maximum.
	for _, tc := range []struct {
		timeout    string
		minMs, max int64
	}{
		{"-5000000000", 59000, 60000},
		{"0", 59000, 60000},
		{strconv.FormatInt(int64(time.Hour*1000), 10), 59000, 60000},
		{"9223372036854775807", 59000, 60000},
		{strconv.FormatInt(int64(2*time.Second), 10), 1000, 2000},
	} {
		hdr := map[string]string{"Content-Type": "application/json", "Micro-Endpoint": "Greeter.Meta", "Timeout": tc.timeout}
		status, _, body := post(t, addr, "/", hdr, []byte(`{"name":"Timeout"}`))
		if status != 200 {
			t.Fatalf("Timeout %s: status %d %s", tc.timeout, status, body)
		}
		var ms int64
		_, after, _ := strings.Cut(strings.TrimSpace(string(body)), "|")
		ms, _ = strconv.ParseInt(strings.TrimSuffix(after, `"}`), 10, 64)
		if ms < tc.minMs || ms > tc.max {
			t.Fatalf("Timeout %s: handler had %d ms, want %d..%d", tc.timeout, ms, tc.minMs, tc.max)
		}
	}

	// Metadata a client cannot send is refused before anything is sent.
	c := testutil.NewClient(t, reg)
	ctx := contextWith(t, "X-Evil", "a\r\nInjected: yes")
	var rsp testproto.Response
	err := c.Call(ctx, c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{}), &rsp)
	if errors.Code(err) != 400 {
		t.Fatalf("CR/LF metadata: %v", err)
	}
}

// TestF7SlowPeers holds slow connections open against short limits while normal
// clients keep calling.
func TestF7SlowPeers(t *testing.T) {
	testutil.Scenario(t)
	limits := transport.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: 2 * time.Second}
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", new(testutil.Greeter), server.ListenOption(transport.ListenLimits(limits)))
	if err := server.HandleFunc(srv, "Big.Get", func(ctx context.Context, in *testproto.Echo, out *testproto.Echo) error {
		out.Payload = make([]byte, 10<<20)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	addr := srv.Options().Address
	c := testutil.NewClient(t, reg)

	slow := 100
	if testutil.Long() {
		slow = 500
	}
	type result struct {
		kind   string
		closed time.Duration
	}
	results := make(chan result, slow+3)
	trickle := func(kind, prefix string, every time.Duration, payload string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			results <- result{kind, -1}
			return
		}
		defer conn.Close()
		start := time.Now()
		if prefix != "" {
			if _, err := io.WriteString(conn, prefix); err != nil {
				results <- result{kind, time.Since(start)}
				return
			}
		}
		go func() { _, _ = io.Copy(io.Discard, conn) }()
		for i := 0; i < 100; i++ {
			if _, err := conn.Write([]byte{payload[i%len(payload)]}); err != nil {
				results <- result{kind, time.Since(start)}
				return
			}
			time.Sleep(every)
		}
		results <- result{kind, -1}
	}
	first := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMicro-Endpoint: Greeter.Hello\r\nContent-Length: 2\r\n\r\n{}"
	for i := 0; i < slow; i++ {
		go trickle("header", "", 200*time.Millisecond, "POST / HTTP/1.1\r\n")
	}
	go trickle("second request", first, 200*time.Millisecond, "POST / HTTP/1.1\r\n")
	go trickle("body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMicro-Endpoint: Greeter.Hello\r\nContent-Length: 1000\r\n\r\n", 200*time.Millisecond, "x")

	// a reader that never reads a 10 MiB reply
	go func() {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			results <- result{"never reads", -1}
			return
		}
		defer conn.Close()
		start := time.Now()
		_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/protobuf\r\nMicro-Endpoint: Big.Get\r\nContent-Length: 0\r\n\r\n")
		// wait for the server to give up writing: a read after 3 s sees the reset or EOF
		time.Sleep(3 * time.Second)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		if err != nil || time.Since(start) < 15*time.Second {
			results <- result{"never reads", time.Since(start)}
			return
		}
		results <- result{"never reads", -1}
	}()

	// normal clients meanwhile
	stop := time.Now().Add(3 * time.Second)
	var failures int
	for time.Now().Before(stop) {
		var rsp testproto.Response
		if err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "n"}), &rsp); err != nil {
			failures++
			t.Log(err)
		}
	}
	if failures != 0 {
		t.Fatalf("%d normal calls failed during the attack", failures)
	}
	for i := 0; i < slow+3; i++ {
		r := <-results
		if r.closed < 0 {
			t.Fatalf("%s: the server never closed the connection", r.kind)
		}
		bound := limits.ReadHeaderTimeout + time.Second + 500*time.Millisecond
		if testutil.Race {
			bound += time.Second // the race detector slows the first request of a connection
		}
		if r.kind != "never reads" && r.closed > bound {
			t.Fatalf("%s: closed after %s", r.kind, r.closed)
		}
	}
}

func contextWith(t *testing.T, k, v string) context.Context {
	t.Helper()
	return metadataSet(context.Background(), k, v)
}

var _ = stderrors.New
var _ = client.WithAddress
