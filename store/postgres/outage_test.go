package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

// faultProxy is a TCP proxy on loopback in front of a server, that can cut the link two
// ways: blackhole (nothing passes either way, silently: connections stay open and new
// ones are accepted, as when packets are dropped; what was held passes after the heal,
// as TCP would retransmit it) and down (every connection is reset and new ones are
// refused, as when the server stops). Its methods are safe for concurrent use.
type faultProxy struct {
	upstream string
	addr     string

	mu     sync.Mutex
	ln     net.Listener  // nil while down
	gate   chan struct{} // closed while data may pass
	conns  map[net.Conn]struct{}
	closed chan struct{}
	wg     sync.WaitGroup
}

// startProxy starts a proxy to upstream on a free loopback port, closed at the end of
// the test.
func startProxy(t testing.TB, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{upstream: upstream, addr: ln.Addr().String(), gate: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	close(p.gate)
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.track(c) {
				return
			}
			p.wg.Add(1)
			go p.link(c)
		}
	}()
}

// track adds c to the proxy's connections, or closes it and returns false when the
// proxy is closed.
func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

// link connects a client to the upstream once data may pass, and copies both ways.
func (p *faultProxy) link(client net.Conn) {
	defer p.wg.Done()
	defer p.drop(client)
	if !p.wait() {
		return
	}
	server, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
	if err != nil || !p.track(server) {
		return
	}
	defer p.drop(server)
	done := make(chan struct{}, 2)
	go func() { p.pump(server, client); done <- struct{}{} }()
	go func() { p.pump(client, server); done <- struct{}{} }()
	<-done // one side ended: end both
	client.Close()
	server.Close()
	<-done
}

// pump copies src to dst, holding what it read while the link is blackholed.
func (p *faultProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			p.wait() // a close passes when data would
			return
		}
	}
}

// wait blocks while the link is blackholed; false when the proxy closed meanwhile.
func (p *faultProxy) wait() bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-p.closed:
		return false
	}
}

func (p *faultProxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// blackhole stops everything from passing, silently.
func (p *faultProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

// down resets every connection and refuses new ones.
func (p *faultProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		c.Close()
	}
}

// heal lets everything pass again, listening again on the same address after down.
func (p *faultProxy) heal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", p.addr, err)
		}
		p.serve(ln)
	}
	return nil
}

func (p *faultProxy) close() {
	p.mu.Lock()
	close(p.closed)
	if p.ln != nil {
		p.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// proxyTo starts a proxy in front of the server of dsn, and returns it and the
// connection string that goes through it.
func proxyTo(t testing.TB, dsn string) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" || strings.Contains(u.Host, ",") {
		t.Skipf("the test server's connection string %q is not a URL of one host: the outage test needs one", dsn)
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := startProxy(t, upstream)
	u.Host = p.addr
	return p, u.String()
}

// TestI3Outage is battery row I3: the server unreachable (a proxy in front of it
// blackholes the link, or resets it and refuses connections) for 1.5 s (5 s with
// MICRO_TEST_LONG=1), while calls go on. Every call during the outage fails with an error
// naming the backend and the operation within its deadline (the store's Timeout, 500 ms):
// no call hangs; a call after the heal works within 1 s, and the calls after it too.
func TestI3Outage(t *testing.T) {
	testutil.Scenario(t)
	dsn := requireServer(t)
	outage, timeout := 1500*time.Millisecond, 500*time.Millisecond
	if testutil.Long() {
		outage, timeout = 5*time.Second, time.Second
	}
	const slack = 250 * time.Millisecond // scheduling, under -race on a busy machine
	for _, mode := range []string{"blackhole", "down"} {
		t.Run(mode, func(t *testing.T) {
			p, proxied := proxyTo(t, dsn)
			s, _ := newStore(t, store.Nodes(proxied), Timeout(timeout))
			ops := []struct {
				name string
				f    func() error
			}{
				{"write", func() error { return s.Write(&store.Record{Key: "k", Value: []byte("v")}) }},
				{"read", func() error { _, err := s.Read("k"); return err }},
				{"list", func() error { _, err := s.List(store.ListPrefix("k")); return err }},
				{"delete", func() error { return s.Delete("gone") }},
			}
			// a pool of a few connections, some busy and some idle when the link is cut
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, op := range ops {
						if err := op.f(); err != nil {
							t.Errorf("%s before the outage: %v", op.name, err)
						}
					}
				}()
			}
			wg.Wait()

			if mode == "blackhole" {
				p.blackhole()
			} else {
				p.down()
			}
			cut := time.Now()
			var calls int
			var worst time.Duration
			for i := 0; time.Since(cut) < outage && i < 1000; i++ {
				op := ops[i%len(ops)]
				start := time.Now()
				err := op.f()
				took := time.Since(start)
				worst = max(worst, took)
				calls++
				if err == nil || err == store.ErrNotFound {
					t.Fatalf("%s during the outage: %v, want an error", op.name, err)
				}
				if !strings.HasPrefix(err.Error(), "store/postgres: "+op.name) {
					t.Fatalf("%s during the outage: the error does not name the backend and the operation: %v", op.name, err)
				}
				if mode == "blackhole" && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s during the blackhole: %v, want one that matches context.DeadlineExceeded", op.name, err)
				}
				if took > timeout+slack {
					t.Fatalf("%s during the outage took %s: its deadline was %s", op.name, took, timeout)
				}
				if mode == "down" && took < 10*time.Millisecond {
					// refused at once: pace the calls so that the loop stays bounded
					<-time.After(20 * time.Millisecond)
				}
			}
			if err := p.heal(); err != nil {
				t.Fatal(err)
			}
			healed := time.Now()
			var recovered time.Duration
			for i := 0; ; i++ {
				err := ops[1].f() // the read of k, written before the outage
				if err == store.ErrNotFound {
					var n int
					qerr := admin(t).QueryRow(context.Background(), "SELECT count(*) FROM "+table{s.Options().Database, store.DefaultTable}.ident()).Scan(&n)
					t.Fatalf("read %s after the heal: k, written before the outage, is not found (the table holds %d records, %v)", time.Since(healed), n, qerr)
				}
				if err == nil {
					recovered = time.Since(healed)
					break
				}
				if time.Since(healed) > 3*time.Second || i > 1000 {
					t.Fatalf("no call works 3 s after the heal: %v", err)
				}
			}
			if recovered > time.Second {
				t.Fatalf("the first call that worked ended %s after the heal, want ≤ 1s", recovered)
			}
			for i := range 20 {
				op := ops[i%len(ops)]
				if err := op.f(); err != nil {
					t.Fatalf("%s after the recovery: %v", op.name, err)
				}
			}
			t.Logf("%s for %s: %d calls failed, the slowest in %s (deadline %s); working again %s after the heal",
				mode, outage, calls, worst.Round(time.Millisecond), timeout, recovered.Round(time.Millisecond))
		})
	}
}
