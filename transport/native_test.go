package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/callctx"
	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// Tests of micro's native protocol on the HTTP transport's port: malformed peers
// (raw connections), negotiation and fallback to HTTP, and the semantics the client
// relies on (GOAWAY, cancel, stream limits, flow control, lost connections).

const (
	waitFor  = 5 * time.Second // the longest any test waits for a signal
	helloLen = len(wire.Magic) + 8
)

// checkLeaks makes the test fail if goroutines outlive it. Call it first: cleanups run
// last-registered first, so it runs after every other cleanup of the test.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", waitFor, what)
		}
		time.Sleep(2 * time.Millisecond) // polling, bounded by the deadline
	}
}

// sniffListener records the first bytes every accepted connection sends, which tells
// native (the Magic), h2c (the HTTP/2 preface) and HTTP/1 connections apart.
type sniffListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*sniffConn
}

func newSniffListener(t *testing.T) *sniffListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &sniffListener{Listener: ln}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &sniffConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, sc)
	l.mu.Unlock()
	return sc, nil
}

// count returns how many connections opened with prefix ("" counts them all).
func (l *sniffListener) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.conns {
		got := c.prefix()
		// a server that stops reading early (an h2c-only one reads 14 bytes) saw only
		// the start of the Magic
		if strings.HasPrefix(got, prefix) || (prefix == magicPrefix && len(got) >= 8 && strings.HasPrefix(prefix, got)) {
			n++
		}
	}
	return n
}

const (
	magicPrefix = wire.Magic
	h2cPrefix   = "PRI * HTTP/2.0"
	http1Prefix = "POST "
)

type sniffConn struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if k := 32 - len(c.first); k > 0 {
		c.first = append(c.first, p[:min(n, k)]...)
	}
	c.mu.Unlock()
	return n, err
}

// CloseWrite keeps the half-close the listener's Drain relies on.
func (c *sniffConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c *sniffConn) prefix() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.first)
}

// gate is a handler: a call to endpoint "block" waits until the gate opens, then every
// call is echoed (body, and the endpoint in X-Echo).
type gate struct {
	started chan string // the endpoint of every call that reached the handler
	release chan struct{}
	once    sync.Once
	running atomic.Int64
	onCall  func(transport.Socket) // runs before the wait, when set
}

// newGate returns a gate that opens, and waits for its handlers, at cleanup.
func newGate(t *testing.T) *gate {
	g := &gate{started: make(chan string, 1024), release: make(chan struct{})}
	t.Cleanup(func() {
		g.open()
		eventually(t, "handlers return", func() bool { return g.running.Load() == 0 })
	})
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) handle(s transport.Socket) {
	g.running.Add(1)
	defer g.running.Add(-1)
	var m transport.Message
	if s.Recv(&m) != nil {
		return
	}
	ep := m.Header[headers.Endpoint]
	if g.onCall != nil {
		g.onCall(s)
	}
	g.started <- ep
	if ep == "block" {
		<-g.release
	}
	_ = s.Send(&transport.Message{Header: map[string]string{"X-Echo": ep, headers.ContentType: "text/plain"}, Body: m.Body})
}

// serveOn serves l with fn until the test ends.
func serveOn(t *testing.T, l transport.Listener, fn func(transport.Socket)) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Accept(fn); err != nil {
			t.Errorf("Accept: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Accept did not return after Close")
		}
	})
}

// listen starts a micro listener of srv on a sniffing listener, served by fn.
func listen(t *testing.T, srv *transport.HTTPTransport, lim transport.Limits, fn func(transport.Socket)) (transport.Listener, *sniffListener) {
	t.Helper()
	sl := newSniffListener(t)
	l, err := srv.Listen("127.0.0.1:0", transport.NetListener(sl), transport.ListenLimits(lim))
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, fn)
	return l, sl
}

// client returns a client transport whose connections close at cleanup.
func client(t *testing.T, opts ...transport.Option) *transport.HTTPTransport {
	tr := transport.NewHTTPTransport(opts...)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// call makes one unary call to endpoint with body. Its context is a call context, the
// kind the client package gives a call: the caller reads its reply itself when no one
// else reads the connection, until the deadline or the end of ctx.
func call(ctx context.Context, tr transport.Transport, addr, endpoint string, body []byte) (transport.Message, error) {
	return callCtx(callctx.New(ctx, time.Now().Add(time.Minute)), tr, addr, endpoint, body)
}

func callCtx(ctx context.Context, tr transport.Transport, addr, endpoint string, body []byte) (transport.Message, error) {
	var m transport.Message
	c, err := tr.Dial(addr, transport.WithContext(ctx))
	if err != nil {
		return m, err
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: endpoint, headers.ContentType: "text/plain"}, Body: body}); err != nil {
		return m, err
	}
	err = c.Recv(&m)
	return m, err
}

// mustCall makes a call that must succeed and be echoed.
func mustCall(t *testing.T, tr transport.Transport, addr string) {
	t.Helper()
	m, err := call(context.Background(), tr, addr, "Echo.Call", []byte("ping"))
	if err != nil {
		t.Fatalf("a normal call: %v", err)
	}
	if string(m.Body) != "ping" || m.Header["X-Echo"] != "Echo.Call" {
		t.Fatalf("a normal call: %v %q", m.Header, m.Body)
	}
}

// rawConn is a native client written by hand, to send what a real one never would.
type rawConn struct {
	t     *testing.T
	c     net.Conn
	br    *bufio.Reader
	w     wire.Writer // only its encoder: frames are written by write
	dec   wire.Decoder
	hello []byte
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitFor))
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	r.write([]byte(wire.Magic))
	r.hello = make([]byte, helloLen)
	if _, err := io.ReadFull(r.br, r.hello); err != nil || string(r.hello[:len(wire.Magic)]) != wire.Magic {
		t.Fatalf("hello: %q %v", r.hello, err)
	}
	return r
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawConn) request(id uint32, flags byte, hdr wire.Fields, body []byte) {
	r.t.Helper()
	r.write(r.w.AppendFields(nil, wire.TypeRequest, flags, id, hdr, body))
}

// frame is a frame the server sent; fields and body of a Message are decoded.
type frame struct {
	wire.FrameHeader
	payload []byte
	fields  wire.Fields
	body    []byte
}

func (r *rawConn) read() (frame, error) {
	h, err := wire.ReadFrameHeader(r.br)
	if err != nil {
		return frame{}, err
	}
	p, err := wire.ReadPayload(r.br, h.Length, nil)
	if err != nil {
		return frame{}, err
	}
	f := frame{FrameHeader: h, payload: p}
	if h.Type == wire.TypeMessage {
		if f.fields, f.body, err = r.dec.Decode(p, nil); err != nil {
			r.t.Fatalf("the server's header block: %v", err)
		}
	}
	return f, nil
}

func (r *rawConn) mustRead() frame {
	r.t.Helper()
	f, err := r.read()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return f
}

// expectReply reads the reply on stream id and returns it.
func (r *rawConn) expectReply(id uint32) frame {
	r.t.Helper()
	f := r.mustRead()
	if f.Type != wire.TypeMessage || f.Stream != id || f.Flags&wire.FlagEnd == 0 {
		r.t.Fatalf("want the reply on stream %d, got type %d flags %d on stream %d: %q", id, f.Type, f.Flags, f.Stream, f.payload)
	}
	return f
}

// expectGoAway reads a GOAWAY whose reason holds want, then the end of the connection.
func (r *rawConn) expectGoAway(want string) {
	r.t.Helper()
	f := r.mustRead()
	if f.Type != wire.TypeGoAway || len(f.payload) < 4 {
		r.t.Fatalf("want a GOAWAY, got type %d on stream %d: %q", f.Type, f.Stream, f.payload)
	}
	if reason := string(f.payload[4:]); !strings.Contains(reason, want) {
		r.t.Fatalf("GOAWAY reason %q, want %q", reason, want)
	}
	r.t.Logf("GOAWAY last=%d %q", binary.BigEndian.Uint32(f.payload), f.payload[4:])
	r.expectClosed()
}

// expectClosed reads until the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	f, err := r.read()
	if err == nil {
		r.t.Fatalf("the connection is still open: got type %d on stream %d", f.Type, f.Stream)
	}
	if isTimeoutErr(err) {
		r.t.Fatalf("the server did not close the connection: %v", err)
	}
}

