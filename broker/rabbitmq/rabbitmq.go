// Package rabbitmq is a broker.Broker on a RabbitMQ server (AMQP 0-9-1, through
// github.com/rabbitmq/amqp091-go).
//
// # Messages and topics
//
// Every message is published to one exchange, a topic exchange named "micro" by default
// (ExchangeName, ExchangeType, DurableExchange), with the topic as its routing key; a
// subscription binds a queue to the exchange with its topic as the binding key, so
// topics may hold the topic exchange's wildcards ("orders.*", "orders.#"), and
// Event.Topic is the topic the message was published to. Message headers travel as AMQP
// headers whose values are strings, the body as the AMQP body, byte for byte; the codec
// of broker.Options is not used. Topics and header names are at most 255 bytes and the
// headers of one message must fit in one AMQP frame (128 KiB less 3 KiB with RabbitMQ's
// default frame size): Publish returns an error matching ErrMessageTooLarge otherwise,
// and nothing is sent.
//
// # Delivery promise
//
// Publish uses publisher confirms: it returns nil only once the server has taken the
// message, which for a durable queue and a persistent message (the default delivery
// mode, MessageDeliveryMode) means written to disk. It returns an error when the server
// refuses the message, when the connection is lost before the server confirmed it (the
// message may then have been delivered or not: publish it again if duplicates are
// acceptable), and when the PublishContext deadline, or Timeout (default 5 s) for a
// context without one, passes first. A message no queue is bound for is dropped by the
// server, and Publish still returns nil.
//
//   - A subscription without a queue (broadcast) gets an exclusive, auto-deleted queue of
//     its own, named by the server, which lives as long as the subscriber's connection:
//     at most once, while the subscriber is connected. Messages published while it
//     reconnects are not delivered to it.
//   - A queue group (broker.Queue(name)) shares one queue among its members, named
//     name + "@" + topic so that a group is per topic, as with the other brokers: each
//     message goes to one member. Delivery is at least once: a message is acknowledged
//     only after its handler returned nil (or, with broker.DisableAutoAck, when the
//     handler calls Event.Ack); a handler error, a panic in the handler, a crash of the
//     subscriber or a lost connection returns it to the queue, and it is delivered
//     again, to the same member or another. The queue outlives its members, so a group
//     whose members all crash loses nothing; it is not durable unless DurableQueue is
//     given, and then it, and the persistent messages in it, also survive a server
//     restart (with DurableExchange, its binding does too). A crash may cause at most
//     PrefetchCount duplicates per member: the messages it had handled but not yet
//     acknowledged. Nothing deletes a group's queue when its members unsubscribe; give
//     it an "x-expires" QueueArguments to have the server remove it once unused.
//
// A handler error returns the message to the queue by default (RequeueOnError): use
// NoRequeueOnError to drop it, or dead-letter it, instead. The ErrorHandler of
// broker.Options, when set, is called with the failed event first, and may Ack it to
// drop it. With broker.DisableAutoAck, a message whose handler returns nil without
// calling Ack stays unacknowledged, holding one of the PrefetchCount places, until the
// subscription's channel closes; then it is delivered again. Messages from one
// publishing goroutine reach a subscriber in the order they were published, unless one
// is delivered again.
//
// # Options
//
// This package's options travel in the Context of broker.Options,
// broker.SubscribeOptions and broker.PublishOptions, as in Go Micro. broker.PublishContext
// and broker.SubscribeContext replace that context, dropping this package's options given
// before them: give them first, or use this package's SubscribeContext.
//
// # Flow control
//
// Each subscription has its own AMQP channel, with at most PrefetchCount (default 64)
// unacknowledged messages: a slow handler holds no more than that in memory, the rest
// waits on the server. Handlers of one subscription run one at a time, in order; the
// members of a queue group share its load. A publisher that the server blocks (a memory
// or disk alarm) gets an error matching ErrUnavailable at once rather than a stall.
//
// # Connection
//
// Connect dials broker.Addrs (default DefaultURL; host:port is taken as
// amqp://host:port, and broker.Secure or broker.TLSConfig switch to amqps), trying each
// in turn, and declares the exchange; it fails within Timeout. A broker uses two
// connections, one to publish and one to consume. When one is lost (server restart,
// network fault, rabbitmqctl close_connection) the broker dials again, at once and then
// with exponential back-off from 100 ms up to 2 s, until it succeeds or Disconnect is
// called, and then declares and consumes every subscription again. While it is lost,
// Publish and Subscribe wait for it until their deadline and then fail with an error
// matching ErrUnavailable. A server that closes the connection or refuses new ones is
// noticed at once; one that stops answering, through heartbeats, within 30 s.
//
// Disconnect stops every subscription: no handler call begins after it starts, handlers
// already running finish (for at most 10 s) and their messages are acknowledged; the
// messages prefetched but not handled go back to their queues. Then it closes the
// connections, and every goroutine of the broker has ended when it returns.
//
// The broker is safe for concurrent use.
package rabbitmq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/logger"
)

