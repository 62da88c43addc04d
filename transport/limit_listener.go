package transport

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// limitListener is a net.Listener that keeps at most max of the connections it accepted
// open at once (Limits.MaxConns). A connection accepted while max are open is closed at
// once, before a byte is read from it, and Accept goes on to the next: the peer sees its
// connection closed (FIN, or a reset if it had sent something) instead of waiting in
// the backlog. A connection counts from its accept until its first Close. It is safe for
// concurrent use.
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64 // connections accepted and not yet closed
}

// newLimitListener caps ln at max open connections; max < 0 leaves ln uncapped.
func newLimitListener(ln net.Listener, max int) net.Listener {
	if max < 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: int64(max)}
}

// Accept returns the next connection within the cap, closing those over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			_ = c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

// limitConn is a connection counted by a limitListener until its first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// Close closes the connection; the first Close frees its place under the cap.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

var errNoHalfClose = errors.New("transport: connection cannot half-close")

// CloseWrite shuts the write side of the connection when it has one (a TCP or Unix
// connection does), as the listener's Drain asks of every open connection.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}