// expectAlive checks that the connection still carries frames: a ping gets its pong.
func (r *rawConn) expectAlive() {
	r.t.Helper()
	r.write(wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
	f := r.mustRead()
	if f.Type != wire.TypePong || !bytes.Equal(f.payload, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		r.t.Fatalf("want the pong, got type %d: %q", f.Type, f.payload)
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var routing = wire.Fields{{Key: headers.Endpoint, Value: "Echo.Call"}, {Key: headers.Request, Value: "echo"}, {Key: headers.ContentType, Value: "text/plain"}}

// TestNativeMalformedFrames (F2, F3): bad frames on a live listener get a clear answer
// (a GOAWAY with the reason, or an error reply on the stream), the connection closes or
// carries on as the protocol says, and the listener keeps serving everyone else.
func TestNativeMalformedFrames(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	lim := transport.Limits{MaxMsgSize: 1024, MaxHeaderBytes: 2048, MaxHeaderCount: 16, MaxConcurrentStreams: 7}
	srv := transport.NewHTTPTransport()
	l, _ := listen(t, srv, lim, g.handle)
	tr := client(t)
	big := strings.Repeat("h", 2100)

	for _, c := range []struct {
		name string
		run  func(r *rawConn)
	}{
		{"hello announces the limits", func(r *rawConn) {
			if streams, size := binary.BigEndian.Uint32(r.hello[len(wire.Magic):]), binary.BigEndian.Uint32(r.hello[len(wire.Magic)+4:]); streams != 7 || size != 1024 {
				t.Fatalf("hello: %d streams, %d bytes", streams, size)
			}
			r.request(1, wire.FlagEnd, routing, []byte("ok"))
			if f := r.expectReply(1); string(f.body) != "ok" || f.fields.Get("X-Echo") != "Echo.Call" {
				t.Fatalf("reply %q %q", f.fields, f.body)
			}
		}},
		{"unknown frame type", func(r *rawConn) {
			r.write(wire.AppendControl(nil, 9, 0, 1))
			r.expectGoAway("unknown frame type 9")
		}},
		{"frame type 0", func(r *rawConn) {
			r.write(wire.AppendControl(nil, 0, 0, 1, 'x'))
			r.expectGoAway("unknown frame type 0")
		}},
		{"request on stream 0", func(r *rawConn) {
			r.request(0, wire.FlagEnd, routing, nil)
			r.expectGoAway("client streams are odd")
		}},
		{"request on an even stream", func(r *rawConn) {
			r.request(2, wire.FlagEnd, routing, nil)
			r.expectGoAway("client streams are odd")
		}},
		{"stream id reused", func(r *rawConn) {
			r.request(1, wire.FlagEnd, routing, nil)
			r.expectReply(1)
			r.request(1, wire.FlagEnd, routing, nil)
			r.expectGoAway("stream 1 reused")
		}},
		{"stream id going down", func(r *rawConn) {
			r.request(5, wire.FlagEnd, routing, nil)
			r.expectReply(5)
			r.request(3, wire.FlagEnd, routing, nil)
			r.expectGoAway("stream 3 reused")
		}},
		{"truncated header block", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0x01, 5, 'a'))
			r.expectGoAway("cut short")
		}},
		{"header block without its end", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0x05, 1, 'a'))
			r.expectGoAway("cut short")
		}},
		{"table index out of range", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0x45, 0))
			r.expectGoAway("index 5 out of range")
		}},
		{"unknown static key", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0x3f, 1, 'v', 0))
			r.expectGoAway("unknown static header key")
		}},
		{"truncated header block in a message", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeMessage, 0, 1, 0x01, 9))
			r.expectGoAway("cut short")
		}},
		{"request body over the limit", func(r *rawConn) {
			// within the frame limit (body + header limit), over the message limit
			r.request(1, wire.FlagEnd, routing, make([]byte, 1025))
			f := r.expectReply(1)
			if f.fields.Get(headers.Status) != "413" || !strings.Contains(f.fields.Get(headers.Error), "exceeds 1024 bytes") {
				t.Fatalf("reply %q", f.fields)
			}
			r.expectAlive()
		}},
		{"frame over the limit", func(r *rawConn) {
			// over the frame limit: refused with 413 unread; the pairs its header
			// block adds to the table are still learnt, so the next call that
			// refers to them is understood
			hdr := append(wire.Fields{{Key: headers.Request, Value: "only-in-the-big-frame"}}, routing...)
			r.request(1, wire.FlagEnd, hdr, make([]byte, 8000))
			f := r.expectReply(1)
			if f.fields.Get(headers.Status) != "413" || !strings.Contains(f.fields.Get(headers.Error), "exceeds 1024 bytes") {
				t.Fatalf("reply %q", f.fields)
			}
			r.request(3, wire.FlagEnd, hdr, []byte("next"))
			if f := r.expectReply(3); string(f.body) != "next" || f.fields.Get(headers.Status) == "413" {
				t.Fatalf("the call after a refused frame: %q %q", f.fields, f.body)
			}
		}},
		{"frame over the limit, header block broken", func(r *rawConn) {
			p := append([]byte{0x45, 0}, make([]byte, 8000)...)
			r.write(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, p...))
			r.expectGoAway("out of range")
		}},
		{"control frame over the limit", func(r *rawConn) {
			r.write(wire.AppendFrameHeader(nil, 1<<30, wire.TypePing, 0, 0))
			r.expectGoAway("control frame of 1073741824 bytes")
		}},
		{"header block over the limit", func(r *rawConn) {
			r.request(1, wire.FlagEnd, append(wire.Fields{{Key: "X-Big", Value: big}}, routing...), nil)
			f := r.expectReply(1)
			if f.fields.Get(headers.Status) != "431" || !strings.Contains(f.fields.Get(headers.Error), "header block exceeds") {
				t.Fatalf("reply %q", f.fields)
			}
			r.expectGoAway("header block exceeds")
		}},
		{"too many fields", func(r *rawConn) {
			hdr := append(wire.Fields(nil), routing...)
			for i := 0; i < 20; i++ {
				hdr = append(hdr, wire.Field{Key: fmt.Sprint("X-", i), Value: "v"})
			}
			r.request(1, wire.FlagEnd, hdr, nil)
			f := r.expectReply(1)
			if f.fields.Get(headers.Status) != "431" || !strings.Contains(f.fields.Get(headers.Error), "more fields than the limit") {
				t.Fatalf("reply %q", f.fields)
			}
			r.expectGoAway("more fields than the limit")
		}},
		{"ping of the wrong size", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3))
			r.expectGoAway("ping frame of wrong size")
		}},
		{"window of the wrong size", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeWindow, 0, 1, 1))
			r.expectGoAway("window frame of wrong size")
		}},
		{"window for an unknown stream", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeWindow, 0, 99, 0, 0, 1, 0))
			r.expectAlive()
		}},
		{"cancel for an unknown stream", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypeCancel, 0, 99, wire.CodeCancel))
			r.expectAlive()
		}},
		{"message for an unknown stream", func(r *rawConn) {
			// dropped, but its header block is learnt
			r.write(r.w.AppendFields(nil, wire.TypeMessage, 0, 99, wire.Fields{{Key: headers.Request, Value: "from-a-dropped-message"}}, []byte("x")))
			r.request(1, wire.FlagEnd, wire.Fields{{Key: headers.Request, Value: "from-a-dropped-message"}}, []byte("y"))
			if f := r.expectReply(1); string(f.body) != "y" {
				t.Fatalf("reply %q %q", f.fields, f.body)
			}
		}},
		{"pong and goaway from a client", func(r *rawConn) {
			r.write(wire.AppendControl(nil, wire.TypePong, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
			r.write(wire.AppendControl(nil, wire.TypeGoAway, 0, 0, 0, 0, 0, 0))
			r.expectAlive()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, l.Addr())
			r.t = t
			c.run(r)
			mustCall(t, tr, l.Addr()) // the listener serves others
		})
	}

	// Magic with a wrong version is not native: the HTTP server answers it
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitFor))
	_, _ = io.WriteString(c, "\x00MICRO/9\r\n"+strings.Repeat("-", 20)) // past the h2c preface's length
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("a wrong Magic got %q", line)
	}
}

