// Package nats is a broker.Broker over core NATS (no JetStream): Publish sends a NATS
// message on the topic's subject, Subscribe makes a NATS subscription, and Queue makes a
// NATS queue subscription, so that each message goes to one member of the group.
//
// # Delivery promise
//
// Delivery is at most once. Publish returns once the message is in the connection's
// write buffer, before the server has it, and never returns a subscriber's error; the
// server delivers each message to the subscriptions it has at that moment. A message is
// lost when no subscription is there; when a subscriber's connection is down (nats.go
// reconnects by itself and subscribes again); when the publisher's connection is down
// and does not come back (while nats.go reconnects, Publish buffers up to the
// nats.Options ReconnectBufSize, 8 MiB by default, sends it once reconnected, and returns
// an error beyond it); when the server gives up on a connection; and when a
// subscription's handler falls behind by more than its pending limits (see "Slow
// consumers"). Event.Ack does nothing and returns nil, with or without
// broker.DisableAutoAck: there is nothing to acknowledge in core NATS.
//
// Order is kept per publisher and subscriber: if one Publish call of a broker instance
// returns before another begins, every subscription that receives both messages
// receives them in that order (the connection writes them in order, the server forwards
// in order, and nats.go hands a subscription's messages to its handler one at a time, in
// order, from one goroutine per subscription). A queue-group member receives its share
// of the messages in order too. Messages of different publishers are not ordered.
//
// # Handlers
//
// A subscription's handler is never called concurrently with itself; different
// subscriptions run in parallel. A handler that returns an error, or panics (the panic
// is recovered), does not stop the subscription and the message is not redelivered. The
// failed Event is passed to the broker.ErrorHandler option when it is set (Event.Error
// returns the handler's error), and logged with Options.Logger at error level otherwise:
// every failure is reported, never dropped silently. The same goes for a message that
// cannot be decoded (Event.Error matches ErrMalformedMessage; its Message holds the raw
// payload and no headers): it is not passed to the handler, and the subscription goes
// on. ErrorHandler is called from the subscriptions' goroutines and from nats.go's
// callback goroutine, so it must be safe for concurrent use.
//
// # Slow consumers
//
// Each subscription holds the messages received for it while its handler is busy, up to
// its pending limits (PendingLimits; DefaultPendingMsgs messages and DefaultPendingBytes
// bytes by default), so a slow handler cannot make memory grow without bound. nats.go
// drops the messages that arrive beyond the limits. The broker counts them: the value
// NewNatsBroker returns and the Subscribers it returns implement DropCounter. It reports
// them too, as Events with an empty Message whose Error matches ErrSlowConsumer, given to
// the ErrorHandler when one is set and logged at warning level otherwise: at the first
// drop, then at most once per second while drops continue, and at Unsubscribe or
// Disconnect for drops not reported yet. The publisher gets no backpressure and no error.
//
// # Wire format
//
// A message's headers are NATS message headers and its body is the NATS payload, as is:
// no JSON or base64 (Options.Codec is not used), so other NATS clients can read and write
// the messages. NATS cannot carry every header unchanged (names must be printable ASCII
// without some punctuation; nats.go trims white space around values and replaces CR and
// LF), so a header whose name or value NATS would change travels in the EscapedHeader
// header instead, percent-encoded as in a URL query ("name=value&name2=value2"), and is
// restored on receipt: headers arrive exactly as they were published. A NATS header
// given several values (only other publishers do that) reaches the handler as one value,
// joined with ", ". A message's body and headers together must fit in the server's max
// payload (1 MiB unless max_payload is raised in the server's configuration); Publish
// returns an error matching ErrTooLarge otherwise.
//
// Topics are NATS subjects: dot-separated tokens. Subscribe accepts NATS wildcards ("*"
// for one token, a last token ">" for one or more), and Event.Topic is then the subject
// the message was published to; Publish accepts only literal subjects. Invalid topics
// return an error matching ErrInvalidTopic.
//
// # Connection
//
// Connect makes one NATS connection to broker.Addrs (default DefaultAddress), shared by
// every Publish and subscription of the instance, with the nats.Options of Options.
// Publish and Subscribe return an error matching broker.ErrNotConnected before Connect,
// after Disconnect, and once nats.go has given up reconnecting. Subscribe returns once
// the server has confirmed the subscription, so a message published after it returns,
// from any connection to the same server, reaches it (in a NATS cluster, the other
// servers learn of it a moment later). Disconnect unsubscribes everything, closes the
// connection (or drains it, with DrainConnection) and waits for running handlers to
// return (at most 10 s); do not call it from a handler. Connect after Disconnect makes a
// new connection; Init returns broker.ErrConnected between Connect and Disconnect.
//
// The broker and its Subscribers are safe for concurrent use.
package nats

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/logger"
)

