package transport_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/transport"
)

// countingListener counts the connections it accepts and what each one opened with.
type countingListener struct {
	net.Listener
	conns atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns.Add(1)
	}
	return c, err
}

func call(t *testing.T, tr transport.Transport, addr, body string) transport.Message {
	t.Helper()
	c, err := tr.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{"Micro-Endpoint": "A.B"}, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := c.Recv(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A micro client calling a plain HTTP server (h2c, as micro's HTTP client speaks) falls
// back to HTTP after one probe connection, and remembers it.
func TestNativeFallsBackToPlainHTTP(t *testing.T) {
	for _, h2 := range []bool{true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl := &countingListener{Listener: ln}
		protocols := new(http.Protocols)
		protocols.SetHTTP1(true)
		protocols.SetUnencryptedHTTP2(h2)
		var served atomic.Int64
		srv := &http.Server{Protocols: protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
		})}
		go func() { _ = srv.Serve(cl) }()
		tr := transport.NewHTTPTransport()
		start := time.Now()
		if m := call(t, tr, ln.Addr().String(), "one"); string(m.Body) != "one" {
			t.Fatalf("got %q", m.Body)
		}
		t.Logf("h2c=%v: first call, probe included, took %s", h2, time.Since(start))
		if m := call(t, tr, ln.Addr().String(), "two"); string(m.Body) != "two" {
			t.Fatalf("got %q", m.Body)
		}
		if served.Load() != 2 {
			t.Fatalf("the server served %d calls, want 2", served.Load())
		}
		if n := cl.conns.Load(); n > 3 {
			t.Fatalf("%d connections for two calls: the fallback is not remembered", n)
		}
		tr.CloseIdleConnections()
		_ = srv.Close()
	}
}

// HTTP/1.1, h2c and native clients share one port.
func TestNativeBesideHTTPOnOnePort(t *testing.T) {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	if m := call(t, tr, l.Addr(), "native"); string(m.Body) != "native" || m.Header["X-Echo"] != "A.B" {
		t.Fatalf("native: %v %q", m.Header, m.Body)
	}
	resp, err := http.Post("http://"+l.Addr()+"/", "text/plain", strings.NewReader("http1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "http1" || resp.ProtoMajor != 1 {
		t.Fatalf("HTTP/1: %s %q", resp.Proto, b)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	defer h2.CloseIdleConnections()
	resp, err = h2.Post("http://"+l.Addr()+"/", "text/plain", strings.NewReader("h2c"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "h2c" || resp.ProtoMajor != 2 {
		t.Fatalf("h2c: %s %q", resp.Proto, b)
	}
}

// Malformed native frames get a GOAWAY naming the fault, never a panic, and the
// listener keeps serving other clients.
func TestNativeMalformedFrames(t *testing.T) {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	frame := func(typ, flags byte, stream uint32, payload []byte) []byte {
		return append(wire.AppendFrameHeader(nil, len(payload), typ, flags, stream), payload...)
	}
	cases := map[string][]byte{
		"unknown frame type":     frame(42, 0, 1, nil),
		"even stream":            frame(wire.TypeRequest, wire.FlagEnd, 2, []byte{0}),
		"stream zero":            frame(wire.TypeRequest, wire.FlagEnd, 0, []byte{0}),
		"truncated header block": frame(wire.TypeRequest, wire.FlagEnd, 1, []byte{0x01, 0x05, 'a'}),
		"table index unknown":    frame(wire.TypeRequest, wire.FlagEnd, 1, []byte{0x50, 0x00}),
		"static key unknown":     frame(wire.TypeRequest, wire.FlagEnd, 1, []byte{0x3f, 0x01, 'v', 0x00}),
		"ping of wrong size":     frame(wire.TypePing, 0, 0, []byte{1, 2, 3}),
		"reused stream":          append(frame(wire.TypeRequest, wire.FlagEnd, 3, []byte{0}), frame(wire.TypeRequest, wire.FlagEnd, 1, []byte{0})...),
	}
	for name, bad := range cases {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append([]byte(wire.Magic), bad...)); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		hello := make([]byte, len(wire.Magic)+8)
		if _, err := io.ReadFull(r, hello); err != nil {
			t.Fatalf("%s: no hello: %v", name, err)
		}
		var reason string
		for {
			h, err := wire.ReadFrameHeader(r)
			if err != nil {
				break // closed
			}
			p, err := wire.ReadPayload(r, h.Length, nil)
			if err != nil {
				break
			}
			if h.Type == wire.TypeGoAway && len(p) >= 4 {
				reason = string(p[4:])
				_ = binary.BigEndian.Uint32(p)
			}
		}
		_ = c.Close()
		if reason == "" {
			t.Fatalf("%s: no GOAWAY with a reason", name)
		}
		t.Logf("%s: %s", name, reason)
		if m := call(t, tr, l.Addr(), "still"); string(m.Body) != "still" {
			t.Fatalf("after %s: %q", name, m.Body)
		}
	}
}

// An oversized request is refused with 413 without being read into memory; the
// connection carries on.
func TestNativeOversizedRequest(t *testing.T) {
	if os.Getenv("MICRO_NATIVE") == "0" {
		t.Skip("MICRO_NATIVE=0: the client speaks HTTP")
	}
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, err := tr.Listen("127.0.0.1:0", transport.ListenLimits(transport.Limits{MaxMsgSize: 1 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	c, err := tr.Dial(l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{"Micro-Endpoint": "A.B"}, Body: make([]byte, 1<<20)}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := c.Recv(&m); err != nil {
		t.Fatal(err)
	}
	if m.Header[":status"] != "413" {
		t.Fatalf("got %v", m.Header)
	}
	if m := call(t, tr, l.Addr(), "small"); string(m.Body) != "small" {
		t.Fatalf("after 413: %q", m.Body)
	}
}