// TestNativeOversizedFrameNotBuffered (F1): a frame far over the limit is answered with
// 413 while it is still arriving, and the server does not hold it in memory.
func TestNativeOversizedFrameNotBuffered(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{MaxMsgSize: 1024, MaxHeaderBytes: 1024}, g.handle)
	r := dialRaw(t, l.Addr())
	const size = 64 << 20
	chunk := make([]byte, 1<<20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	opening := r.w.AppendFields(nil, wire.TypeRequest, wire.FlagEnd, 1, routing, nil)
	wire.PutLength(opening, size+len(opening)-wire.HeaderLen)
	r.write(opening)
	for sent := 0; sent < size; sent += len(chunk) {
		r.write(chunk)
	}
	f := r.expectReply(1)
	runtime.ReadMemStats(&after)
	if f.fields.Get(headers.Status) != "413" {
		t.Fatalf("reply %q", f.fields)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB frame cost %d KiB of allocation", size>>20, alloc>>10)
	if alloc > 8<<20 {
		t.Fatalf("a refused %d MiB frame allocated %d bytes", size>>20, alloc)
	}
	r.request(3, wire.FlagEnd, routing, []byte("after"))
	if f := r.expectReply(3); string(f.body) != "after" {
		t.Fatalf("the next call: %q %q", f.fields, f.body)
	}
}

// TestNativeIdleTimeout (F8): a connection that sends the Magic and nothing else is
// closed after IdleTimeout; one that keeps making calls is not.
func TestNativeIdleTimeout(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	const idle = 400 * time.Millisecond
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{IdleTimeout: idle}, g.handle)

	// told to go away (so that a call it sends meanwhile is refused, not lost), then
	// closed: by the client, or by the server after a grace when the client does not
	r := dialRaw(t, l.Addr())
	start := time.Now()
	r.expectGoAway("idle")
	d := time.Since(start)
	t.Logf("a silent native connection was closed after %s (IdleTimeout %s)", d.Round(time.Millisecond), idle)
	if d < idle/2 {
		t.Fatalf("closed after %s, before the idle timeout of %s", d, idle)
	}

	// a request sent after the idle GOAWAY is refused: the client may send it elsewhere
	r = dialRaw(t, l.Addr())
	if f := r.mustRead(); f.Type != wire.TypeGoAway {
		t.Fatalf("want the idle GOAWAY, got type %d", f.Type)
	}
	r.request(1, wire.FlagEnd, routing, nil)
	if f := r.mustRead(); f.Type != wire.TypeCancel || f.Stream != 1 || !bytes.Equal(f.payload, []byte{wire.CodeRefused}) {
		t.Fatalf("want a refusal of stream 1, got type %d on %d: %q", f.Type, f.Stream, f.payload)
	}
	r.expectClosed()

	// a busy connection stays: calls every 50 ms for three idle timeouts use one connection
	tr := client(t)
	for i := 0; i < 24; i++ {
		mustCall(t, tr, l.Addr())
		time.Sleep(50 * time.Millisecond) // the pace of the calls, not synchronisation
	}
	if n := sl.count(magicPrefix); n != 3 {
		t.Fatalf("%d native connections: the server closed a busy one (want the two raw ones and one more)", n)
	}
}

// plainServer serves ln with net/http and protocols, answering every POST with its body;
// it counts the requests it saw.
func plainServer(t *testing.T, ln net.Listener, protocols *http.Protocols) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusMethodNotAllowed) // an HTTP/1 server reads the h2c preface as a PRI request
				return
			}
			n.Add(1)
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Proto", r.Proto)
			_, _ = w.Write(b)
		}),
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return &n
}

// TestNativeFallbackToHTTP: a micro client calling a server that does not speak the
// native protocol finds out from one probe connection, quickly, and uses HTTP for that
// address from then on.
func TestNativeFallbackToHTTP(t *testing.T) {
	for _, c := range []struct {
		name  string
		proto func(*http.Protocols)
	}{
		{"h2c and HTTP/1", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true); p.SetHTTP1(true) }},
		{"h2c only", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			sl := newSniffListener(t)
			p := new(http.Protocols)
			c.proto(p)
			seen := plainServer(t, sl, p)
			tr := client(t)
			start := time.Now()
			m, err := call(context.Background(), tr, sl.Addr().String(), "A.B", []byte("over http"))
			t.Logf("first call, with the probe: %s", time.Since(start).Round(time.Microsecond))
			if err != nil || string(m.Body) != "over http" || m.Header[headers.Status] != "200" {
				t.Fatalf("first call: %v %q %v", m.Header, m.Body, err)
			}
			if m, err := call(context.Background(), tr, sl.Addr().String(), "A.B", []byte("again")); err != nil || string(m.Body) != "again" {
				t.Fatalf("second call: %q %v", m.Body, err)
			}
			if seen.Load() != 2 {
				t.Fatalf("the server saw %d requests", seen.Load())
			}
			if n := sl.count(magicPrefix); n != 1 {
				sl.mu.Lock()
				for _, c := range sl.conns {
					t.Logf("a connection opened with %q", c.prefix())
				}
				sl.mu.Unlock()
				t.Fatalf("%d probe connections, want 1", n)
			}
			if n := sl.count(h2cPrefix); n != 1 {
				t.Fatalf("%d h2c connections, want 1", n)
			}
		})
	}
}

// TestNativeFallbackToHTTP1Only: a server that speaks HTTP/1 only. The probe is
// answered at once; the call then goes over HTTP as the HTTP transport sends it (h2c
// with prior knowledge), which such a server cannot read: it fails, quickly, whether the
// native protocol is on or off.
func TestNativeFallbackToHTTP1Only(t *testing.T) {
	checkLeaks(t)
	sl := newSniffListener(t)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	seen := plainServer(t, sl, p)
	for _, tr := range []*transport.HTTPTransport{client(t), client(t, transport.Native(false))} {
		start := time.Now()
		_, err := call(context.Background(), tr, sl.Addr().String(), "A.B", []byte("x"))
		t.Logf("call: %v after %s", err, time.Since(start).Round(time.Microsecond))
		if err == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("a call to an HTTP/1-only server: %v after %s", err, time.Since(start))
		}
	}
	if seen.Load() != 0 || sl.count(magicPrefix) != 1 {
		t.Fatalf("%d requests seen, %d probes", seen.Load(), sl.count(magicPrefix))
	}
}

