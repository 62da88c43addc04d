// Package natsjs is an events.Stream on NATS JetStream: events are stored by the server,
// survive restarts of publishers, consumers and (with file storage, which it uses) the
// server, and are delivered at least once to each consumer or group.
//
// # Streams and consumers
//
// Each topic has a JetStream stream of its own, created on first use (by Publish or
// Consume) with file storage, the topic as its only subject, and RetentionPolicy,
// MaxAge and MaxMsgSize from the options; an existing stream is used as it is. Its name
// is the topic, with characters a stream name cannot hold (such as '.') replaced by '_'
// and a hash of the topic appended. A topic must be a NATS subject without wildcards.
//
// A consumer with WithGroup(g) is the durable JetStream consumer named after g on the
// topic's stream, shared by every member of the group in every process: the server
// hands each event to one member and remembers, across restarts of everyone, which
// events the group has acknowledged. Its settings are those of its latest member, except
// where it starts (the offset), which its first member chose. With
// DisableDurableStreams the server deletes a group's consumer after
// NonDurableInactivity without members. A consumer without a group is a consumer of its
// own, deleted when its consuming ends (or by the server, NonDurableInactivity after a
// crash). WithOffset(t) starts a new consumer at the events the server stored since t
// (DeliverByStartTime); without it a new consumer starts with events published after it
// was created.
//
// # Delivery and acknowledgement
//
// Every consumer acknowledges explicitly: with auto ack (the default) the stream
// acknowledges each event once the consumer has received it from the channel; with
// WithAutoAck(false, ackWait) the consumer does, with Event.Ack, within ackWait
// (JetStream's AckWait) of the delivery, or the server delivers the event again.
// Event.Nack asks for a redelivery at once (a NAK). WithRetryLimit(n) sets the
// consumer's MaxDeliver to n + 1: an event delivered that often and still not
// acknowledged is given up by the server, which announces it in an advisory; the stream
// logs each such event at warning level and counts it in Stats().DeadLettered (the
// event stays in the JetStream stream, by its sequence, until the stream's limits
// remove it). A consumer with manual acknowledgement fetches one event at a time, so
// that ackWait starts when the consumer is about to receive the event (if the consumer
// then takes longer than a quarter of ackWait to receive it, the stream tells the
// server the event is in progress, which restarts ackWait); one with auto ack fetches up
// to 64 ahead. At most MaxAckPending events are unacknowledged per consumer or group.
//
// A consumer with manual acknowledgement that stops leaves its last request for an
// event with the server for up to 5 s: an event the server hands to it meanwhile reaches
// no one, and goes to another member of the group after its AckWait.
//
// Ack sends the acknowledgement without waiting for the server's confirmation. An
// acknowledgement lost on the way (the process dies just after Ack) makes the server
// deliver the event again: consumers see an event more than once after a crash, at most
// MaxAckPending of them.
//
// # Publishing
//
// Publish encodes the message (events.Encode), gives it an ID, and sends it with the ID
// as Nats-Msg-Id, so that the server stores it once even if it receives it more than
// once (within its duplicate window, 2 min or MaxAge if shorter). With SynchronousPublish
// (the default) Publish returns nil only once the server has stored the event; when the
// server does not answer in time or is away (a reconnection), Publish sends the same
// message again, with back-off, until PublishTimeout or the context of
// events.WithPublishContext ends, and then returns the error.
//
// # Connection and closing
//
// NewStream connects at once and fails if the server cannot be reached within
// DefaultConnectTimeout. The connection reconnects by itself, for ever, every 250 ms.
// The stream also implements io.Closer and events.Reporter: Close stops every
// consumer (their channels are closed; events they fetched but did not hand over are
// nacked, so they go to other members at once), waits up to DrainTimeout for events
// handed over with manual acknowledgement to be acknowledged, flushes and closes the
// connection. The stream is safe for concurrent use.
package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/logger"
)

// NonDurableInactivity is how long the server keeps a consumer without members before
// deleting it: a consumer without a group after a crash, or a group's consumer with
// DisableDurableStreams.
const NonDurableInactivity = 10 * time.Minute