// Errors of this package, matched with errors.Is. The broker also returns the errors of
// package broker: ErrNotConnected, ErrConnected, ErrMissingTopic and ErrMissingHandler.
var (
	// ErrInvalidOption is returned by Connect and Init for an option out of its range.
	ErrInvalidOption = errors.New("rabbitmq: invalid option")
	// ErrUnavailable is returned when there is no usable connection to the server: by
	// Connect when no server answers, and by Publish and Subscribe when the connection
	// is lost and not back before their deadline, or the server blocks publishers.
	ErrUnavailable = errors.New("rabbitmq: server unavailable")
	// ErrMessageTooLarge is returned by Publish, before sending anything, for a topic or
	// a header name longer than 255 bytes, or headers that do not fit in one AMQP frame;
	// and by Subscribe for a topic or queue name that is too long.
	ErrMessageTooLarge = errors.New("rabbitmq: name or headers too long for AMQP")
	// ErrNotConfirmed is returned by Publish when the server did not confirm the
	// message: it refused it, or the connection was lost or the deadline passed before
	// the confirmation (then the message may have been delivered).
	ErrNotConfirmed = errors.New("rabbitmq: message not confirmed by the server")
)

// drainTimeout bounds how long Disconnect waits for handlers under way.
const drainTimeout = 10 * time.Second

// NewBroker returns a RabbitMQ broker with opts applied; it is not connected. Its String
// is "rabbitmq". See the package documentation for what it promises.
func NewBroker(opts ...broker.Option) broker.Broker {
	return &rabbitBroker{opts: *broker.NewOptions(opts...)}
}

// rabbitBroker is the broker.Broker of this package.
type rabbitBroker struct {
	mu   sync.Mutex // serialises Connect, Disconnect and Init
	omu  sync.RWMutex
	opts broker.Options
	run  atomic.Pointer[running] // nil while not connected
}

// running is the state of one connected period, from Connect to Disconnect.
type running struct {
	cfg    *config
	id     string
	cancel context.CancelFunc
	stop   chan struct{} // closed by Disconnect
	pub    *link
	sub    *link
	links  sync.WaitGroup // the links' supervisors
	subsWG sync.WaitGroup // the subscriptions' goroutines

	pubMu   sync.Mutex
	pubConn *amqp.Connection // the connection pubCh is a channel of
	pubCh   *amqp.Channel    // in confirm mode, the exchange declared

	mu      sync.Mutex
	closing bool
	subs    map[*subscriber]struct{}
}

// Init applies opts. It returns broker.ErrConnected while the broker is connected, and an
// error matching ErrInvalidOption, applying nothing, when the result is invalid.
func (b *rabbitBroker) Init(opts ...broker.Option) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run.Load() != nil {
		return broker.ErrConnected
	}
	b.omu.Lock()
	defer b.omu.Unlock()
	o := b.opts
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := newConfig(o); err != nil {
		return err
	}
	b.opts = o
	return nil
}

// Options returns a copy of the broker's options.
func (b *rabbitBroker) Options() broker.Options {
	b.omu.RLock()
	defer b.omu.RUnlock()
	return b.opts
}

// Address returns the URL of the first configured server, its password hidden.
func (b *rabbitBroker) Address() string {
	if r := b.run.Load(); r != nil {
		return redact(r.cfg.urls[0])
	}
	cfg, err := newConfig(b.Options())
	if err != nil {
		return ""
	}
	return redact(cfg.urls[0])
}

// String returns "rabbitmq".
func (b *rabbitBroker) String() string { return "rabbitmq" }