// TestNativeBesideHTTP: on one micro listener, native clients, HTTP/1.1 clients (as
// curl) and h2c clients are served at the same time.
func TestNativeBesideHTTP(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	h1, h2 := new(http.Protocols), new(http.Protocols)
	h1.SetHTTP1(true)
	h2.SetUnencryptedHTTP2(true)
	http1 := &http.Client{Transport: &http.Transport{Protocols: h1}}
	h2c := &http.Client{Transport: &http.Transport{Protocols: h2}}
	t.Cleanup(http1.CloseIdleConnections)
	t.Cleanup(h2c.CloseIdleConnections)
	post := func(c *http.Client, body string) error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+l.Addr()+"/", strings.NewReader(body))
		req.Header.Set(headers.Endpoint, "Echo.HTTP")
		rsp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		if rsp.StatusCode != 200 || string(b) != body || rsp.Header.Get("X-Echo") != "Echo.HTTP" {
			return fmt.Errorf("%s %d %q %v", rsp.Proto, rsp.StatusCode, b, rsp.Header)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for w := 0; w < 3; w++ {
		for kind := 0; kind < 3; kind++ {
			wg.Add(1)
			go func(kind, w int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					body := fmt.Sprint("k", kind, "w", w, "i", i)
					var err error
					switch kind {
					case 0:
						var m transport.Message
						if m, err = call(context.Background(), tr, l.Addr(), "Echo.Native", []byte(body)); err == nil && string(m.Body) != body {
							err = fmt.Errorf("native echo %q", m.Body)
						}
					case 1:
						err = post(http1, body)
					case 2:
						err = post(h2c, body)
					}
					if err != nil {
						errs <- fmt.Errorf("client kind %d: %w", kind, err)
						return
					}
				}
			}(kind, w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sl.count(magicPrefix) == 0 || sl.count(h2cPrefix) == 0 || sl.count(http1Prefix) == 0 {
		t.Fatalf("connections: %d native, %d h2c, %d HTTP/1", sl.count(magicPrefix), sl.count(h2cPrefix), sl.count(http1Prefix))
	}
	t.Logf("connections: %d native, %d h2c, %d HTTP/1", sl.count(magicPrefix), sl.count(h2cPrefix), sl.count(http1Prefix))
}

// TestNativeOffOnServer: Native(false) on the server's transport serves HTTP only; a
// native client probes once and falls back.
func TestNativeOffOnServer(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(transport.Native(false)), transport.Limits{}, g.handle)
	tr := client(t)
	start := time.Now()
	mustCall(t, tr, l.Addr())
	t.Logf("first call, with the probe: %s", time.Since(start).Round(time.Microsecond))
	mustCall(t, tr, l.Addr())
	if n := len(g.started); n != 2 {
		t.Fatalf("the handler saw %d calls", n)
	}
	if sl.count(magicPrefix) != 1 || sl.count(h2cPrefix) != 1 {
		t.Fatalf("connections: %d probes, %d h2c", sl.count(magicPrefix), sl.count(h2cPrefix))
	}
}

// TestNativeEnvOff: MICRO_NATIVE=0 in the client's environment makes it speak HTTP only:
// no connection opens with the Magic.
func TestNativeEnvOff(t *testing.T) {
	checkLeaks(t)
	t.Setenv("MICRO_NATIVE", "0")
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	mustCall(t, tr, l.Addr())
	mustCall(t, tr, l.Addr())
	if sl.count(magicPrefix) != 0 || sl.count(h2cPrefix) != 1 {
		t.Fatalf("connections: %d native, %d h2c", sl.count(magicPrefix), sl.count(h2cPrefix))
	}
}

// TestNativeOversizedFrameLongHeader: the header block of a refused frame is learnt even
// when it is longer than the server's read buffer, and one over the header limit is
// answered 431.
func TestNativeOversizedFrameLongHeader(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{MaxMsgSize: 1024, MaxHeaderBytes: 100 << 10}, g.handle)
	hdr := append(wire.Fields{{Key: headers.Request, Value: "learnt"}, {Key: "X-Long", Value: strings.Repeat("l", 60<<10)}}, routing...)

	r := dialRaw(t, l.Addr())
	r.request(1, wire.FlagEnd, hdr, make([]byte, 100<<10))
	if f := r.expectReply(1); f.fields.Get(headers.Status) != "413" {
		t.Fatalf("reply %q", f.fields)
	}
	r.request(3, wire.FlagEnd, wire.Fields{{Key: headers.Request, Value: "learnt"}, {Key: headers.Endpoint, Value: "E"}}, []byte("next"))
	if f := r.expectReply(3); string(f.body) != "next" {
		t.Fatalf("the next call: %q %q", f.fields, f.body)
	}

	r = dialRaw(t, l.Addr())
	r.request(1, wire.FlagEnd, wire.Fields{{Key: "X-Huge", Value: strings.Repeat("h", 101<<10)}}, make([]byte, 10<<10))
	if f := r.expectReply(1); f.fields.Get(headers.Status) != "431" {
		t.Fatalf("reply %q", f.fields)
	}
	r.expectGoAway("header block exceeds")
}

// waitStarted waits until n calls reached the gate's handler.
func (g *gate) waitStarted(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(waitFor)
	for i := 0; i < n; i++ {
		select {
		case <-g.started:
		case <-timeout:
			t.Fatalf("%d of %d calls reached the handler", i, n)
		}
	}
}

// blockingCalls starts n calls to the gate's "block" endpoint and waits until every one
// reached the handler; their results arrive on the returned channel.
func blockingCalls(t *testing.T, g *gate, tr transport.Transport, addr string, n int) <-chan error {
	t.Helper()
	out := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			body := []byte(fmt.Sprint("blocked-", i))
			m, err := call(context.Background(), tr, addr, "block", body)
			if err == nil && string(m.Body) != string(body) {
				err = fmt.Errorf("reply %q to %q", m.Body, body)
			}
			out <- err
		}(i)
	}
	g.waitStarted(t, n)
	return out
}

// TestNativeDrainGoAway (C1): Drain sends GOAWAY: the calls already running finish and
// their replies arrive; calls made after it fail as never sent, so a client sends them
// to another node.
func TestNativeDrainGoAway(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	running := blockingCalls(t, g, tr, l.Addr(), 3)

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		drained <- l.(transport.Drainer).Drain(ctx)
	}()
	// Until the client has read the GOAWAY a call may still be taken (and answered);
	// from then on every call is refused before it is sent.
	served, refused := 0, 0
	for i := 0; i < 2000 && refused < 5; i++ {
		_, err := call(context.Background(), tr, l.Addr(), "Echo.Call", nil)
		switch {
		case err == nil && refused == 0:
			served++
		case transport.IsNotSent(err):
			refused++
		default:
			t.Fatalf("call %d during the drain (%d served, %d refused before): %v", i, served, refused, err)
		}
	}
	t.Logf("during the drain: %d calls served before the GOAWAY reached the client, %d refused", served, refused)
	if refused < 5 {
		t.Fatal("calls are still taken during the drain")
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with calls running", err)
	default:
	}
	g.open()
	for i := 0; i < 3; i++ {
		if err := <-running; err != nil {
			t.Fatalf("a call running when the drain began: %v", err)
		}
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Drain did not return after the last call")
	}
	if n := sl.count(magicPrefix); n != 1 {
		t.Fatalf("%d native connections, want 1", n)
	}
}

// TestNativeCancelReachesServer (B6): a client cancelling a unary call's context makes
// its Recv return context.Canceled at once, and the cancel reaches the server: the
// socket's OnCancel callback (the server package passes the handler context's cancel)
// fires. The connection carries on.
func TestNativeCancelReachesServer(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	cancelled := make(chan struct{})
	var once sync.Once
	g.onCall = func(s transport.Socket) {
		oc, ok := s.(interface{ OnCancel(func()) })
		if !ok {
			t.Errorf("%T has no OnCancel", s)
			return
		}
		oc.OnCancel(func() { once.Do(func() { close(cancelled) }) })
	}
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := call(ctx, tr, l.Addr(), "block", []byte("x"))
		res <- err
	}()
	g.waitStarted(t, 1)
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled call returned %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("a cancelled call did not return")
	}
	select {
	case <-cancelled:
	case <-time.After(waitFor):
		t.Fatal("the cancel did not reach the server")
	}
	g.open() // the handler's late reply is dropped by the client
	g.onCall = nil
	mustCall(t, tr, l.Addr())
	mustCall(t, tr, l.Addr())
	if n := sl.count(magicPrefix); n != 1 {
		t.Fatalf("%d native connections: the cancel cost the connection", n)
	}
}

// TestNativeMaxConcurrentStreams (F5): a listener taking 2 streams per connection tells
// the client so in its hello; 5 concurrent calls from one client then go over 3
// connections, and none is refused or lost.
func TestNativeMaxConcurrentStreams(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{MaxConcurrentStreams: 2}, g.handle)
	tr := client(t)
	res := blockingCalls(t, g, tr, l.Addr(), 5)
	if n := sl.count(magicPrefix); n != 3 {
		t.Fatalf("5 calls at 2 streams per connection went over %d connections", n)
	}
	g.open()
	for i := 0; i < 5; i++ {
		if err := <-res; err != nil {
			t.Fatalf("call: %v", err)
		}
	}
}

// TestNativeStreamSlotReuse: at the stream limit, a client that starts its next call as
// soon as the last reply arrived is not refused: the server counts a stream as ended once
// its reply is written, as the client does once it is read.
func TestNativeStreamSlotReuse(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{MaxConcurrentStreams: 1}, g.handle)
	tr := client(t)
	var wg sync.WaitGroup
	var refused, failed atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				_, err := call(context.Background(), tr, l.Addr(), "Echo.Call", []byte("x"))
				switch {
				case transport.IsNotSent(err):
					refused.Add(1)
				case err != nil:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for len(g.started) > 0 {
		<-g.started
	}
	t.Logf("600 calls over %d connections: %d refused, %d failed", sl.count(magicPrefix), refused.Load(), failed.Load())
	if refused.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d calls refused, %d failed", refused.Load(), failed.Load())
	}
}

// streamServer is a handler of native streams for the flow control tests: "flood" sends
// 16 KiB messages until Send fails; "sink" never reads; "echo" sends back what it reads.
type streamServer struct {
	sent     atomic.Int64
	sendErr  chan error
	release  chan struct{}
	once     sync.Once
	running  atomic.Int64
	received chan struct{}
}

func newStreamServer(t *testing.T) *streamServer {
	s := &streamServer{sendErr: make(chan error, 1), release: make(chan struct{}), received: make(chan struct{}, 16)}
	t.Cleanup(func() {
		s.open()
		eventually(t, "stream handlers return", func() bool { return s.running.Load() == 0 })
	})
	return s
}