// The errors of the broker, matched with errors.Is (along with broker.ErrNotConnected,
// broker.ErrMissingTopic, broker.ErrMissingHandler and broker.ErrConnected).
var (
	// ErrInvalidTopic is returned by Publish and Subscribe for a topic (or queue name)
	// NATS does not accept; see the package documentation.
	ErrInvalidTopic = errors.New("nats broker: invalid topic")
	// ErrTooLarge is returned by Publish for a message larger than the server's max
	// payload.
	ErrTooLarge = errors.New("nats broker: message exceeds the NATS max payload")
	// ErrMalformedMessage is the Event.Error of a received message that cannot be
	// decoded; see the package documentation.
	ErrMalformedMessage = errors.New("nats broker: malformed message")
	// ErrSlowConsumer is the Event.Error of a report of dropped messages; see the package
	// documentation.
	ErrSlowConsumer = errors.New("nats broker: slow consumer, messages dropped")
)

// DropCounter is implemented by the broker.Broker NewNatsBroker returns and by the
// broker.Subscribers it returns. Dropped returns how many messages nats.go dropped
// because a subscription's handler did not keep up (see the package documentation):
// for a Subscriber, its own drops until it ended; for the broker, those of all its
// subscriptions, present and past, since it was made.
type DropCounter interface {
	Dropped() uint64
}

const (
	// handlerWait bounds how long Disconnect waits for running handlers.
	handlerWait = 10 * time.Second
	// reportInterval is the least time between two reports of one subscription's drops.
	reportInterval = time.Second
	// defaultFlushTimeout bounds Subscribe's wait for the server when the nats.Options
	// give no Timeout.
	defaultFlushTimeout = 2 * time.Second
)

type natsBroker struct {
	connMu sync.Mutex                 // serialises Connect and Disconnect
	conn   atomic.Pointer[connection] // nil when not connected; stored under mu

	mu       sync.RWMutex
	opts     broker.Options
	finished uint64 // drops of the subscriptions that have ended
}

// connection is one NATS connection and the subscriptions made on it.
type connection struct {
	b       *natsBroker
	nc      *nats.Conn
	cfg     config
	opts    broker.Options // as they were at Connect
	log     logger.Logger
	closing atomic.Bool                        // set when the broker closes the connection
	closed  chan struct{}                      // closed once nats.go has closed the connection
	subs    map[*nats.Subscription]*subscriber // under b.mu
}

// NewNatsBroker returns a broker over NATS, not connected (see the package
// documentation). Options.Codec and Options.Registry are not used.
func NewNatsBroker(opts ...broker.Option) broker.Broker {
	return &natsBroker{opts: *broker.NewOptions(opts...)}
}

// NewBroker is NewNatsBroker.
func NewBroker(opts ...broker.Option) broker.Broker { return NewNatsBroker(opts...) }

// Init applies opts. It returns broker.ErrConnected between Connect and Disconnect.
func (b *natsBroker) Init(opts ...broker.Option) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn.Load() != nil {
		return broker.ErrConnected
	}
	for _, o := range opts {
		o(&b.opts)
	}
	return nil
}

// Options returns a copy of the broker's options.
func (b *natsBroker) Options() broker.Options {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.opts
}