// Connect dials the server and declares the exchange, as the package documentation
// describes; it returns an error matching ErrUnavailable when no server answers within
// Timeout, and leaves nothing running on failure. Connecting a connected broker does
// nothing.
func (b *rabbitBroker) Connect() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run.Load() != nil {
		return nil
	}
	cfg, err := newConfig(b.Options())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cfg: cfg, id: rand.Text()[:10], cancel: cancel, stop: make(chan struct{}), subs: map[*subscriber]struct{}{}}
	r.pub = newLink("publish", r.id, cfg)
	r.sub = newLink("subscribe", r.id, cfg)

	dctx, dcancel := context.WithTimeout(ctx, cfg.timeout)
	defer dcancel()
	pc, pclosed, pblocked, err := r.pub.dial(dctx)
	if err != nil {
		cancel()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	sc, sclosed, sblocked, err := r.sub.dial(dctx)
	if err != nil {
		_ = pc.Close()
		cancel()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.pub.set(pc, nil)
	r.sub.set(sc, nil)
	if _, _, err := r.publishChannel(dctx); err != nil {
		_ = pc.Close()
		_ = sc.Close()
		cancel()
		return err
	}
	r.links.Add(2)
	go func() { defer r.links.Done(); r.pub.supervise(ctx, pc, pclosed, pblocked) }()
	go func() { defer r.links.Done(); r.sub.supervise(ctx, sc, sclosed, sblocked) }()
	b.run.Store(r)
	return nil
}

// Disconnect stops every subscription and closes the connections, as the package
// documentation describes; Publish and Subscribe then return broker.ErrNotConnected
// until Connect. It returns an error if handlers were still running after 10 s (their
// messages will be delivered again). Disconnecting a disconnected broker does nothing.
// Do not call it from a handler: it would wait those 10 s for that handler.
func (b *rabbitBroker) Disconnect() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.run.Swap(nil)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.closing = true
	subs := slices.Collect(maps.Keys(r.subs))
	r.subs = nil
	r.mu.Unlock()
	close(r.stop)
	for _, s := range subs {
		s.stop()
	}
	var err error
	done := make(chan struct{})
	go func() { r.subsWG.Wait(); close(done) }()
	t := time.NewTimer(drainTimeout)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		err = fmt.Errorf("rabbitmq: Disconnect: handlers still running after %s; their messages will be delivered again", drainTimeout)
	}
	r.pubMu.Lock()
	if r.pubCh != nil {
		_ = r.pubCh.Close()
		r.pubCh = nil
	}
	r.pubMu.Unlock()
	r.cancel()
	r.links.Wait()
	return err
}

// Publish sends msg to topic and waits for the server's confirmation, as the package
// documentation describes. A nil msg is sent as an empty message.
func (b *rabbitBroker) Publish(topic string, msg *broker.Message, opts ...broker.PublishOption) error {
	if topic == "" {
		return broker.ErrMissingTopic
	}
	if len(topic) > maxShortString {
		return fmt.Errorf("%w: topic of %d bytes (at most %d)", ErrMessageTooLarge, len(topic), maxShortString)
	}
	r := b.run.Load()
	if r == nil {
		return broker.ErrNotConnected
	}
	ctx := context.Background()
	var set *publishSettings
	if len(opts) > 0 {
		var po broker.PublishOptions
		for _, o := range opts {
			o(&po)
		}
		if po.Context != nil {
			ctx = po.Context
			set, _ = ctx.Value(publishKey{}).(*publishSettings)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.timeout)
		defer cancel()
	}
	var p amqp.Publishing
	if set != nil {
		p = set.props
	}
	if set == nil || !set.deliverySet {
		p.DeliveryMode = r.cfg.deliveryMode
	}
	if reason := r.pub.blocked.Load(); reason != nil {
		return fmt.Errorf("rabbitmq: publish to %q: %w: the server blocks publishers (%s)", topic, ErrUnavailable, *reason)
	}
	ch, conn, err := r.publishChannel(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish to %q: %w", topic, err)
	}
	if msg != nil {
		if p.Headers, err = encodeHeaders(msg.Header, conn.Config.FrameSize); err != nil {
			return fmt.Errorf("rabbitmq: publish to %q: %w", topic, err)
		}
		p.Body = msg.Body
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, r.cfg.exchange, topic, false, false, p)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish to %q: %w: %w", topic, ErrNotConfirmed, err)
	}
	acked, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("rabbitmq: publish to %q: %w (%w; it may have been delivered)", topic, ErrNotConfirmed, err)
	case acked:
		return nil
	case ch.IsClosed():
		_, _, lastErr := r.pub.state()
		return fmt.Errorf("rabbitmq: publish to %q: %w: the channel closed first, it may have been delivered (%v)", topic, ErrNotConfirmed, lastErr)
	default:
		return fmt.Errorf("rabbitmq: publish to %q: %w: the server refused it (nack)", topic, ErrNotConfirmed)
	}
}

