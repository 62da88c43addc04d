package transport_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/transport"
)

// silencer is a TCP proxy on loopback that forwards bytes both ways until silenced, then
// reads and drops everything (a peer gone silent, as behind a partition). It reports when
// the client side closes its connection.
type silencer struct {
	ln     net.Listener
	target string
	silent atomic.Bool
	closed chan time.Time // receives when a client connection is closed by the client
	wg     sync.WaitGroup
}

func newSilencer(t *testing.T, target string) *silencer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silencer{ln: ln, target: target, closed: make(chan time.Time, 16)}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *silencer) serve() {
	defer s.wg.Done()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < 100; i++ { // bounded: the tests make a few connections
		in, err := s.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", s.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		conns = append(conns, in, out)
		s.wg.Add(2)
		go func() { // client to server; notices the client closing
			defer s.wg.Done()
			s.pipe(out, in)
			s.closed <- time.Now()
			_ = out.Close()
		}()
		go func() {
			defer s.wg.Done()
			s.pipe(in, out)
			_ = in.Close()
		}()
	}
}

// pipe copies from src to dst while not silenced, and drops what it reads when silenced,
// until src fails.
func (s *silencer) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !s.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func roundTrip(t *testing.T, tr transport.Transport, addr string) {
	t.Helper()
	c, err := tr.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{"Micro-Endpoint": "A.B"}, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := c.Recv(&m); err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "x" {
		t.Fatalf("echo %q", m.Body)
	}
}

// TestKeepAliveClosesSilentConnection: with KeepAlive(200 ms, 200 ms), an idle pooled
// connection whose peer goes silent is closed by the client within about 400 ms, and the
// next call goes over a new connection; with the defaults (15 s + 10 s) the same
// connection is still open 1 s after the peer went silent.
func TestKeepAliveClosesSilentConnection(t *testing.T) {
	srv := transport.NewHTTPTransport()
	l, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)

	t.Run("KeepAlive(200ms,200ms)", func(t *testing.T) {
		p := newSilencer(t, l.Addr())
		tr := transport.NewHTTPTransport(transport.KeepAlive(200*time.Millisecond, 200*time.Millisecond))
		defer tr.CloseIdleConnections()
		roundTrip(t, tr, p.ln.Addr().String())
		p.silent.Store(true)
		silenced := time.Now()
		select {
		case at := <-p.closed:
			d := at.Sub(silenced)
			t.Logf("the silent connection was closed %s after the peer went silent", d.Round(time.Millisecond))
			if d < 100*time.Millisecond || d > time.Second {
				t.Fatalf("closed %s after the peer went silent, want about 200-400 ms", d)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the silent connection was not closed within 3 s")
		}
		p.silent.Store(false)
		roundTrip(t, tr, p.ln.Addr().String()) // a new connection carries it
	})

	t.Run("defaults", func(t *testing.T) {
		p := newSilencer(t, l.Addr())
		tr := transport.NewHTTPTransport()
		defer tr.CloseIdleConnections()
		if o := tr.Options(); o.KeepAliveTime != 0 || o.KeepAliveTimeout != 0 {
			t.Fatalf("options %v/%v, want zero (the defaults)", o.KeepAliveTime, o.KeepAliveTimeout)
		}
		roundTrip(t, tr, p.ln.Addr().String())
		p.silent.Store(true)
		select {
		case <-p.closed:
			t.Fatal("with the default keepalive (15 s + 10 s) the connection was closed within 1 s")
		case <-time.After(time.Second): // the window observed
		}
		tr.CloseIdleConnections()
		select {
		case <-p.closed:
		case <-time.After(3 * time.Second):
			t.Fatal("CloseIdleConnections did not close the connection")
		}
	})
}