// The errors of the package, matched with errors.Is.
var (
	errInvalidOption = events.ErrInvalidOption
	// ErrInvalidTopic is returned by Publish and Consume for a topic that is not a
	// NATS subject without wildcards.
	ErrInvalidTopic = errors.New("natsjs: invalid topic")
	errInvalidTopic = ErrInvalidTopic
	// ErrUnavailable is returned when the server cannot be reached or did not answer in
	// time.
	ErrUnavailable = errors.New("natsjs: JetStream unavailable")
)

const (
	setupTimeout    = 10 * time.Second       // bounds creating a stream or consumer
	attemptTimeout  = 2 * time.Second        // bounds one publish attempt
	autoAckBatch    = 64                     // events fetched ahead with auto ack
	maxAsyncPending = 4000                   // asynchronous publishes awaiting an answer
	reconnectWait   = 250 * time.Millisecond // between reconnection attempts
	fetchWait       = 5 * time.Second        // a fetch of one event waits this long
)

type stream struct {
	opts   Options
	log    logger.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // consumer goroutines

	mu       sync.Mutex
	closed   bool
	streams  map[string]string         // topic -> stream name, known to exist
	watches  map[string]*advisoryWatch // "stream.consumer" -> dead-letter watch
	pending  map[*pendingAck]struct{}  // deliveries with manual ack, unanswered
	inserts  int                       // into pending, to sweep it now and then
	drained  chan struct{}             // closed when pending empties during Close
	closing  chan struct{}             // closed at the end of Close
	closeErr error

	published, rejected, delivered, redelivered, deadLettered atomic.Uint64
}

// pendingAck is a delivery to a consumer with manual acknowledgement that has not been
// answered (acknowledged or nacked), nor replaced by a redelivery of the same event.
type pendingAck struct {
	c        *consumer
	seq      uint64    // stream sequence
	deadline time.Time // when the server delivers the event again unless answered
}

// sweepEvery is how many deliveries pass between sweeps of expired pendingAcks.
const sweepEvery = 256

// advisoryWatch counts the MaxDeliver advisories of one consumer.
type advisoryWatch struct {
	sub  *nats.Subscription
	refs int
}

// NewStream connects to JetStream and returns a stream of events on it (see the package
// documentation). Invalid options give an error matching events.ErrInvalidOption; a
// server that cannot be reached one matching ErrUnavailable.
func NewStream(opts ...Option) (events.Stream, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &stream{opts: o, log: o.Logger, streams: map[string]string{}, watches: map[string]*advisoryWatch{}, pending: map[*pendingAck]struct{}{}, closing: make(chan struct{})}
	nopts := []nats.Option{
		nats.Timeout(DefaultConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			s.log.Logf(logger.WarnLevel, "natsjs: subscription %q: %v", subject, err)
		}),
	}
	switch {
	case o.Name != "":
		nopts = append(nopts, nats.Name(o.Name))
	case o.ClientID != "":
		nopts = append(nopts, nats.Name(o.ClientID))
	}
	if o.TLSConfig != nil {
		nopts = append(nopts, nats.Secure(o.TLSConfig))
	}
	if o.Username != "" || o.Password != "" {
		nopts = append(nopts, nats.UserInfo(o.Username, o.Password))
	}
	if o.NkeyConfig != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NkeyConfig)
		if err != nil {
			return nil, fmt.Errorf("%w: natsjs: NkeyConfig %q: %w", errInvalidOption, o.NkeyConfig, err)
		}
		nopts = append(nopts, opt)
	}
	nc, err := nats.Connect(o.Address, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrUnavailable, o.Address, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxAsyncPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			s.rejected.Add(1)
			s.log.Logf(logger.WarnLevel, "natsjs: asynchronous publish of event %s to %q failed: %v", m.Header.Get(jetstream.MsgIDHeader), m.Subject, err)
		}),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	s.nc, s.js = nc, js
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Publish stores msg as an event of topic, as the package documentation describes. It
// returns events.ErrMissingTopic for an empty topic, ErrInvalidTopic for one that is not
// a plain subject, an error matching events.ErrEncodingMessage for a message that does
// not encode, events.ErrClosed after Close, and otherwise the server's error or the
// context's.
func (s *stream) Publish(topic string, msg interface{}, opts ...events.PublishOption) error {
	if topic == "" {
		return events.ErrMissingTopic
	}
	if err := validTopic(topic); err != nil {
		return err
	}
	payload, err := events.Encode(msg)
	if err != nil {
		return err
	}
	po := events.NewPublishOptions(opts...)
	ev := events.Event{ID: uuid.NewString(), Topic: topic, Timestamp: po.Timestamp, Metadata: po.Metadata, Payload: payload}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now()
	}
	m, err := encodeMsg(&ev)
	if err != nil {
		return err
	}
	if s.isClosed() {
		return events.ErrClosed
	}
	ctx := po.Context
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
	defer cancel()
	name, err := s.ensureStream(ctx, topic)
	if err != nil {
		s.rejected.Add(1)
		return err
	}
	if !s.opts.SyncPublish {
		// With maxAsyncPending events awaiting an answer, wait for room (backpressure)
		// as long as the publish may take.
		stall := s.opts.PublishTimeout
		if d, ok := ctx.Deadline(); ok {
			stall = max(time.Until(d), time.Millisecond)
		}
		if _, err := s.js.PublishMsgAsync(m, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(name), jetstream.WithStallWait(stall)); err != nil {
			s.rejected.Add(1)
			return fmt.Errorf("natsjs: publish event %s to %q: %w", ev.ID, topic, err)
		}
		s.published.Add(1)
		return nil
	}
	if err := s.publishSync(ctx, m, ev.ID, name); err != nil {
		s.rejected.Add(1)
		return err
	}
	s.published.Add(1)
	return nil
}