// publishChannel returns the confirm-mode channel to publish on, opening one (and
// declaring the exchange) on the current connection when there is none, and waiting for
// a connection until ctx ends.
func (r *running) publishChannel(ctx context.Context) (*amqp.Channel, *amqp.Connection, error) {
	for {
		conn, err := r.pub.wait(ctx, r.stop)
		if err != nil {
			return nil, nil, err
		}
		r.pubMu.Lock()
		if r.pubCh != nil && r.pubConn == conn && !r.pubCh.IsClosed() {
			ch := r.pubCh
			r.pubMu.Unlock()
			return ch, conn, nil
		}
		ch, err := openPublisher(conn, r.cfg)
		if err == nil {
			r.pubCh, r.pubConn = ch, conn
			r.pubMu.Unlock()
			return ch, conn, nil
		}
		r.pubMu.Unlock()
		if !conn.IsClosed() {
			return nil, nil, err
		}
		// the connection was lost meanwhile: wait for the next one
	}
}

// openPublisher opens a channel on conn in confirm mode and declares the exchange.
func openPublisher(conn *amqp.Connection, cfg *config) (*amqp.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("rabbitmq: confirm mode: %w", err)
	}
	if err := declareExchange(ch, cfg); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return ch, nil
}

// declareExchange declares the broker's exchange on ch.
func declareExchange(ch *amqp.Channel, cfg *config) error {
	err := ch.ExchangeDeclare(cfg.exchange, cfg.exchangeType, cfg.durableExchange, false, false, false, nil)
	if err == nil {
		return nil
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		return fmt.Errorf("rabbitmq: exchange %q exists with another type or durability than %s, durable %t (every broker on it must agree): %w",
			cfg.exchange, cfg.exchangeType, cfg.durableExchange, err)
	}
	return fmt.Errorf("rabbitmq: declare exchange %q: %w", cfg.exchange, err)
}

// Subscribe declares the subscription's queue, binds it to topic and starts consuming,
// as the package documentation describes, before it returns. It returns
// broker.ErrMissingTopic, broker.ErrMissingHandler, broker.ErrNotConnected before
// Connect, the context's error if the subscription's context is already done, an error
// matching ErrUnavailable if the connection is lost and not back within Timeout (or the
// context's deadline), and the server's error if it refuses the queue (for example one
// that exists with other settings). When the subscription's context (broker.SubscribeContext
// or this package's SubscribeContext) ends, the subscription is unsubscribed.
func (b *rabbitBroker) Subscribe(topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if topic == "" {
		return nil, broker.ErrMissingTopic
	}
	if h == nil {
		return nil, broker.ErrMissingHandler
	}
	o := broker.NewSubscribeOptions(opts...)
	set := subscription(o)
	var lifetimes []context.Context
	for _, c := range []context.Context{o.Context, set.ctx} {
		if c == nil {
			continue
		}
		if err := c.Err(); err != nil {
			return nil, err
		}
		if c.Done() != nil {
			lifetimes = append(lifetimes, c)
		}
	}
	if len(topic) > maxShortString {
		return nil, fmt.Errorf("%w: topic of %d bytes (at most %d)", ErrMessageTooLarge, len(topic), maxShortString)
	}
	queue := ""
	if o.Queue != "" {
		queue = o.Queue + "@" + topic
		if len(queue) > maxShortString {
			return nil, fmt.Errorf("%w: queue name %q@topic of %d bytes (at most %d)", ErrMessageTooLarge, o.Queue, len(queue), maxShortString)
		}
	}
	r := b.run.Load()
	if r == nil {
		return nil, broker.ErrNotConnected
	}
	s := &subscriber{
		r: r, topic: topic, queue: queue, handler: h, opts: o, set: set,
		tag: "micro-" + r.id + "-" + rand.Text()[:10], done: make(chan struct{}),
	}

	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.timeout)
	defer cancel()
	for _, c := range lifetimes {
		defer context.AfterFunc(c, cancel)()
	}
	ch, dl, err := s.open(ctx, r.stop)
	if err != nil {
		for _, c := range lifetimes {
			if c.Err() != nil {
				return nil, c.Err()
			}
		}
		return nil, fmt.Errorf("rabbitmq: subscribe to %q: %w", topic, err)
	}

	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		_ = ch.Close()
		return nil, broker.ErrNotConnected
	}
	r.subs[s] = struct{}{}
	r.subsWG.Add(1)
	r.mu.Unlock()
	s.mu.Lock()
	if !s.stopped() { // Disconnect may have stopped it already
		for _, c := range lifetimes {
			s.stops = append(s.stops, context.AfterFunc(c, func() { _ = s.Unsubscribe() }))
		}
	}
	s.mu.Unlock()
	go s.run(ch, dl)
	return s, nil
}