// Address returns the URL of the server the broker is connected to (credentials
// redacted), or else the first one it would connect to.
func (b *natsBroker) Address() string {
	if c := b.conn.Load(); c != nil {
		if u := c.nc.ConnectedUrlRedacted(); u != "" {
			return u
		}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return newConfig(b.opts).nopts.Servers[0]
}

// String returns "nats".
func (b *natsBroker) String() string { return "nats" }

// Connect connects to NATS. Connecting a connected broker does nothing, unless nats.go
// gave up reconnecting: then its subscriptions are ended and a new connection is made.
func (b *natsBroker) Connect() error {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if c := b.conn.Load(); c != nil {
		if !c.nc.IsClosed() {
			return nil
		}
		_ = b.shut(c) // already closed: nothing is left to wait for but the callbacks
	}
	b.mu.RLock()
	opts := b.opts
	b.mu.RUnlock()
	c, err := dial(b, opts)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.conn.Store(c)
	b.mu.Unlock()
	return nil
}

// Disconnect ends every subscription, closes the connection (drains it, with
// DrainConnection) and waits for running handlers to return, at most 10 s. It returns
// an error when handlers were still running then, or a drain did not finish in time.
// Disconnecting a disconnected broker does nothing.
func (b *natsBroker) Disconnect() error {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	c := b.conn.Load()
	if c == nil {
		return nil
	}
	return b.shut(c)
}

// shut ends c's subscriptions, closes c and waits for its handlers and callbacks.
func (b *natsBroker) shut(c *connection) error {
	b.mu.Lock()
	if b.conn.Load() == c {
		b.conn.Store(nil)
	}
	subs := make([]*subscriber, 0, len(c.subs))
	for _, s := range c.subs {
		s.endLocked()
		subs = append(subs, s)
	}
	clear(c.subs)
	b.mu.Unlock()
	c.closing.Store(true)
	for _, s := range subs {
		s.release()
	}

	var errs []error
	if c.cfg.drain && !c.nc.IsClosed() {
		if err := c.nc.Drain(); err != nil {
			c.nc.Close()
		}
		drainBy := time.NewTimer(c.cfg.nopts.DrainTimeout + time.Second)
		select {
		case <-c.closed:
		case <-drainBy.C:
			errs = append(errs, fmt.Errorf("nats broker: disconnect: the drain did not finish within %s", c.cfg.nopts.DrainTimeout))
			c.nc.Close()
		}
		drainBy.Stop()
	} else {
		c.nc.Close()
	}
	deadline := time.NewTimer(handlerWait)
	defer deadline.Stop()
	running := 0
	for _, s := range subs {
		select {
		case <-s.done:
		case <-deadline.C:
			running++
			deadline.Reset(0) // the others get no more time
		}
	}
	if running > 0 {
		errs = append(errs, fmt.Errorf("nats broker: disconnect: %d subscriptions' handlers still running after %s", running, handlerWait))
	}
	select {
	case <-c.closed:
	case <-deadline.C:
	}
	for _, s := range subs {
		s.reportDrops(true)
	}
	return errors.Join(errs...)
}

// dial connects with the broker's options.
func dial(b *natsBroker, opts broker.Options) (*connection, error) {
	cfg := newConfig(opts)
	c := &connection{
		b:      b,
		cfg:    cfg,
		opts:   opts,
		log:    logger.LoggerOrDefault(opts.Logger),
		closed: make(chan struct{}),
		subs:   make(map[*nats.Subscription]*subscriber),
	}
	nopts := cfg.nopts
	user := cfg.nopts // the callbacks given by the user
	quiet := nopts.NoCallbacksAfterClientClose
	nopts.NoCallbacksAfterClientClose = false // the broker needs ClosedCB
	callUser := func() bool { return !quiet || !c.closing.Load() }
	var closeOnce sync.Once
	nopts.ClosedCB = func(nc *nats.Conn) {
		closeOnce.Do(func() { close(c.closed) })
		if !c.closing.Load() {
			c.log.Logf(logger.ErrorLevel, "nats broker: connection to %s closed (%v); Connect again to make a new one", nc.ConnectedUrlRedacted(), nc.LastError())
		}
		if user.ClosedCB != nil && callUser() {
			user.ClosedCB(nc)
		}
	}
	nopts.DisconnectedErrCB = func(nc *nats.Conn, err error) {
		if !c.closing.Load() {
			c.log.Logf(logger.WarnLevel, "nats broker: disconnected (%v): reconnecting; messages for its subscriptions are lost meanwhile", err)
		}
		if !callUser() {
			return
		}
		if user.DisconnectedErrCB != nil {
			user.DisconnectedErrCB(nc, err)
		} else if user.DisconnectedCB != nil {
			user.DisconnectedCB(nc)
		}
	}
	nopts.ReconnectedCB = func(nc *nats.Conn) {
		c.log.Logf(logger.InfoLevel, "nats broker: reconnected to %s", nc.ConnectedUrlRedacted())
		if user.ReconnectedCB != nil && callUser() {
			user.ReconnectedCB(nc)
		}
	}
	nopts.AsyncErrorCB = func(nc *nats.Conn, ns *nats.Subscription, err error) {
		c.asyncError(ns, err)
		if user.AsyncErrorCB != nil && callUser() {
			user.AsyncErrorCB(nc, ns, err)
		}
	}
	nc, err := nopts.Connect()
	if err != nil {
		return nil, fmt.Errorf("nats broker: connect to %v: %w", nopts.Servers, err)
	}
	c.nc = nc
	return c, nil
}

// asyncError handles an error nats.go reports for the connection or a subscription.
func (c *connection) asyncError(ns *nats.Subscription, err error) {
	var s *subscriber
	if ns != nil {
		c.b.mu.RLock()
		s = c.subs[ns]
		c.b.mu.RUnlock()
	}
	switch {
	case s != nil && errors.Is(err, nats.ErrSlowConsumer):
		s.slow()
	case s != nil && errors.Is(err, nats.ErrBadHeaderMsg):
		// reported with the message itself, by the subscription
	case ns != nil:
		c.log.Logf(logger.WarnLevel, "nats broker: subscription to %q: %v", ns.Subject, err)
	default:
		c.log.Logf(logger.WarnLevel, "nats broker: %v", err)
	}
}

// report passes a failed or dropped delivery to the ErrorHandler, or logs it: the
// handler's error after "nats broker: topic …: handler failed:", the broker's own errors
// (which name the topic) as they are.
func (c *connection) report(ev *event, level logger.Level, handlerErr bool) {
	if eh := c.opts.ErrorHandler; eh != nil {
		_ = eh(ev)
		return
	}
	if handlerErr {
		c.log.Logf(level, "nats broker: topic %q: handler failed: %v", ev.topic, ev.err)
		return
	}
	c.log.Log(level, ev.err.Error())
}

// Publish sends msg on topic, as the package documentation describes. A nil msg is sent
// as an empty message. msg may be reused once Publish returns. If the PublishContext is
// already done, Publish returns its error and sends nothing.
func (b *natsBroker) Publish(topic string, msg *broker.Message, opts ...broker.PublishOption) error {
	if err := checkTopic(topic, false); err != nil {
		return err
	}
	if len(opts) > 0 {
		var po broker.PublishOptions
		for _, o := range opts {
			o(&po)
		}
		if po.Context != nil {
			if err := po.Context.Err(); err != nil {
				return err
			}
		}
	}
	c := b.conn.Load()
	if c == nil {
		return broker.ErrNotConnected
	}
	if err := c.nc.PublishMsg(encode(topic, msg)); err != nil {
		return c.publishError(topic, msg, err)
	}
	return nil
}

// publishError explains an error of nats.go's PublishMsg.
func (c *connection) publishError(topic string, msg *broker.Message, err error) error {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return fmt.Errorf("%w: publish to %q: %w", broker.ErrNotConnected, topic, err)
	case errors.Is(err, nats.ErrMaxPayload):
		size := 0
		if msg != nil {
			size = len(msg.Body)
			for k, v := range msg.Header {
				size += len(k) + len(v) + 4
			}
		}
		return fmt.Errorf("%w: publish to %q: about %d bytes of body and headers, the server's max payload is %d: %w",
			ErrTooLarge, topic, size, c.nc.MaxPayload(), err)
	}
	return fmt.Errorf("nats broker: publish to %q: %w", topic, err)
}