// publishSync sends m until the server has stored it (or reports it a duplicate of what
// it stored), retrying what may succeed later, until ctx ends. The message ID makes the
// retries safe.
func (s *stream) publishSync(ctx context.Context, m *nats.Msg, id, name string) error {
	backoff := 20 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		_, err := s.js.PublishMsg(actx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(name))
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
			s.forgetStream(m.Subject)
		}
		if !retryable(err) || s.isClosed() {
			return fmt.Errorf("natsjs: publish event %s to %q: %w", id, m.Subject, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: publish event %s to %q: %d attempts, the last: %w (%w)", ErrUnavailable, id, m.Subject, attempt, last, ctx.Err())
		case <-s.ctx.Done():
			t.Stop()
			return events.ErrClosed
		}
		if backoff *= 2; backoff > 500*time.Millisecond {
			backoff = 500 * time.Millisecond
		}
		if _, err := s.ensureStream(ctx, m.Subject); err != nil && !retryable(err) {
			return err
		}
	}
}

// retryable reports whether a publish that failed with err may succeed if sent again.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == 503 // JetStream temporarily unavailable
	}
	return false
}

func (s *stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ensureStream returns the name of topic's stream, creating the stream if it does not
// exist.
func (s *stream) ensureStream(ctx context.Context, topic string) (string, error) {
	s.mu.Lock()
	name, ok := s.streams[topic]
	s.mu.Unlock()
	if ok {
		return name, nil
	}
	name = nameOf(topic)
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg := jetstream.StreamConfig{
			Name:        name,
			Description: "micro events of topic " + topic,
			Subjects:    []string{topic},
			Retention:   jetstream.RetentionPolicy(s.opts.RetentionPolicy),
			MaxAge:      s.opts.MaxAge,
			MaxMsgSize:  int32(s.opts.MaxMsgSize),
			Storage:     jetstream.FileStorage,
		}
		if s.opts.MaxAge > 0 && s.opts.MaxAge < 2*time.Minute {
			cfg.Duplicates = s.opts.MaxAge // the window may not exceed MaxAge
		}
		st, err = s.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, name) // created meanwhile by someone else
		}
	}
	if err != nil {
		return "", fmt.Errorf("%w: stream %s for topic %q: %w", ErrUnavailable, name, topic, err)
	}
	if subjects := st.CachedInfo().Config.Subjects; !slices.Contains(subjects, topic) {
		return "", fmt.Errorf("natsjs: stream %s, the name for topic %q, exists with subjects %v", name, topic, subjects)
	}
	s.mu.Lock()
	s.streams[topic] = name
	s.mu.Unlock()
	return name, nil
}

func (s *stream) forgetStream(topic string) {
	s.mu.Lock()
	delete(s.streams, topic)
	s.mu.Unlock()
}