// subscriber is one subscription of a rabbitBroker.
type subscriber struct {
	r       *running
	topic   string
	queue   string // the AMQP queue; "" for a broadcast subscription's server-named one
	handler broker.Handler
	opts    broker.SubscribeOptions
	set     subscribeSettings
	tag     string // the consumer tag

	done     chan struct{} // closed by stop
	stopOnce sync.Once
	mu       sync.Mutex
	stops    []func() bool // release the context.AfterFuncs
}

// Options returns the options the subscription was made with.
func (s *subscriber) Options() broker.SubscribeOptions { return s.opts }

// Topic returns the subscribed topic.
func (s *subscriber) Topic() string { return s.topic }

// Unsubscribe stops deliveries: no handler call begins after it returns. A handler
// already running finishes and its message is acknowledged; then the subscription's
// channel is closed, which returns the messages prefetched but not handled to the queue
// (for a queue group, to the other members). A queue group's queue stays. Unsubscribe
// returns at once, nil; it is idempotent and may be called from the handler itself.
func (s *subscriber) Unsubscribe() error {
	s.stop()
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
	return nil
}

// stop ends the subscription's deliveries and releases its context watches. Idempotent.
func (s *subscriber) stop() {
	s.stopOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		stops := s.stops
		s.stops = nil
		s.mu.Unlock()
		for _, f := range stops {
			f()
		}
	})
}

func (s *subscriber) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// open sets up the subscription on the current connection, waiting for one until ctx or
// stop ends.
func (s *subscriber) open(ctx context.Context, stop <-chan struct{}) (*amqp.Channel, <-chan amqp.Delivery, error) {
	for {
		conn, err := s.r.sub.wait(ctx, stop)
		if err != nil {
			return nil, nil, err
		}
		ch, dl, err := s.declare(conn)
		if err == nil {
			return ch, dl, nil
		}
		if !conn.IsClosed() {
			return nil, nil, err
		}
	}
}

// declare opens the subscription's channel on conn, declares the exchange and the queue,
// binds them and starts consuming.
func (s *subscriber) declare(conn *amqp.Connection) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open a channel: %w", err)
	}
	fail := func(what string, err error) (*amqp.Channel, <-chan amqp.Delivery, error) {
		_ = ch.Close()
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			return nil, nil, fmt.Errorf("%s: it exists with other settings (durability, arguments): %w", what, err)
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	cfg := s.r.cfg
	if err := ch.Qos(cfg.prefetch, 0, cfg.prefetchGlobal); err != nil {
		return fail("set the prefetch count", err)
	}
	if err := declareExchange(ch, cfg); err != nil {
		_ = ch.Close()
		return nil, nil, err
	}
	durable, autoDelete, exclusive := false, true, true // broadcast: private to the subscriber
	if s.queue != "" {
		durable, autoDelete, exclusive = s.set.durableQueue, false, false
	}
	q, err := ch.QueueDeclare(s.queue, durable, autoDelete, exclusive, false, s.set.queueArgs)
	if err != nil {
		return fail(fmt.Sprintf("declare queue %q", s.queue), err)
	}
	if err := ch.QueueBind(q.Name, s.topic, cfg.exchange, false, s.set.bindArgs); err != nil {
		return fail(fmt.Sprintf("bind queue %q to exchange %q", q.Name, cfg.exchange), err)
	}
	dl, err := ch.Consume(q.Name, s.tag, false, false, false, false, nil)
	if err != nil {
		return fail(fmt.Sprintf("consume queue %q", q.Name), err)
	}
	return ch, dl, nil
}

