package nats

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// boundedDialer bounds each connection attempt, dial and handshake together, by timeout;
// while the first connection is made, all its attempts together by connectBy.
type boundedDialer struct {
	timeout   time.Duration
	inner     nats.CustomDialer // the user's, if any
	connectBy atomic.Int64      // unix nanoseconds; 0 once the first connection is made
	lastErr   atomic.Value      // error of the last failed dial, for a clearer message
}

// Dial dials address and returns a connection whose deadlines never reach past the
// attempt's bound.
func (d *boundedDialer) Dial(network, address string) (net.Conn, error) {
	limit := time.Now().Add(d.timeout)
	if by := d.connectBy.Load(); by != 0 && time.Unix(0, by).Before(limit) {
		limit = time.Unix(0, by)
	}
	var (
		conn net.Conn
		err  error
	)
	if d.inner != nil {
		conn, err = d.inner.Dial(network, address)
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), limit)
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, network, address)
		cancel()
	}
	if err != nil {
		d.lastErr.Store(dialError{err})
		return nil, err
	}
	return &boundedConn{Conn: conn, limit: limit}, nil
}

type dialError struct{ err error }

// failure returns the error of the last failed dial, or nil.
func (d *boundedDialer) failure() error {
	e, _ := d.lastErr.Load().(dialError)
	return e.err
}

// SkipTLSHandshake passes the user dialer's choice on to nats.
func (d *boundedDialer) SkipTLSHandshake() bool {
	sd, ok := d.inner.(interface{ SkipTLSHandshake() bool })
	return ok && sd.SkipTLSHandshake()
}

// boundedConn cuts deadlines set during the handshake to the attempt's bound; nats clears
// them (zero) once connected.
type boundedConn struct {
	net.Conn
	limit time.Time
}

func (c *boundedConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && t.After(c.limit) {
		t = c.limit
	}
	return c.Conn.SetDeadline(t)
}
