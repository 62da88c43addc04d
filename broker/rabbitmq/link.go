package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/logger"
)

// Reconnection back-off: the first attempt after a loss is immediate, then the pause
// doubles from reconnectMin up to reconnectMax, each with up to 25 % jitter.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 2 * time.Second
	heartbeat    = 10 * time.Second
)

// link is one AMQP connection that is re-established whenever it is lost, until its
// context ends. A broker has two: one to publish on, one to consume on, so that the
// server's flow control of publishers never stalls consumers.
type link struct {
	role string // "publish" or "subscribe"
	cfg  *config
	name string // the connection name the server shows

	mu      sync.Mutex
	conn    *amqp.Connection // nil while lost
	changed chan struct{}    // closed, and replaced, whenever conn changes
	lastErr error            // why the connection was lost, or the last dial error
	blocked atomic.Pointer[string]
}

func newLink(role, id string, cfg *config) *link {
	return &link{role: role, cfg: cfg, name: "micro " + role + " " + id, changed: make(chan struct{})}
}

// dial opens a connection to the first of the configured servers that accepts one, with
// ctx ending the attempt, and returns it with the channels that report its loss and the
// server's flow control.
func (l *link) dial(ctx context.Context) (*amqp.Connection, chan *amqp.Error, chan amqp.Blocking, error) {
	var errs []error
	for _, u := range l.cfg.urls {
		conn, err := amqp.DialConfig(u, amqp.Config{
			Heartbeat:       heartbeat,
			TLSClientConfig: tlsConfig(l.cfg.opts.TLSConfig),
			Properties:      amqp.Table{"connection_name": l.name, "product": "micro broker/rabbitmq"},
			Dial:            dialer(ctx, l.cfg.timeout),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", redact(u), err))
			continue
		}
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
		return conn, closed, blocked, nil
	}
	return nil, nil, nil, errors.Join(errs...)
}

// dialer returns the function amqp091 dials with: bounded by timeout and by ctx, which
// Disconnect cancels; the deadline also bounds the handshake (amqp091 clears it after).
func dialer(ctx context.Context, timeout time.Duration) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	return c.Clone() // amqp091 sets ServerName on it
}

// set records the connection (nil: lost) and wakes whoever waits for a change.
func (l *link) set(conn *amqp.Connection, err error) {
	l.mu.Lock()
	l.conn = conn
	if err != nil {
		l.lastErr = err
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.blocked.Store(nil)
}

// state returns the current connection (nil while lost), a channel closed at its next
// change, and the last error.
func (l *link) state() (*amqp.Connection, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn, l.changed, l.lastErr
}

// wait returns an open connection, waiting for one until ctx or stop ends.
func (l *link) wait(ctx context.Context, stop <-chan struct{}) (*amqp.Connection, error) {
	for {
		conn, changed, lastErr := l.state()
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		// a closed connection not yet replaced: its supervisor is about to notice
		select {
		case <-changed:
		case <-stop:
			return nil, broker.ErrNotConnected
		case <-ctx.Done():
			return nil, unavailable(ctx.Err(), lastErr)
		}
	}
}

// unavailable is the error of an operation that found no connection before its deadline.
func unavailable(ctxErr, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("%w (%w; connection lost: %v)", ErrUnavailable, ctxErr, lastErr)
	}
	return fmt.Errorf("%w (%w)", ErrUnavailable, ctxErr)
}

// supervise watches conn and, when it is lost, dials again with back-off until it has a
// connection or ctx ends; then it closes the connection it holds and returns.
func (l *link) supervise(ctx context.Context, conn *amqp.Connection, closed chan *amqp.Error, blocked chan amqp.Blocking) {
	log := l.cfg.opts.Logger
	for {
		lost := l.watch(ctx, conn, closed, blocked)
		if !lost {
			_ = conn.CloseDeadline(time.Now().Add(l.cfg.timeout))
			l.set(nil, nil)
			return
		}
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				t := time.NewTimer(backoff(attempt))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			} else if ctx.Err() != nil {
				return
			}
			var err error
			conn, closed, blocked, err = l.dial(ctx)
			if err == nil {
				l.set(conn, nil)
				if log != nil {
					log.Logf(logger.InfoLevel, "broker/rabbitmq: %s connection re-established after %d attempts", l.role, attempt+1)
				}
				break
			}
			l.mu.Lock()
			l.lastErr = err
			l.mu.Unlock()
		}
	}
}

// watch returns true when conn is lost, false when ctx ends first.
func (l *link) watch(ctx context.Context, conn *amqp.Connection, closed chan *amqp.Error, blocked chan amqp.Blocking) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case b, ok := <-blocked:
			if !ok {
				blocked = nil
				continue
			}
			if b.Active {
				reason := b.Reason
				l.blocked.Store(&reason)
			} else {
				l.blocked.Store(nil)
			}
		case e, ok := <-closed:
			var err error = amqp.ErrClosed
			if ok && e != nil {
				err = e
			}
			l.set(nil, err)
			if log := l.cfg.opts.Logger; log != nil {
				log.Logf(logger.WarnLevel, "broker/rabbitmq: %s connection lost, reconnecting: %v", l.role, err)
			}
			return true
		}
	}
}

// backoff is the pause before reconnection attempt n (n ≥ 1).
func backoff(n int) time.Duration {
	d := reconnectMin << min(n-1, 8)
	if d > reconnectMax {
		d = reconnectMax
	}
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}
