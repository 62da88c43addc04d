package transport

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// acceptAll accepts from ln until it fails, handing each connection to conns.
func acceptAll(t *testing.T, ln net.Listener) (<-chan net.Conn, <-chan struct{}) {
	t.Helper()
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return conns, done
}

// closedByPeer reports whether the server closed c (EOF or reset) within d.
func closedByPeer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestLimitListenerClosesOverCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, 2).(*limitListener)
	conns, done := acceptAll(t, ln)
	defer func() { ln.Close(); <-done }()
	addr := raw.Addr().String()

	dial(t, addr)
	dial(t, addr)
	a, b := <-conns, <-conns
	if n := ln.open.Load(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
	over := dial(t, addr)
	if !closedByPeer(over, 2*time.Second) {
		t.Fatal("a connection over the cap was not closed")
	}
	select {
	case c := <-conns:
		t.Fatalf("Accept returned a connection over the cap: %v", c.RemoteAddr())
	default:
	}

	// Closing twice frees one place, once.
	_ = a.Close()
	_ = a.Close()
	if n := ln.open.Load(); n != 1 {
		t.Fatalf("%d open after closing one twice, want 1", n)
	}
	dial(t, addr)
	c := <-conns
	if n := ln.open.Load(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}
	over = dial(t, addr)
	if !closedByPeer(over, 2*time.Second) {
		t.Fatal("a connection over the cap was not closed")
	}
	_ = b.Close()
	_ = c.Close()
	if n := ln.open.Load(); n != 0 {
		t.Fatalf("%d open after closing all, want 0", n)
	}
}

func TestLimitListenerConcurrentClose(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, 1000).(*limitListener)
	conns, done := acceptAll(t, ln)
	defer func() { ln.Close(); <-done }()
	n := 50
	var accepted []net.Conn
	for i := 0; i < n; i++ {
		dial(t, raw.Addr().String())
		accepted = append(accepted, <-conns)
	}
	var wg sync.WaitGroup
	for _, c := range accepted {
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				_ = c.Close()
			}(c)
		}
	}
	wg.Wait()
	if got := ln.open.Load(); got != 0 {
		t.Fatalf("%d open after every connection was closed (4 times each), want 0", got)
	}
}

func TestLimitListenerUncapped(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ln := newLimitListener(raw, -1); ln != raw {
		t.Fatal("a negative cap should leave the listener as it is")
	}
	if got := (Limits{}).withDefaults().MaxConns; got != 10000 {
		t.Fatalf("default MaxConns %d, want 10000", got)
	}
}

// TestListenMaxConns caps a listener given through NetListener: an idle connection
// holds the only place, the next is closed at once, and once the first is gone calls
// are served again.
func TestListenMaxConns(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := NewHTTPTransport()
	l, err := tr.Listen("", NetListener(raw), ListenLimits(Limits{MaxConns: 1}))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = l.Accept(func(s Socket) {
			var m Message
			if s.Recv(&m) == nil {
				_ = s.Send(&Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: m.Body})
			}
		})
	}()
	defer func() { l.Close(); <-served }()
	addr := l.Addr()

	idle := dial(t, addr)
	// the idle connection is accepted (it holds the place) before the next one comes
	ll := l.(*httpListener).ln.(*limitListener)
	deadline := time.Now().Add(2 * time.Second)
	for ll.open.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not accepted")
		}
		time.Sleep(time.Millisecond)
	}
	over := dial(t, addr)
	if !closedByPeer(over, 2*time.Second) {
		t.Fatal("a connection over the cap was not closed")
	}
	_ = idle.Close()

	hc := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	var last error
	for i := 0; i < 500; i++ { // the server notices the close of idle asynchronously
		rsp, err := hc.Post("http://"+addr+"/", "text/plain", nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, rsp.Body)
			rsp.Body.Close()
			if rsp.StatusCode != 200 {
				t.Fatalf("status %d", rsp.StatusCode)
			}
			return
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no call served after the idle connection closed: %v", last)
}