func (s *streamServer) open() { s.once.Do(func() { close(s.release) }) }

const chunk = 16 << 10

func (s *streamServer) handle(sock transport.Socket) {
	s.running.Add(1)
	defer s.running.Add(-1)
	var m transport.Message
	if sock.Recv(&m) != nil {
		return
	}
	s.received <- struct{}{}
	_ = sock.Send(&transport.Message{Header: map[string]string{transport.Open: "1", headers.ContentType: "application/octet-stream"}})
	switch m.Header[headers.Endpoint] {
	case "flood":
		body := make([]byte, chunk)
		for i := 0; i < 1000; i++ { // bounded: far beyond the window
			if err := sock.Send(&transport.Message{Body: body}); err != nil {
				s.sendErr <- err
				return
			}
			s.sent.Add(chunk)
		}
		s.sendErr <- nil
	case "sink":
		<-s.release
	case "echo":
		for i := 0; i < 10000; i++ {
			var in transport.Message
			if err := sock.Recv(&in); err != nil {
				break
			}
			if err := sock.Send(&transport.Message{Body: in.Body}); err != nil {
				return
			}
		}
		_ = sock.Send(&transport.Message{Header: map[string]string{transport.EOS: "1"}})
	}
}

// openStream dials a native stream to endpoint and waits for the server's answer.
func openStream(t *testing.T, tr transport.Transport, addr, endpoint string) transport.Client {
	t.Helper()
	c, err := tr.Dial(addr, transport.WithStream())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: endpoint}}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.(interface{ Response() (int, error) }).Response(); err != nil || st != 200 {
		t.Fatalf("opening: %d %v", st, err)
	}
	return c
}

// stalls checks that a counter stops at want: it reaches it, and a while later it is
// still there (a non-event can only be watched for a while).
func stalls(t *testing.T, what string, n func() int64, want int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s reaches %d", what, want), func() bool { return n() >= want })
	time.Sleep(100 * time.Millisecond) // watching for progress that must not happen
	if got := n(); got != want {
		t.Fatalf("%s went on to %d past the window of %d", what, got, want)
	}
}

const window = 256 << 10 // the native stream window (transport's streamWindow)

// TestNativeStreamFlowControl (A2, F7): a stream's writer stops once its peer has a
// window of unread messages, and goes on when the peer reads; a writer blocked on a
// peer that never reads gets an error when the stream ends.
func TestNativeStreamFlowControl(t *testing.T) {
	checkLeaks(t)
	ss := newStreamServer(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, ss.handle)
	tr := client(t)

	t.Run("server Send waits for a client that does not read", func(t *testing.T) {
		c := openStream(t, tr, l.Addr(), "flood")
		stalls(t, "the bytes the server sent", ss.sent.Load, window)
		_ = c.Close() // cancels the stream: the blocked Send returns
		select {
		case err := <-ss.sendErr:
			if err == nil {
				t.Fatal("the server sent everything to a client that never read")
			}
			t.Logf("the blocked server Send returned %v", err)
		case <-time.After(waitFor):
			t.Fatal("the server's Send is still blocked after the client closed")
		}
	})

	t.Run("client Send waits for a server that does not read", func(t *testing.T) {
		c := openStream(t, tr, l.Addr(), "sink")
		<-ss.received
		var sent atomic.Int64
		done := make(chan error, 1)
		go func() {
			body := make([]byte, chunk)
			for i := 0; i < 1000; i++ {
				if err := c.Send(&transport.Message{Body: body}); err != nil {
					done <- err
					return
				}
				sent.Add(chunk)
			}
			done <- nil
		}()
		stalls(t, "the bytes the client sent", sent.Load, window)
		ss.open() // the handler returns without reading: the stream ends
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the client sent everything to a server that never read")
			}
			t.Logf("the blocked client Send returned %v", err)
		case <-time.After(waitFor):
			t.Fatal("the client's Send is still blocked after the stream ended")
		}
		var m transport.Message
		if err := c.Recv(&m); err != nil || m.Header[transport.EOS] == "" || m.Header[headers.Error] == "" {
			t.Fatalf("the end of the stream: %v %v", m.Header, err)
		}
	})

	t.Run("reading returns credit", func(t *testing.T) {
		// 4 MiB each way through a 256 KiB window, in order
		c := openStream(t, tr, l.Addr(), "echo")
		const n = 256
		errs := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				body := bytes.Repeat([]byte{byte(i)}, chunk)
				if err := c.Send(&transport.Message{Body: body}); err != nil {
					errs <- err
					return
				}
			}
			errs <- c.Send(&transport.Message{Header: map[string]string{transport.EOS: "1"}})
		}()
		for i := 0; i < n; i++ {
			var m transport.Message
			if err := c.Recv(&m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if len(m.Body) != chunk || m.Body[0] != byte(i) || m.Body[chunk-1] != byte(i) {
				t.Fatalf("message %d: %d bytes of %d", i, len(m.Body), m.Body[0])
			}
		}
		var m transport.Message
		if err := c.Recv(&m); err != nil || m.Header[transport.EOS] == "" || m.Header[headers.Error] != "" {
			t.Fatalf("the end: %v %v", m.Header, err)
		}
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	})
}

// TestNativeServerDies (B1): a listener closed under a call in flight fails that call
// with ConnLostError (it may have run), a unary call and a stream alike. A call made
// after the close is a NotSentError: nothing listens any more.
func TestNativeServerDies(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	ss := newStreamServer(t)
	lu, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	ls, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, ss.handle)
	tr := client(t)
	unary := blockingCalls(t, g, tr, lu.Addr(), 1)
	st := openStream(t, tr, ls.Addr(), "sink")
	<-ss.received
	for _, l := range []transport.Listener{lu, ls} {
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	select {
	case err := <-unary:
		if !transport.IsConnLost(err) {
			t.Fatalf("a unary call in flight: %v", err)
		}
		t.Logf("the call in flight: %v", err)
	case <-time.After(waitFor):
		t.Fatal("a call in flight did not fail when the server closed")
	}
	var m transport.Message
	if err := st.Recv(&m); !transport.IsConnLost(err) {
		t.Fatalf("a stream in flight: %v %v", m.Header, err)
	}
	for _, l := range []transport.Listener{lu, ls} {
		if _, err := call(context.Background(), tr, l.Addr(), "Echo.Call", nil); !transport.IsNotSent(err) {
			t.Fatalf("a call after the server closed: %v", err)
		}
	}
}

