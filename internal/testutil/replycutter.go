package testutil

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// ReplyCutter is a TCP proxy to a server that, once armed, forwards the next chunk the
// client sends that contains a marker, swallows the server's answer to it and closes the
// client's connection: the request ran, and the client never learns it did (a lost
// reply). It serves request-reply protocols (Redis, PostgreSQL) whose client waits for
// each answer before it sends more on a connection.
type ReplyCutter struct {
	ln     net.Listener
	target string
	marker []byte
	armed  atomic.Bool
	cut    atomic.Int32
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// StartReplyCutter starts a proxy to target (host:port) on loopback, closed at the end of
// the test; it cuts the reply to a chunk containing marker once armed.
func StartReplyCutter(t testing.TB, target string, marker []byte) *ReplyCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ReplyCutter{ln: ln, target: target, marker: marker}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's address.
func (p *ReplyCutter) Addr() string { return p.ln.Addr().String() }

// Arm makes the proxy cut the reply to the next chunk that contains the marker.
func (p *ReplyCutter) Arm() { p.armed.Store(true) }

// Cut returns how many replies the proxy has swallowed.
func (p *ReplyCutter) Cut() int { return int(p.cut.Load()) }

func (p *ReplyCutter) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *ReplyCutter) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *ReplyCutter) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c)
		p.track(s)
		p.wg.Add(2)
		var swallow atomic.Bool // the next reply on this connection is dropped
		go func() {             // client -> server
			defer p.wg.Done()
			defer s.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if bytes.Contains(buf[:n], p.marker) && p.armed.CompareAndSwap(true, false) {
						swallow.Store(true) // before the server can answer
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() { // server -> client, until a reply is to be swallowed
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && swallow.Load() {
					p.cut.Add(1) // the reply to the marked command: dropped, and the client cut off
					return
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