// consumer is one Consume call.
type consumer struct {
	s         *stream
	topic     string
	stream    string
	group     string
	cfg       jetstream.ConsumerConfig
	cons      jetstream.Consumer
	it        jetstream.MessagesContext
	out       chan events.Event
	ctx       context.Context // ends consuming
	cancel    context.CancelFunc
	stopWatch func() bool // releases the AfterFunc on the user's context
	autoAck   bool
	ackWait   time.Duration
	watchKey  string                 // of the dead-letter watch, if any
	bySeq     map[uint64]*pendingAck // this consumer's pending deliveries, under s.mu
}

// Consume returns a channel of topic's events, as the package documentation describes.
// It returns once the JetStream consumer exists: events published after that are
// delivered. It returns events.ErrMissingTopic for an empty topic, ErrInvalidTopic for
// a topic that is not a plain subject, events.ErrClosed after Close, the context's
// error if WithContext's context is already done, and the server's error otherwise.
// The channel is closed when that context ends or the stream is closed.
func (s *stream) Consume(topic string, opts ...events.ConsumeOption) (<-chan events.Event, error) {
	if topic == "" {
		return nil, events.ErrMissingTopic
	}
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	o := events.NewConsumeOptions(opts...)
	uctx := o.Context
	if uctx == nil {
		uctx = context.Background()
	}
	if err := uctx.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: consume %q: %w", topic, err)
	}
	if s.isClosed() {
		return nil, events.ErrClosed
	}
	sctx, cancel := context.WithTimeout(uctx, setupTimeout)
	defer cancel()
	name, err := s.ensureStream(sctx, topic)
	if err != nil {
		return nil, err
	}
	c := &consumer{s: s, topic: topic, stream: name, group: o.Group, autoAck: o.AutoAck, ackWait: o.AckWait, out: make(chan events.Event), bySeq: map[uint64]*pendingAck{}}
	c.cfg = jetstream.ConsumerConfig{
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: s.opts.MaxAckPending,
		FilterSubject: topic,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	if limit := o.GetRetryLimit(); limit >= 0 {
		c.cfg.MaxDeliver = limit + 1
	}
	if !o.Offset.IsZero() {
		start := o.Offset
		c.cfg.DeliverPolicy, c.cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	if o.Group != "" {
		c.cfg.Durable = nameOf(o.Group)
		c.cfg.Description = "micro events group " + o.Group
		if s.opts.DisableDurableStreams {
			c.cfg.InactiveThreshold = NonDurableInactivity
		}
	} else {
		c.cfg.InactiveThreshold = NonDurableInactivity
	}
	if c.cons, err = c.create(sctx); err != nil {
		return nil, err
	}
	if c.it, err = c.messages(); err != nil {
		c.deleteEphemeral()
		return nil, fmt.Errorf("natsjs: consume %q: %w", topic, err)
	}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.stopWatch = context.AfterFunc(uctx, c.cancel)
	if c.cfg.MaxDeliver > 0 {
		c.watch()
	}
	s.mu.Lock()
	if s.closed { // Close ran meanwhile: it will not wait for this consumer
		s.mu.Unlock()
		c.stop()
		return nil, events.ErrClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.run()
	return c.out, nil
}

// create makes the JetStream consumer, or updates the group's existing one with the
// settings that may change, keeping where it starts.
func (c *consumer) create(ctx context.Context) (jetstream.Consumer, error) {
	js := c.s.js
	if c.cfg.Durable == "" {
		cons, err := js.CreateConsumer(ctx, c.stream, c.cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: create a consumer of %q: %w", ErrUnavailable, c.topic, err)
		}
		return cons, nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		cons, err := js.Consumer(ctx, c.stream, c.cfg.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cons, err = js.CreateConsumer(ctx, c.stream, c.cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) || errors.Is(err, jetstream.ErrConsumerNameAlreadyInUse) {
				continue // created meanwhile by another member: update it
			}
		} else if err == nil {
			have := cons.CachedInfo().Config
			want := c.cfg
			want.DeliverPolicy, want.OptStartTime, want.OptStartSeq = have.DeliverPolicy, have.OptStartTime, have.OptStartSeq
			if have.AckWait != want.AckWait || have.MaxDeliver != want.MaxDeliver || have.MaxAckPending != want.MaxAckPending ||
				have.InactiveThreshold != want.InactiveThreshold || have.FilterSubject != want.FilterSubject {
				cons, err = js.UpdateConsumer(ctx, c.stream, want)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: consumer %s of %q (group %q): %w", ErrUnavailable, c.cfg.Durable, c.topic, c.group, err)
		}
		return cons, nil
	}
	return nil, fmt.Errorf("%w: consumer %s of %q (group %q): created and deleted concurrently", ErrUnavailable, c.cfg.Durable, c.topic, c.group)
}

// messages starts fetching the consumer's events ahead, with auto ack; with manual
// acknowledgement it returns nil: next fetches one event at a time.
func (c *consumer) messages() (jetstream.MessagesContext, error) {
	if !c.autoAck {
		return nil, nil
	}
	// Short pulls with heartbeats: should nats.go's iterator miss renewing a pull (see
	// next), the missing heartbeat restarts it within 2 s rather than 30.
	return c.cons.Messages(jetstream.PullMaxMessages(autoAckBatch), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
}

// next returns the consumer's next event, waiting for it until c.ctx ends.
//
// With manual acknowledgement it asks the server for one event at a time (a fetch of
// one, renewed every fetchWait), rather than through an iterator of one: nats.go's
// iterator can miss renewing a pull of one when the event arrives before it has
// finished sending the pull, and then waits for its heartbeat timeout (30 s).
func (c *consumer) next() (jetstream.Msg, error) {
	if c.it != nil {
		return c.it.Next(jetstream.NextContext(c.ctx))
	}
	for {
		if err := c.ctx.Err(); err != nil {
			return nil, err
		}
		fctx, cancel := context.WithTimeout(c.ctx, fetchWait)
		batch, err := c.cons.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return nil, err
		}
		var msg jetstream.Msg
		for m := range batch.Messages() {
			msg = m
		}
		err = batch.Error()
		cancel()
		switch {
		case msg != nil:
			return msg, nil
		case c.ctx.Err() != nil:
			return nil, c.ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout):
			return nil, err
		}
	}
}

// watch counts the consumer's MaxDeliver advisories, shared by the stream's consumers of
// one JetStream consumer.
func (c *consumer) watch() {
	s := c.s
	c.watchKey = c.stream + "." + c.cons.CachedInfo().Name
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[c.watchKey]; w != nil {
		w.refs++
		return
	}
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c.watchKey
	sub, err := s.nc.Subscribe(subject, func(m *nats.Msg) { s.deadLetter(c.topic, c.group, m.Data) })
	if err != nil {
		s.log.Logf(logger.WarnLevel, "natsjs: cannot watch dead-lettered events of %q (%s): %v", c.topic, subject, err)
		c.watchKey = ""
		return
	}
	s.watches[c.watchKey] = &advisoryWatch{sub: sub, refs: 1}
}

func (c *consumer) unwatch() {
	if c.watchKey == "" {
		return
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[c.watchKey]; w != nil {
		if w.refs--; w.refs == 0 {
			_ = w.sub.Unsubscribe()
			delete(s.watches, c.watchKey)
		}
	}
}

// deadLetter counts and logs an event the server gave up after MaxDeliver deliveries.
func (s *stream) deadLetter(topic, group string, advisory []byte) {
	var a struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		Seq        uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(advisory, &a); err != nil {
		s.log.Logf(logger.WarnLevel, "natsjs: undecodable max-deliveries advisory for %q: %v", topic, err)
		return
	}
	s.deadLettered.Add(1)
	id := "(unknown)"
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	if st, err := s.js.Stream(ctx, a.Stream); err == nil {
		if m, err := st.GetMsg(ctx, a.Seq); err == nil {
			if v := m.Header.Get(jetstream.MsgIDHeader); v != "" {
				id = v
			}
		}
	}
	s.log.Logf(logger.WarnLevel, "natsjs: dead-lettered event %s of topic %q (group %q, stream %s sequence %d) after %d deliveries: over its retry limit, it is not delivered again",
		id, topic, group, a.Stream, a.Seq, a.Deliveries)
}

// run hands the consumer's events over c.out until c.ctx ends, then closes c.out.
func (c *consumer) run() {
	s := c.s
	defer s.wg.Done()
	defer close(c.out)
	defer c.stop()
	backoff := 100 * time.Millisecond
	for {
		msg, err := c.next()
		if err != nil {
			if c.ctx.Err() != nil || s.nc.IsClosed() {
				return
			}
			// The iterator ended (the consumer was deleted, for example): start again.
			s.log.Logf(logger.WarnLevel, "natsjs: consumer of %q (group %q): %v; restarting in %s", c.topic, c.group, err, backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
			if backoff *= 2; backoff > 5*time.Second {
				backoff = 5 * time.Second
			}
			c.restart()
			continue
		}
		backoff = 100 * time.Millisecond
		ev, seq, redelivery := c.eventOf(msg)
		var p *pendingAck
		if !c.autoAck {
			p = c.inFlight(msg, &ev, seq)
		}
		handoff := time.Now()
		select {
		case c.out <- ev:
		case <-c.ctx.Done():
			if p != nil {
				s.answered(p)
			}
			_ = msg.Nak() // not handed over: to another member now
			return
		}
		s.delivered.Add(1)
		if redelivery {
			s.redelivered.Add(1)
		}
		if c.autoAck {
			_ = msg.Ack()
		} else if time.Since(handoff) > c.ackWait/4 && s.extend(p) {
			_ = msg.InProgress() // it waited for the consumer: its ackWait starts now
		}
	}
}

// eventOf returns msg's event, its stream sequence, and whether it is a redelivery.
func (c *consumer) eventOf(msg jetstream.Msg) (events.Event, uint64, bool) {
	md, err := msg.Metadata()
	var fallbackID string
	var stored time.Time
	var seq uint64
	redelivery := false
	if err == nil {
		seq = md.Sequence.Stream
		fallbackID = fmt.Sprintf("%s:%d", md.Stream, seq)
		stored = md.Timestamp
		redelivery = md.NumDelivered > 1
	}
	ev, err := decodeEvent(msg.Subject(), msg.Headers(), msg.Data(), fallbackID, stored)
	if err != nil {
		c.s.log.Logf(logger.WarnLevel, "%v (delivered without them)", err)
	}
	return ev, seq, redelivery
}

// inFlight sets ev's ack functions and records the delivery as pending until the
// first of them runs, the handover fails, or the event is delivered again.
func (c *consumer) inFlight(msg jetstream.Msg, ev *events.Event, seq uint64) *pendingAck {
	s := c.s
	p := &pendingAck{c: c, seq: seq, deadline: time.Now().Add(c.ackWait)}
	s.mu.Lock()
	if old := c.bySeq[seq]; old != nil {
		delete(s.pending, old) // a redelivery: the server gave up waiting for that one
	}
	c.bySeq[seq] = p
	s.pending[p] = struct{}{}
	if s.inserts++; s.inserts%sweepEvery == 0 {
		s.sweepLocked(time.Now())
	}
	s.mu.Unlock()
	id, topic := ev.ID, c.topic
	answer := func(verb string, f func() error) error {
		err := f()
		s.answered(p) // after f: Close, waiting for this, may close the connection next
		if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return fmt.Errorf("natsjs: %s event %s of %q: %w", verb, id, topic, err)
		}
		return nil
	}
	ev.SetAckFunc(func() error { return answer("ack", msg.Ack) })
	ev.SetNackFunc(func() error { return answer("nack", msg.Nak) })
	return p
}

// answered records that p was answered; it is harmless to call more than once.
func (s *stream) answered(p *pendingAck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(p)
}

func (s *stream) forgetLocked(p *pendingAck) {
	if _, ok := s.pending[p]; !ok {
		return
	}
	delete(s.pending, p)
	if p.c.bySeq[p.seq] == p {
		delete(p.c.bySeq, p.seq)
	}
	if len(s.pending) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// extend moves p's deadline to a full ackWait from now, and reports whether p is still
// pending (so that the server should be told too).
func (s *stream) extend(p *pendingAck) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[p]; !ok {
		return false
	}
	p.deadline = time.Now().Add(p.c.ackWait)
	return true
}

// sweepLocked forgets the pending deliveries whose ackWait has passed: the server has
// delivered them again, or given them up.
func (s *stream) sweepLocked(now time.Time) {
	for p := range s.pending {
		if now.After(p.deadline) {
			s.forgetLocked(p)
		}
	}
}

// restart replaces the iterator, and the consumer if it is gone.
func (c *consumer) restart() {
	if c.it != nil {
		c.it.Stop()
	}
	ctx, cancel := context.WithTimeout(c.ctx, setupTimeout)
	defer cancel()
	if _, err := c.s.ensureStream(ctx, c.topic); err != nil {
		c.s.log.Logf(logger.WarnLevel, "natsjs: consumer of %q: %v", c.topic, err)
	}
	if _, err := c.cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
		if c.cfg.Durable == "" {
			c.cfg.Name = c.cons.CachedInfo().Name // same name, so that the watch still applies
		}
		if cons, err := c.create(ctx); err == nil {
			c.cons = cons
		} else {
			c.s.log.Logf(logger.WarnLevel, "natsjs: consumer of %q: %v", c.topic, err)
		}
	}
	if it, err := c.messages(); err == nil {
		c.it = it
	} else {
		c.s.log.Logf(logger.WarnLevel, "natsjs: consumer of %q: %v", c.topic, err)
	}
}

// stop ends fetching, the watch, the context and (for a consumer without a group) the
// JetStream consumer. Called once, when consuming ends.
func (c *consumer) stop() {
	c.cancel()
	if c.stopWatch != nil {
		c.stopWatch()
	}
	if c.it != nil {
		c.it.Stop()
	}
	c.unwatch()
	c.deleteEphemeral()
}

// deleteEphemeral deletes the consumer of a Consume without a group.
func (c *consumer) deleteEphemeral() {
	if c.cfg.Durable != "" || c.cons == nil || c.s.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.s.js.DeleteConsumer(ctx, c.stream, c.cons.CachedInfo().Name)
}

// Stats returns the stream's counters. Queued is always 0: the server holds the queues.
func (s *stream) Stats() events.Stats {
	s.mu.Lock()
	s.sweepLocked(time.Now())
	inflight := len(s.pending)
	s.mu.Unlock()
	return events.Stats{
		Published:    s.published.Load(),
		Rejected:     s.rejected.Load(),
		Delivered:    s.delivered.Load(),
		Redelivered:  s.redelivered.Load(),
		DeadLettered: s.deadLettered.Load(),
		InFlight:     inflight,
	}
}

// Close stops the stream, as the package documentation describes, and returns once the
// connection is closed. It is idempotent; every call returns the first one's result.
func (s *stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closing
		return s.closeErr
	}
	s.closed = true
	s.mu.Unlock()

	s.cancel()
	s.wg.Wait() // consumers stopped: nothing more is handed over
	// Wait for the deliveries still pending, at most until the last of their ackWaits
	// (the server delivers them again then anyway) and DrainTimeout.
	s.mu.Lock()
	now := time.Now()
	s.sweepLocked(now)
	var drained chan struct{}
	var wait time.Duration
	for p := range s.pending {
		wait = max(wait, p.deadline.Sub(now))
	}
	if len(s.pending) > 0 {
		drained = make(chan struct{})
		s.drained = drained
	}
	s.mu.Unlock()
	if drained != nil {
		t := time.NewTimer(min(wait, s.opts.DrainTimeout))
		select {
		case <-drained:
		case <-t.C:
			if n := s.Stats().InFlight; n > 0 {
				s.log.Logf(logger.WarnLevel, "natsjs: closing with %d events unacknowledged after %s: the server delivers them again after their AckWait", n, s.opts.DrainTimeout)
			}
		}
		t.Stop()
	}
	s.mu.Lock()
	for key, w := range s.watches {
		_ = w.sub.Unsubscribe()
		delete(s.watches, key)
	}
	s.mu.Unlock()
	if err := s.nc.FlushTimeout(2 * time.Second); err != nil && !s.nc.IsClosed() {
		s.closeErr = fmt.Errorf("natsjs: close: flush: %w", err)
	}
	s.nc.Close()
	close(s.closing)
	return s.closeErr
}

// String returns "natsjs".
func (s *stream) String() string { return "natsjs" }