// TestNativeRestartStaleConnection (B4): the server is stopped (Close, or Drain) and
// started again on the same port between two calls of one client. The first call after
// the restart may find the pooled connection to the old server: it then fails as never
// sent (the old server's GOAWAY named the last call it took), so the client package
// sends it again, and that succeeds; it never fails as a call that may have run.
func TestNativeRestartStaleConnection(t *testing.T) {
	for _, drain := range []bool{false, true} {
		t.Run(fmt.Sprint("drain=", drain), func(t *testing.T) {
			checkLeaks(t)
			g := newGate(t)
			tr := client(t)
			srv := transport.NewHTTPTransport()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			var l transport.Listener
			var done chan struct{}
			start := func(ln net.Listener) {
				l, err = srv.Listen(addr, transport.NetListener(ln))
				if err != nil {
					t.Fatal(err)
				}
				done = make(chan struct{})
				go func(l transport.Listener, done chan struct{}) {
					defer close(done)
					_ = l.Accept(g.handle)
				}(l, done)
			}
			start(ln)
			stale := 0
			for round := 0; round < 50; round++ {
				_, err := call(context.Background(), tr, addr, "Echo.Call", nil)
				if transport.IsNotSent(err) {
					stale++
					_, err = call(context.Background(), tr, addr, "Echo.Call", nil) // the client's retry
				}
				if err != nil {
					t.Fatalf("round %d: %v (not sent: %v, lost: %v)", round, err, transport.IsNotSent(err), transport.IsConnLost(err))
				}
				if drain {
					err = l.(transport.Drainer).Drain(context.Background())
				} else {
					err = l.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
				<-done
				if ln, err = net.Listen("tcp", addr); err != nil {
					t.Fatal(err)
				}
				start(ln)
				for len(g.started) > 0 {
					<-g.started
				}
			}
			t.Logf("50 restarts: %d first calls found the stale connection (never sent, retried)", stale)
			_ = l.Close()
			<-done
		})
	}
}

// FuzzNativeServer (F4) sends arbitrary frames, after the Magic, to a live listener: the
// server must not panic (a panic in its goroutines ends the process), must end the
// connection when the input ends, and must go on serving a normal client.
func FuzzNativeServer(f *testing.F) {
	var w wire.Writer
	req := func(id uint32, flags byte, body string) []byte {
		return w.AppendFields(nil, wire.TypeRequest, flags, id, routing, []byte(body))
	}
	f.Add(req(1, wire.FlagEnd, "hello"))
	f.Add(append(req(1, wire.FlagEnd, "a"), req(3, wire.FlagEnd, "b")...))
	f.Add(append(req(1, wire.FlagStream|wire.FlagBody, "open"), w.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, 1, nil, []byte("last"))...))
	f.Add(append(req(1, wire.FlagStream, ""), wire.AppendControl(nil, wire.TypeCancel, 0, 1, wire.CodeCancel)...))
	f.Add(append(req(1, wire.FlagStream, ""), wire.AppendControl(nil, wire.TypeWindow, 0, 1, 0xff, 0xff, 0xff, 0xff)...))
	f.Add(wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0x45, 0))
	f.Add(wire.AppendControl(nil, 9, 0, 1))
	f.Add(wire.AppendFrameHeader(nil, 1<<20, wire.TypeRequest, wire.FlagEnd, 1))
	f.Add(req(2, wire.FlagEnd, "even"))
	f.Add(append(req(1, wire.FlagEnd, ""), req(1, wire.FlagEnd, "")...))
	f.Add([]byte{})

	srv := transport.NewHTTPTransport()
	l, err := srv.Listen("127.0.0.1:0", transport.ListenLimits(transport.Limits{MaxMsgSize: 4096, MaxHeaderBytes: 4096, MaxHeaderCount: 32, MaxConcurrentStreams: 8, ReadTimeout: time.Second, WriteTimeout: time.Second}))
	if err != nil {
		f.Fatal(err)
	}
	var running atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Accept(func(s transport.Socket) {
			running.Add(1)
			defer running.Add(-1)
			var m transport.Message
			if s.Recv(&m) != nil {
				return
			}
			if m.Header[transport.StreamHeader] == "" {
				_ = s.Send(&transport.Message{Header: map[string]string{"X-Echo": m.Header[headers.Endpoint]}, Body: m.Body})
				return
			}
			for i := 0; i < 100; i++ {
				var in transport.Message
				if s.Recv(&in) != nil {
					break
				}
				if s.Send(&transport.Message{Body: in.Body}) != nil {
					return
				}
			}
			_ = s.Send(&transport.Message{Header: map[string]string{transport.EOS: "1"}})
		})
	}()
	tr := transport.NewHTTPTransport()
	f.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = l.Close()
		<-done
		deadline := time.Now().Add(waitFor)
		for running.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling, bounded by the deadline
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(waitFor))
		// the input, then the end of it: the server must finish the connection
		go func() {
			_, _ = c.Write(append([]byte(wire.Magic), data...))
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil && isTimeoutErr(err) {
			t.Fatalf("the server kept the connection open after the input ended: %v", err)
		}
		mustCall(t, tr, l.Addr())
	})
}

// TestNativeCallerReadsOthersReplies: a caller that reads the connection for its own reply
// delivers the replies it reads for other calls: fast calls made on the same connection
// while a slow one waits return at once.
func TestNativeCallerReadsOthersReplies(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	if _, err := call(context.Background(), tr, l.Addr(), "Echo.Call", nil); err != nil {
		t.Fatal(err)
	}
	<-g.started
	slow := blockingCalls(t, g, tr, l.Addr(), 1)
	for i := 0; i < 20; i++ {
		body := []byte(fmt.Sprint("fast-", i))
		m, err := call(context.Background(), tr, l.Addr(), "Echo.Call", body)
		if err != nil || string(m.Body) != string(body) {
			t.Fatalf("fast call %d while a slow one waits: %q %v", i, m.Body, err)
		}
		<-g.started
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow call returned before its handler did: %v", err)
	default:
	}
	g.open()
	if err := <-slow; err != nil {
		t.Fatalf("the slow call: %v", err)
	}
	if n := len(sl.conns); n != 1 {
		t.Fatalf("%d connections, want all calls on one", n)
	}
}