// Subscribe subscribes h to topic (a queue subscription with broker.Queue), as the
// package documentation describes. It returns broker.ErrMissingTopic,
// broker.ErrMissingHandler or ErrInvalidTopic for bad arguments, an error matching
// broker.ErrNotConnected when not connected, the SubscribeContext's error if it is
// already done, and an error if the server does not confirm the subscription within the
// nats.Options Timeout. When the SubscribeContext ends later, the subscription is
// unsubscribed. The Subscriber returned implements DropCounter.
func (b *natsBroker) Subscribe(topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := checkTopic(topic, true); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, broker.ErrMissingHandler
	}
	so := broker.NewSubscribeOptions(opts...)
	if err := checkQueue(so.Queue); err != nil {
		return nil, err
	}
	ctx := so.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := b.conn.Load()
	if c == nil {
		return nil, broker.ErrNotConnected
	}
	s := &subscriber{b: b, c: c, topic: topic, opts: so, handler: h, done: make(chan struct{})}
	var (
		ns  *nats.Subscription
		err error
	)
	if so.Queue == "" {
		ns, err = c.nc.Subscribe(topic, s.deliver)
	} else {
		ns, err = c.nc.QueueSubscribe(topic, so.Queue, s.deliver)
	}
	if err != nil {
		return nil, c.subscribeError(topic, err)
	}
	s.ns = ns
	ns.SetClosedHandler(func(string) { close(s.done) })
	// fails if the subscription closed already, maybe before the closed handler was set
	if err := ns.SetPendingLimits(c.cfg.pending.msgs, c.pendingBytes()); err != nil {
		_ = ns.Unsubscribe()
		return nil, c.subscribeError(topic, err)
	}
	timeout := c.cfg.nopts.Timeout
	if timeout <= 0 {
		timeout = defaultFlushTimeout
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		_ = ns.Unsubscribe()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.subscribeError(topic, fmt.Errorf("the server did not confirm the subscription within %s: %w", timeout, err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn.Load() != c {
		_ = ns.Unsubscribe()
		return nil, fmt.Errorf("%w: subscribe to %q: disconnected meanwhile", broker.ErrNotConnected, topic)
	}
	c.subs[ns] = s
	if ctx.Done() != nil {
		// set under b.mu: Unsubscribe and Disconnect read it after ending s under b.mu
		s.stop = context.AfterFunc(ctx, func() { _ = s.Unsubscribe() })
	}
	return s, nil
}

// pendingBytes returns the pending bytes limit of c's subscriptions: the configured one,
// raised to the server's max payload so that any one message fits.
func (c *connection) pendingBytes() int {
	return max(c.cfg.pending.bytes, int(c.nc.MaxPayload()))
}

// subscribeError explains an error of a nats.go subscription call.
func (c *connection) subscribeError(topic string, err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("%w: subscribe to %q: %w", broker.ErrNotConnected, topic, err)
	}
	return fmt.Errorf("nats broker: subscribe to %q: %w", topic, err)
}

// Dropped returns the drops of every subscription the broker has had; see DropCounter.
func (b *natsBroker) Dropped() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := b.finished
	if c := b.conn.Load(); c != nil {
		for _, s := range c.subs {
			n += s.droppedLocked()
		}
	}
	return n
}

