// Package connmux serves several wire protocols on one listener: it reads the first bytes
// of each connection and hands the connection, bytes included, to the protocol that
// recognises them; the fallback (HTTP) takes the rest.
//
// The HTTP transport serves HTTP/1.1 and HTTP/2 on its listener directly; a further
// protocol (micro's native binary protocol) is added beside it by routing the listener
// through a Mux:
//
//	m := connmux.New(ln, time.Second)
//	native := m.Match(func(prefix []byte) bool { return bytes.HasPrefix(prefix, magic) }, len(magic))
//	go serveNative(native)
//	go http.Serve(m.Fallback(), handler)
//	go m.Serve()
package connmux

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by Accept on a closed Mux.
var ErrClosed = errors.New("connmux: closed")

// Mux routes the connections of one listener by their first bytes.
type Mux struct {
	ln      net.Listener
	timeout time.Duration

	mu       sync.Mutex
	routes   []*route
	fallback *Listener
	pending  map[net.Conn]struct{}
	closed   chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

type route struct {
	match func([]byte) bool
	n     int
	l     *Listener
}

// New returns a Mux over ln. A connection that sends too few bytes to decide within
// timeout goes to the fallback.
func New(ln net.Listener, timeout time.Duration) *Mux {
	m := &Mux{ln: ln, timeout: timeout, pending: make(map[net.Conn]struct{}), closed: make(chan struct{})}
	m.fallback = m.newListener()
	return m
}

func (m *Mux) newListener() *Listener {
	return &Listener{conns: make(chan net.Conn), closed: m.closed, addr: m.ln.Addr()}
}

// Match returns a listener of the connections whose first n bytes satisfy match.
// Register every route before Serve.
func (m *Mux) Match(match func(prefix []byte) bool, n int) net.Listener {
	l := m.newListener()
	m.mu.Lock()
	m.routes = append(m.routes, &route{match: match, n: n, l: l})
	m.mu.Unlock()
	return l
}

// Fallback returns the listener of the connections no route matched.
func (m *Mux) Fallback() net.Listener { return m.fallback }

// Serve accepts connections until Close.
func (m *Mux) Serve() error {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return nil
			default:
			}
			return err
		}
		m.mu.Lock()
		select {
		case <-m.closed:
			m.mu.Unlock()
			_ = c.Close()
			return nil
		default:
		}
		m.pending[c] = struct{}{}
		m.wg.Add(1) // under mu, so never concurrent with Close's Wait
		m.mu.Unlock()
		go m.route(c)
	}
}

// route reads the first bytes of c and delivers it.
func (m *Mux) route(c net.Conn) {
	defer m.wg.Done()
	m.mu.Lock()
	routes := m.routes
	m.mu.Unlock()
	longest := 0
	for _, r := range routes {
		longest = max(longest, r.n)
	}
	prefix := make([]byte, longest)
	_ = c.SetReadDeadline(time.Now().Add(m.timeout))
	k, _ := io.ReadFull(c, prefix)
	_ = c.SetReadDeadline(time.Time{})
	prefix = prefix[:k]
	m.mu.Lock()
	delete(m.pending, c)
	m.mu.Unlock()
	target := m.fallback
	for _, r := range routes {
		if len(prefix) >= r.n && r.match(prefix[:r.n]) {
			target = r.l
			break
		}
	}
	pc := &prefixConn{Conn: c, prefix: prefix}
	select {
	case target.conns <- pc:
	case <-m.closed:
		_ = c.Close()
	}
}

// Close closes the listener and every connection still being routed; connections
// already handed to a protocol belong to it.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		m.mu.Lock()
		close(m.closed)
		for c := range m.pending {
			_ = c.Close()
		}
		m.mu.Unlock()
		err = m.ln.Close()
		m.wg.Wait()
	})
	return err
}

// Listener is the net.Listener of one route.
type Listener struct {
	conns  chan net.Conn
	closed chan struct{}
	addr   net.Addr
}

// Accept returns the next connection of the route.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, ErrClosed
	}
}

// Close does nothing: close the Mux.
func (l *Listener) Close() error { return nil }

// Addr returns the address of the Mux's listener.
func (l *Listener) Addr() net.Addr { return l.addr }

// prefixConn replays the bytes read to route a connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite shuts the write side of the connection when it can (TCP).
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