// TestNativeSilentServerWhileCallersRead: calls whose callers read their own replies time
// out one after another on a connection whose server went silent; the keepalive still
// finds it dead (KeepAlive(200 ms, 200 ms)), and the next call goes over a new one.
func TestNativeSilentServerWhileCallersRead(t *testing.T) {
	g := newGate(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	p := newSilencer(t, l.Addr())
	tr := client(t, transport.KeepAlive(200*time.Millisecond, 200*time.Millisecond))
	addr := p.ln.Addr().String()
	within := func(d time.Duration) error {
		_, err := callCtx(callctx.New(context.Background(), time.Now().Add(d)), tr, addr, "Echo.Call", nil)
		return err
	}
	if err := within(waitFor); err != nil {
		t.Fatal(err)
	}
	p.silent.Store(true)
	deadline := time.Now().Add(waitFor)
	timedOut := 0
	for closed := false; !closed; {
		err := within(50 * time.Millisecond)
		if err == nil {
			t.Fatal("a call to the silent server succeeded")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			timedOut++
		}
		select {
		case <-p.closed:
			closed = true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the silent connection was not closed within %s (%d calls timed out)", waitFor, timedOut)
		}
	}
	if timedOut == 0 {
		t.Fatal("no call timed out on the silent connection")
	}
	p.silent.Store(false)
	if err := within(waitFor); err != nil {
		t.Fatalf("the call after the silence: %v", err)
	}
}

// TestNativeServerGoneBetweenCalls: the server's end of a connection closes without a
// GOAWAY (as in a crash) while no call runs on it, after calls whose callers read their
// own replies. The client still reads the connection between calls, so it learns of the
// close: the next call goes over a new connection and succeeds.
func TestNativeServerGoneBetweenCalls(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	tr := client(t)
	for i := 0; i < 10; i++ {
		if _, err := call(context.Background(), tr, l.Addr(), "Echo.Call", nil); err != nil {
			t.Fatal(err)
		}
		<-g.started
	}
	sl.mu.Lock()
	_ = sl.conns[0].Conn.Close()
	sl.mu.Unlock()
	// The reader goroutine rests 5 ms after the callers last read; this waits twenty
	// times that.
	time.Sleep(100 * time.Millisecond)
	if _, err := call(context.Background(), tr, l.Addr(), "Echo.Call", nil); err != nil {
		t.Fatalf("the call after the server closed the connection: %v", err)
	}
	<-g.started
	if n := len(sl.conns); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// TestNativeReceivedBodiesStayPut: the bodies Recv returns are the caller's. Kept side
// by side, they still hold what was sent after later messages were read over the same
// connection buffer, and appending to one leaves its neighbour alone, on both sides (the
// server's echo sends back the bodies it received). The client reuses one buffer for
// all its Sends: a body is copied before Send returns.
func TestNativeReceivedBodiesStayPut(t *testing.T) {
	checkLeaks(t)
	ss := newStreamServer(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, ss.handle)
	c := openStream(t, client(t), l.Addr(), "echo")
	sizes := []int{1, 7, 300, 511, 512, 513, 2000, 3, 4096, 5000, 9, 1, 700, 64}
	var kept [][]byte
	var out []byte
	for i, n := range sizes {
		out = out[:0]
		for j := 0; j < n; j++ {
			out = append(out, byte('a'+(i+j)%26))
		}
		if err := c.Send(&transport.Message{Body: out}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		for j := range out {
			out[j] = '#' // the buffer is free once Send returns
		}
		var in transport.Message
		if err := c.Recv(&in); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		kept = append(kept, in.Body)
	}
	for i, b := range kept {
		if len(b) != sizes[i] {
			t.Fatalf("body %d: %d bytes, sent %d", i, len(b), sizes[i])
		}
		for j := range b {
			if b[j] != byte('a'+(i+j)%26) {
				t.Fatalf("body %d changed at byte %d: %q", i, j, b[j])
			}
		}
	}
	for i := range kept[:len(kept)-1] {
		next := append([]byte(nil), kept[i+1]...)
		_ = append(kept[i], "overwrite"...)
		if !bytes.Equal(kept[i+1], next) {
			t.Fatalf("appending to body %d changed body %d", i, i+1)
		}
	}
}

// TestNativeSlowCallLeavesConnectionRead: a lone unary call is served by the goroutine
// that read it, before it reads on; a call that runs on (here, until the test lets it)
// has the reading handed to another worker, so a call sent behind it on the same
// connection is answered meanwhile, and so is every one after it.
func TestNativeSlowCallLeavesConnectionRead(t *testing.T) {
	checkLeaks(t)
	g := newGate(t)
	l, _ := listen(t, transport.NewHTTPTransport(), transport.Limits{}, g.handle)
	r := dialRaw(t, l.Addr())
	block := wire.Fields{{Key: headers.Endpoint, Value: "block"}, {Key: headers.ContentType, Value: "text/plain"}}
	r.request(1, wire.FlagEnd, block, []byte("slow"))
	g.waitStarted(t, 1)
	for id := uint32(3); id < 9; id += 2 {
		r.request(id, wire.FlagEnd, routing, []byte("quick"))
		if f := r.expectReply(id); string(f.body) != "quick" {
			t.Fatalf("reply on stream %d: %q", id, f.body)
		}
	}
	g.open()
	if f := r.expectReply(1); string(f.body) != "slow" {
		t.Fatalf("the slow call's reply: %q", f.body)
	}
	// and the connection serves calls one at a time as before
	for id := uint32(9); id < 15; id += 2 {
		r.request(id, wire.FlagEnd, routing, []byte("next"))
		if f := r.expectReply(id); string(f.body) != "next" {
			t.Fatalf("reply on stream %d: %q", id, f.body)
		}
	}
}

// TestNativeCancelledWhileReadingOwnReply: a call whose context can be cancelled reads
// its own reply, and its cancellation stops that reading at once while it waits between
// frames, or, in the middle of a frame, once the frame is in: either way the call returns
// context.Canceled, the server gets the cancel, and the connection serves the next call
// (a deadline that cut the frame off would have broken its byte stream, and the raw
// server takes one connection only).
func TestNativeCancelledWhileReadingOwnReply(t *testing.T) {
	for _, midFrame := range []bool{false, true} {
		t.Run(fmt.Sprintf("midFrame=%v", midFrame), func(t *testing.T) {
			checkLeaks(t)
			var enc wire.Writer // only its encoder
			partial := make(chan struct{})
			cancelled := make(chan struct{})
			addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				// a first call, after which the connection's reader goroutine rests
				if _, err := c.Write(enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, readRequest(t, br), nil, []byte("first"))); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				id := readRequest(t, br)
				if midFrame {
					// a frame for a stream long gone, cut after a few bytes of its payload
					frame := enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, id+1000, nil, bytes.Repeat([]byte("x"), 100))
					if _, err := c.Write(frame[:wire.HeaderLen+10]); err != nil {
						t.Errorf("write: %v", err)
						return
					}
					close(partial)
					<-cancelled
					time.Sleep(50 * time.Millisecond) // the cancel lands mid-frame
					if _, err := c.Write(frame[wire.HeaderLen+10:]); err != nil {
						t.Errorf("write: %v", err)
						return
					}
				}
				for {
					h, err := wire.ReadFrameHeader(br)
					if err == nil {
						_, err = wire.ReadPayload(br, h.Length, nil)
					}
					if err != nil {
						t.Errorf("waiting for the cancel: %v", err)
						return
					}
					if h.Type == wire.TypeCancel && h.Stream == id {
						break
					}
				}
				next := readRequest(t, br)
				if _, err := c.Write(enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, next, nil, []byte("next"))); err != nil {
					t.Errorf("write: %v", err)
				}
				_, _ = br.ReadByte() // until the client closes
			})
			tr := client(t)
			if m, err := call(context.Background(), tr, addr, "Echo.Call", nil); err != nil || string(m.Body) != "first" {
				t.Fatalf("the first call: %q %v", m.Body, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan error, 1)
			go func() {
				_, err := call(ctx, tr, addr, "Echo.Call", nil)
				res <- err
			}()
			if midFrame {
				<-partial
			}
			time.Sleep(50 * time.Millisecond) // the caller is reading
			cancel()
			close(cancelled)
			select {
			case err := <-res:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("the cancelled call: %v, want context.Canceled", err)
				}
			case <-time.After(waitFor):
				t.Fatal("the cancelled call did not return")
			}
			m, err := call(context.Background(), tr, addr, "Echo.Call", nil)
			if err != nil || string(m.Body) != "next" {
				t.Fatalf("the call after the cancelled one: %q %v", m.Body, err)
			}
		})
	}
}

// TestNativeHelloCutOffByDeadline: a call whose own deadline (a plain context, not a call
// context) passes while the server's hello is on its way fails with the deadline, and
// the address is not taken for one that speaks HTTP only: the next call speaks the
// native protocol (the server here speaks nothing else).
func TestNativeHelloCutOffByDeadline(t *testing.T) {
	checkLeaks(t)
	addr := rawListener(t, func(ln net.Listener) {
		// the first connection: the hello comes too late for the call's deadline
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		_, _ = io.ReadFull(c, make([]byte, len(wire.Magic)))
		time.Sleep(300 * time.Millisecond)
		_ = c.Close()
		c, br, err := acceptNative(ln)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.Close()
		var enc wire.Writer // only its encoder
		if _, err := c.Write(enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, readRequest(t, br), nil, []byte("native"))); err != nil {
			t.Errorf("write: %v", err)
		}
		_, _ = br.ReadByte() // until the client closes
	})
	tr := client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := callCtx(ctx, tr, addr, "Echo.Call", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the call whose deadline cut the hello off: %v, want context.DeadlineExceeded", err)
	}
	m, err := call(context.Background(), tr, addr, "Echo.Call", nil)
	if err != nil || string(m.Body) != "native" {
		t.Fatalf("the next call: %q %v, want it native", m.Body, err)
	}
}

// rawListener listens on loopback and runs fn with the listener in a goroutine of its
// own, which the test's end waits for (after closing the listener).
func rawListener(t *testing.T, fn func(ln net.Listener)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		fn(ln)
	}()
	return ln.Addr().String()
}

// rawServer is a native server written by hand, to send replies a real one never would:
// it answers the Magic with a hello and hands its first connection to fn.
func rawServer(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	return rawListener(t, func(ln net.Listener) {
		c, br, err := acceptNative(ln)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("accept: %v", err)
			}
			return
		}
		defer c.Close()
		fn(c, br)
	})
}

// acceptNative accepts a connection on ln and opens it as a native server: it reads the
// client's Magic and answers with a hello (100 streams, 4 MiB messages).
func acceptNative(ln net.Listener) (net.Conn, *bufio.Reader, error) {
	c, err := ln.Accept()
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(waitFor))
	br := bufio.NewReader(c)
	magic := make([]byte, len(wire.Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != wire.Magic {
		_ = c.Close()
		return nil, nil, fmt.Errorf("magic %q: %v", magic, err)
	}
	hello := binary.BigEndian.AppendUint32([]byte(wire.Magic), 100)
	if _, err := c.Write(binary.BigEndian.AppendUint32(hello, 4<<20)); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, br, nil
}

// readRequest reads the next Request frame a client sent and returns its stream id.
func readRequest(t *testing.T, br *bufio.Reader) uint32 {
	for {
		h, err := wire.ReadFrameHeader(br)
		if err != nil {
			t.Errorf("reading a request: %v", err)
			return 0
		}
		if _, err := wire.ReadPayload(br, h.Length, nil); err != nil {
			t.Errorf("reading a request: %v", err)
			return 0
		}
		if h.Type == wire.TypeRequest {
			return h.Stream
		}
	}
}

// TestNativeReplyOverLimitNotBuffered: a server sends a unary reply frame of 64 MiB to a
// client whose limit is 1 KiB. The call fails with the limit as soon as the frame's
// header block is in, while the server still holds back the body; the client reads past
// the body without holding it in memory, and the connection goes on: the next call's
// reply, whose header names a pair the oversized frame's block added to the header
// table, is read right.
func TestNativeReplyOverLimitNotBuffered(t *testing.T) {
	checkLeaks(t)
	const size = 64 << 20
	hdr := wire.Fields{{Key: headers.ContentType, Value: "text/plain"}, {Key: "X-Tag", Value: "tagged"}}
	failed := make(chan struct{})
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		var enc wire.Writer // only its encoder
		id := readRequest(t, br)
		head := enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, id, hdr, nil)
		wire.PutLength(head, size+len(head)-wire.HeaderLen)
		if _, err := c.Write(head); err != nil {
			t.Errorf("write: %v", err)
			return
		}
		select {
		case <-failed:
		case <-time.After(waitFor):
			t.Error("the call did not fail before the body was sent")
			return
		}
		chunk := make([]byte, 1<<20)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
		id = readRequest(t, br)
		if _, err := c.Write(enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, id, hdr, []byte("after"))); err != nil {
			t.Errorf("write: %v", err)
		}
		_, _ = br.ReadByte() // until the client closes
	})
	tr := client(t)
	dial := func() transport.Client {
		c, err := tr.Dial(addr, transport.WithContext(callctx.New(context.Background(), time.Now().Add(waitFor))), transport.WithMaxMsgSize(1024))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: "Echo.Call"}}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := dial()
	var m transport.Message
	err := c.Recv(&m)
	close(failed)
	_ = c.Close()
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 1024") {
		t.Fatalf("the oversized reply: %v, want the limit", err)
	}
	c = dial()
	defer c.Close()
	m = transport.Message{}
	if err := c.Recv(&m); err != nil {
		t.Fatalf("the call after the oversized reply: %v", err)
	}
	runtime.ReadMemStats(&after)
	if string(m.Body) != "after" || m.Header["X-Tag"] != "tagged" {
		t.Fatalf("the call after the oversized reply: %v %q", m.Header, m.Body)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading past a %d MiB reply cost %d KiB of allocation", size>>20, alloc>>10)
	if alloc > 8<<20 {
		t.Fatalf("reading past a %d MiB reply allocated %d bytes", size>>20, alloc)
	}
}