// subscriber is one subscription.
type subscriber struct {
	b       *natsBroker
	c       *connection
	topic   string
	opts    broker.SubscribeOptions
	handler broker.Handler
	ns      *nats.Subscription
	done    chan struct{} // closed when nats.go's delivery goroutine has returned
	stop    func() bool   // releases the context.AfterFunc; nil without one

	ended bool          // under b.mu
	final uint64        // drops when it ended, under b.mu
	seen  atomic.Uint64 // the last drop count read from nats.go

	repMu      sync.Mutex
	reported   uint64      // drops reported so far
	lastReport time.Time   // of the last report
	timer      *time.Timer // a report to come, if any
	repDone    bool        // no more reports but the last
}

// Options returns the options the subscription was made with.
func (s *subscriber) Options() broker.SubscribeOptions { return s.opts }

// Topic returns the subscribed topic.
func (s *subscriber) Topic() string { return s.topic }

// Unsubscribe ends the subscription: no handler call begins after it returns, though
// one under way may finish; messages received but not yet handled are discarded. It is
// idempotent, safe to call from the subscription's own handler, and returns nil unless
// nats.go fails to send the unsubscription.
func (s *subscriber) Unsubscribe() error {
	s.b.mu.Lock()
	if s.ended {
		s.b.mu.Unlock()
		return nil
	}
	s.endLocked()
	delete(s.c.subs, s.ns)
	s.b.mu.Unlock()
	s.release()
	err := s.ns.Unsubscribe()
	s.reportDrops(true)
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionDraining) &&
		!errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("nats broker: unsubscribe from %q: %w", s.topic, err)
	}
	return nil
}

// Dropped returns the messages dropped because the handler did not keep up; see
// DropCounter.
func (s *subscriber) Dropped() uint64 {
	s.b.mu.RLock()
	defer s.b.mu.RUnlock()
	return s.droppedLocked()
}

// droppedLocked returns the drop count; b.mu is held.
func (s *subscriber) droppedLocked() uint64 {
	if s.ended {
		return s.final
	}
	return s.current()
}