// run handles the deliveries of ch until the subscription stops; when the channel is
// lost it sets the subscription up again, with back-off, on the next connection.
func (s *subscriber) run(ch *amqp.Channel, dl <-chan amqp.Delivery) {
	defer s.r.subsWG.Done()
	log := s.r.cfg.opts.Logger
	for {
		s.consume(dl)
		_ = ch.Close()
		if s.stopped() {
			return
		}
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				t := time.NewTimer(backoff(attempt))
				select {
				case <-s.done:
					t.Stop()
					return
				case <-t.C:
				}
			}
			var err error
			ch, dl, err = s.open(context.Background(), s.done)
			if err == nil {
				break
			}
			if s.stopped() {
				return
			}
			if log != nil && attempt%10 == 0 {
				log.Logf(logger.ErrorLevel, "broker/rabbitmq: subscription to %q not set up again (attempt %d, retrying): %v", s.topic, attempt+1, err)
			}
		}
	}
}

// consume handles deliveries, one at a time, until dl closes or the subscription stops.
func (s *subscriber) consume(dl <-chan amqp.Delivery) {
	for {
		select {
		case <-s.done:
			return
		case d, ok := <-dl:
			if !ok || s.stopped() {
				return
			}
			s.handle(&d)
		}
	}
}

// handle calls the handler with one delivery, then acknowledges it or returns it.
func (s *subscriber) handle(d *amqp.Delivery) {
	e := &event{d: d, msg: decodeMessage(d), topic: d.RoutingKey}
	if err := s.call(e); err != nil {
		e.err = err
		if eh := s.r.cfg.opts.ErrorHandler; eh != nil {
			_ = eh(e)
		}
		if s.set.noRequeue {
			_ = e.settle(reject)
		} else {
			_ = e.settle(requeue)
		}
		return
	}
	if s.opts.AutoAck {
		_ = e.settle(ack)
	}
}

// call runs the handler, turning a panic into an error.
func (s *subscriber) call(e *event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rabbitmq: handler of %q panicked: %v", s.topic, p)
			if log := s.r.cfg.opts.Logger; log != nil {
				log.Logf(logger.ErrorLevel, "broker/rabbitmq: %v", strings.TrimPrefix(err.Error(), "rabbitmq: "))
			}
		}
	}()
	return s.handler(e)
}

// How a delivery is settled.
const (
	ack = iota
	requeue
	reject
)

// event is one delivery to a subscriber.
type event struct {
	d     *amqp.Delivery
	msg   broker.Message
	topic string
	err   error

	mu      sync.Mutex
	settled bool
}

// Topic returns the topic the message was published to.
func (e *event) Topic() string { return e.topic }

// Message returns the delivered message; the subscriber may keep it.
func (e *event) Message() *broker.Message { return &e.msg }

// Ack acknowledges the message, so that the server forgets it. It is needed only with
// broker.DisableAutoAck; calling it again, or after the broker settled the message, does
// nothing and returns nil. It returns an error if the subscription's channel is closed:
// the message will then be delivered again.
func (e *event) Ack() error { return e.settle(ack) }

// Error returns the handler's error, once the handler has returned one; otherwise nil.
func (e *event) Error() error { return e.err }

// settle acknowledges, requeues or rejects the delivery, once.
func (e *event) settle(how int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settled {
		return nil
	}
	e.settled = true
	var err error
	switch how {
	case ack:
		err = e.d.Ack(false)
	case requeue:
		err = e.d.Nack(false, true)
	default:
		err = e.d.Reject(false)
	}
	if err != nil {
		return fmt.Errorf("rabbitmq: settle delivery %s of %q: %w (it will be delivered again)", tag(e.d), e.topic, err)
	}
	return nil
}