// TestNativeReplyOverLimit: replies larger than the client's limit fail their call with
// the limit, whether the frame is weighed before it is read (a unary reply well past the
// limit), checked once read (one just past it, and a stream's message, which also cancels
// the stream at the server), and the connection serves the next call.
func TestNativeReplyOverLimit(t *testing.T) {
	checkLeaks(t)
	flood := make(chan error, 1)
	l, sl := listen(t, transport.NewHTTPTransport(), transport.Limits{MaxMsgSize: 8 << 20}, func(s transport.Socket) {
		var m transport.Message
		if s.Recv(&m) != nil {
			return
		}
		if m.Header[transport.StreamHeader] != "" {
			// a flood of messages past the client's limit, bounded: far beyond the window
			_ = s.Send(&transport.Message{Header: map[string]string{transport.Open: "1", headers.ContentType: "application/octet-stream"}})
			for i := 0; i < 1000; i++ {
				if err := s.Send(&transport.Message{Body: make([]byte, chunk)}); err != nil {
					flood <- err
					return
				}
			}
			flood <- nil
			return
		}
		n, _ := strconv.Atoi(string(m.Body))
		_ = s.Send(&transport.Message{Header: map[string]string{headers.ContentType: "text/plain"}, Body: make([]byte, n)})
	})
	tr := client(t)
	for _, n := range []int{2 << 20, 100 << 10, 2048, 1025} {
		c, err := tr.Dial(l.Addr(), transport.WithContext(callctx.New(context.Background(), time.Now().Add(waitFor))), transport.WithMaxMsgSize(1024))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: "Big.Call"}, Body: []byte(strconv.Itoa(n))}); err != nil {
			t.Fatal(err)
		}
		var m transport.Message
		err = c.Recv(&m)
		_ = c.Close()
		if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 1024") {
			t.Fatalf("a reply of %d bytes: %v, want the limit", n, err)
		}
	}
	c, err := tr.Dial(l.Addr(), transport.WithStream(), transport.WithMaxMsgSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: "flood"}}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := c.Recv(&m); err == nil || !strings.Contains(err.Error(), "exceeds the limit of 1024") {
		t.Fatalf("a stream message of %d bytes: %v, want the limit", chunk, err)
	}
	select {
	case err := <-flood:
		if err == nil {
			t.Fatal("the server sent its whole flood to a stream the client refused")
		}
	case <-time.After(waitFor):
		t.Fatal("the server's Send went on after the client refused the stream")
	}
	if m, err := call(context.Background(), tr, l.Addr(), "Big.Call", []byte("5")); err != nil || len(m.Body) != 5 {
		t.Fatalf("the call after: %q %v", m.Body, err)
	}
	if n := sl.count(wire.Magic); n != 1 {
		t.Fatalf("%d native connections, want 1", n)
	}
}

// FuzzNativeClient feeds a native client whatever a server might send after its hello,
// in answer to a unary call, then the end of the connection: the call ends, with its
// reply or an error, without waiting out its deadline, and nothing panics.
func FuzzNativeClient(f *testing.F) {
	reply := func(id uint32, flags byte, hdr wire.Fields, body string) []byte {
		var w wire.Writer // each seed's encoder starts afresh, as the client's decoder does
		return w.AppendFields(nil, wire.TypeMessage, flags, id, hdr, []byte(body))
	}
	ct := wire.Fields{{Key: headers.ContentType, Value: "text/plain"}}
	f.Add(reply(1, wire.FlagEnd, ct, "hello"))
	f.Add(append(reply(1, 0, ct, "part"), reply(1, wire.FlagEnd, nil, "end")...))
	var enc wire.Writer // one encoder for both: the second block names the first's pair
	f.Add(append(enc.AppendFields(nil, wire.TypeMessage, 0, 1, ct, nil), enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, 1, ct, []byte("end"))...))
	// only the second of those: its block names a pair the client never got
	f.Add(enc.AppendFields(nil, wire.TypeMessage, wire.FlagEnd, 1, ct, []byte("stale")))
	f.Add(append(reply(3, wire.FlagEnd, ct, "other"), reply(1, wire.FlagEnd, ct, "mine")...))
	f.Add(reply(1, wire.FlagEnd, ct, strings.Repeat("x", 5000)))
	big := reply(1, wire.FlagEnd, ct, "")
	wire.PutLength(big, 1<<30)
	f.Add(big)
	f.Add(wire.AppendControl(nil, wire.TypeCancel, 0, 1, wire.CodeRefused))
	f.Add(wire.AppendControl(nil, wire.TypeGoAway, 0, 0, 0, 0, 0, 0))
	f.Add(wire.AppendControl(nil, wire.TypeWindow, 0, 1, 0xff, 0xff, 0xff, 0xff))
	f.Add(wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add(wire.AppendControl(nil, wire.TypeMessage, wire.FlagEnd, 1, 0x45, 0))
	f.Add(wire.AppendControl(nil, wire.TypeRequest, wire.FlagEnd, 1, 0))
	f.Add(wire.AppendControl(nil, 9, 0, 1))
	f.Add([]byte{})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = ln.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, _, err := acceptNative(ln)
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.Write(data)
			// then the end of the input, and what the client sends until it closes
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}()
		tr := transport.NewHTTPTransport()
		defer tr.CloseIdleConnections()
		c, err := tr.Dial(ln.Addr().String(), transport.WithContext(callctx.New(context.Background(), time.Now().Add(waitFor))), transport.WithMaxMsgSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(&transport.Message{Header: map[string]string{headers.Endpoint: "Echo.Call"}, Body: []byte("hi")}); err == nil {
			var m transport.Message
			if err := c.Recv(&m); err != nil && errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the call waited out its deadline: %v", err)
			}
		}
		_ = c.Close()
		tr.CloseIdleConnections()
		<-served
	})
}

// TestNativeMalformedReplyFailsCall: a reply whose header block the client cannot decode
// (it names a header table entry the server never sent) fails its call at once, as a
// lost connection, instead of leaving the caller to wait out its deadline and beyond.
func TestNativeMalformedReplyFailsCall(t *testing.T) {
	checkLeaks(t)
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		id := readRequest(t, br)
		_, _ = c.Write(wire.AppendControl(nil, wire.TypeMessage, wire.FlagEnd, id, 0x45, 0))
		_, _ = io.Copy(io.Discard, br) // until the client closes
	})
	tr := client(t)
	start := time.Now()
	_, err := callCtx(callctx.New(context.Background(), time.Now().Add(waitFor)), tr, addr, "Echo.Call", nil)
	var lost *transport.ConnLostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("a malformed reply: %v, want the connection lost with the reason", err)
	}
	if d := time.Since(start); d > waitFor/2 {
		t.Fatalf("a malformed reply took %s to fail its call", d)
	}
}