// current reads the drop count from nats.go, or the last one read once nats.go has
// closed the subscription.
func (s *subscriber) current() uint64 {
	if n, err := s.ns.Dropped(); err == nil && n >= 0 {
		for { // keep the largest: concurrent readers may store out of order
			old := s.seen.Load()
			if uint64(n) <= old || s.seen.CompareAndSwap(old, uint64(n)) {
				break
			}
		}
	}
	return s.seen.Load()
}

// endLocked marks s ended and moves its drops to the broker's; b.mu is held.
func (s *subscriber) endLocked() {
	s.ended = true
	s.final = s.current()
	s.b.finished += s.final
}

// release lets go of the context.AfterFunc and of any report timer. s has ended.
func (s *subscriber) release() {
	if s.stop != nil {
		s.stop()
	}
	s.repMu.Lock()
	s.repDone = true
	if s.timer != nil && s.timer.Stop() {
		s.timer = nil
	}
	s.repMu.Unlock()
}

// slow is called when nats.go starts dropping s's messages: it reports the drops now, or
// once reportInterval has passed since the last report.
func (s *subscriber) slow() {
	s.repMu.Lock()
	if s.repDone || s.timer != nil {
		s.repMu.Unlock()
		return
	}
	if wait := reportInterval - time.Since(s.lastReport); wait > 0 {
		s.timer = time.AfterFunc(wait, func() {
			s.repMu.Lock()
			s.timer = nil
			s.repMu.Unlock()
			s.reportDrops(false)
		})
		s.repMu.Unlock()
		return
	}
	s.repMu.Unlock()
	s.reportDrops(false)
}

// reportDrops reports the drops not reported yet, if any; last says s has ended.
func (s *subscriber) reportDrops(last bool) {
	s.b.mu.RLock()
	total := s.droppedLocked()
	s.b.mu.RUnlock()
	s.repMu.Lock()
	if total <= s.reported || (s.repDone && !last) {
		s.repMu.Unlock()
		return
	}
	n := total - s.reported
	s.reported, s.lastReport = total, time.Now()
	s.repMu.Unlock()

	group := ""
	if s.opts.Queue != "" {
		group = fmt.Sprintf(" (queue %q)", s.opts.Queue)
	}
	ev := &event{
		topic: s.topic,
		msg:   broker.Message{Header: map[string]string{}},
		err: fmt.Errorf("%w: subscription to %q%s: %d more dropped, %d in all: its handler does not keep up (pending limits %d messages, %d bytes): %w",
			ErrSlowConsumer, s.topic, group, n, total, s.c.cfg.pending.msgs, s.c.pendingBytes(), nats.ErrSlowConsumer),
	}
	s.c.report(ev, logger.WarnLevel, false)
}

// deliver is nats.go's callback for s: it decodes m and calls the handler.
func (s *subscriber) deliver(m *nats.Msg) {
	ev := &event{topic: m.Subject}
	h, err := decodeHeader(m.Header, headerBytes(m))
	if err != nil {
		ev.msg = broker.Message{Header: map[string]string{}, Body: m.Data}
		ev.err = fmt.Errorf("%w (topic %q, %d bytes of payload): not handled", err, m.Subject, len(m.Data))
		s.c.report(ev, logger.ErrorLevel, false)
		return
	}
	ev.msg = broker.Message{Header: h, Body: m.Data}
	if err := s.call(ev); err != nil {
		ev.err = err
		s.c.report(ev, logger.ErrorLevel, true)
	}
}

// call runs the handler, turning a panic into an error logged with its stack.
func (s *subscriber) call(ev *event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.c.log.Logf(logger.ErrorLevel, "nats broker: handler of topic %q panicked: %v\n%s", ev.topic, r, debug.Stack())
			err = fmt.Errorf("nats broker: handler of topic %q panicked: %v", ev.topic, r)
		}
	}()
	return s.handler(ev)
}

// event is one delivery; its message belongs to the handler.
type event struct {
	topic string
	msg   broker.Message
	err   error
}

// Topic returns the subject the message was published to.
func (e *event) Topic() string { return e.topic }

// Message returns the delivered message; it is the handler's to keep or change.
func (e *event) Message() *broker.Message { return &e.msg }

// Ack does nothing and returns nil: core NATS delivers at most once and has nothing to
// acknowledge, with or without DisableAutoAck.
func (e *event) Ack() error { return nil }

// Error returns why the delivery failed: the handler's error, a decoding error
// (ErrMalformedMessage) or a drop report (ErrSlowConsumer); nil otherwise.
func (e *event) Error() error { return e.err }
