package broker

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// memoryBroker delivers within one process. Subscriptions are kept per topic in
// immutable snapshots (topicSubs) that Subscribe and Unsubscribe replace under mu, so
// Publish holds the lock only long enough to read one pointer and calls handlers with no
// lock held.
type memoryBroker struct {
	mu        sync.RWMutex
	opts      Options
	connected bool
	topics    map[string]*topicSubs // values are never modified, only replaced
}

// topicSubs is one immutable snapshot of a topic's subscriptions.
type topicSubs struct {
	broadcast []*memorySubscriber // subscriptions without a queue: each gets every message
	groups    []queueGroup        // in order of creation
}

// queueGroup is the members of one queue on one topic. next is shared by every snapshot
// of the group, so round robin carries on across membership changes.
type queueGroup struct {
	name    string
	members []*memorySubscriber
	next    *atomic.Uint64
}

// NewMemoryBroker returns a broker that delivers within this process; its String is
// "memory" and it has no Address.
//
// It must be connected before Publish and Subscribe, which return ErrNotConnected
// otherwise. Publish delivers synchronously, in the publisher's goroutine, to every
// subscription of the topic without a queue and to exactly one member of each queue
// group, chosen in turn. Each handler receives its own copy of the message, so handlers
// never see each other's changes, nor the publisher's later ones. A handler error does
// not stop delivery to the others: Publish returns every handler error joined with
// errors.Join, and passes each failed Event to the ErrorHandler option, if set. Handlers
// run with no broker lock held and may themselves publish, subscribe or unsubscribe.
// Options.Codec is not used: messages never leave the process.
//
// Disconnect removes every subscription. The broker is safe for concurrent use.
func NewMemoryBroker(opts ...Option) Broker {
	return &memoryBroker{opts: *NewOptions(opts...), topics: make(map[string]*topicSubs)}
}

// Init applies opts. It returns ErrConnected while the broker is connected.
func (m *memoryBroker) Init(opts ...Option) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.connected {
		return ErrConnected
	}
	for _, o := range opts {
		o(&m.opts)
	}
	return nil
}

// Options returns a copy of the broker's options.
func (m *memoryBroker) Options() Options {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.opts
}

// Address returns "": the memory broker listens on nothing.
func (m *memoryBroker) Address() string { return "" }

// Connect makes the broker accept Publish and Subscribe. Connecting a connected broker
// does nothing.
func (m *memoryBroker) Connect() error {
	m.mu.Lock()
	m.connected = true
	m.mu.Unlock()
	return nil
}

// Disconnect removes every subscription, as if each were unsubscribed, and makes Publish
// and Subscribe return ErrNotConnected until Connect. Disconnecting a disconnected broker
// does nothing.
func (m *memoryBroker) Disconnect() error {
	m.mu.Lock()
	old := m.topics
	m.topics = make(map[string]*topicSubs)
	m.connected = false
	for _, t := range old {
		t.each(func(s *memorySubscriber) { s.closed.Store(true) })
	}
	m.mu.Unlock()
	for _, t := range old {
		t.each((*memorySubscriber).release)
	}
	return nil
}

// Publish delivers msg to the topic's subscriptions, as NewMemoryBroker describes. A nil
// msg is delivered as an empty Message. If the PublishContext is already done, Publish
// returns its error and delivers nothing; once delivery has begun it is not interrupted.
func (m *memoryBroker) Publish(topic string, msg *Message, opts ...PublishOption) error {
	if topic == "" {
		return ErrMissingTopic
	}
	if len(opts) > 0 { // applied only when given: &po would otherwise cost an allocation
		var po PublishOptions
		for _, o := range opts {
			o(&po)
		}
		if po.Context != nil {
			if err := po.Context.Err(); err != nil {
				return err
			}
		}
	}
	m.mu.RLock()
	connected, t, onErr := m.connected, m.topics[topic], m.opts.ErrorHandler
	m.mu.RUnlock()
	if !connected {
		return ErrNotConnected
	}
	if t == nil {
		return nil
	}
	var errs []error
	for _, s := range t.broadcast {
		if s.live() {
			errs = s.deliver(topic, msg, onErr, errs)
		}
	}
	for i := range t.groups {
		if s := t.groups[i].pick(); s != nil {
			errs = s.deliver(topic, msg, onErr, errs)
		}
	}
	return errors.Join(errs...)
}

// Subscribe registers h for topic. It returns ErrMissingTopic for an empty topic,
// ErrMissingHandler for a nil h, ErrNotConnected before Connect, and the context's error
// if the SubscribeContext is already done. When that context ends later, the
// subscription is unsubscribed.
func (m *memoryBroker) Subscribe(topic string, h Handler, opts ...SubscribeOption) (Subscriber, error) {
	if topic == "" {
		return nil, ErrMissingTopic
	}
	if h == nil {
		return nil, ErrMissingHandler
	}
	s := &memorySubscriber{topic: topic, handler: h, opts: NewSubscribeOptions(opts...), b: m}
	ctx := s.opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.connected {
		return nil, ErrNotConnected
	}
	m.topics[topic] = m.topics[topic].with(s)
	if ctx.Done() != nil {
		// Set under mu: the AfterFunc's Unsubscribe, Disconnect and a later
		// Unsubscribe all read s.stop after taking mu.
		s.stop = context.AfterFunc(ctx, func() { _ = s.Unsubscribe() })
	}
	return s, nil
}

// String returns "memory".
func (m *memoryBroker) String() string { return "memory" }

// with returns a new snapshot holding t's subscriptions and s. t may be nil.
func (t *topicSubs) with(s *memorySubscriber) *topicSubs {
	n := &topicSubs{}
	if t != nil {
		*n = *t
	}
	if s.opts.Queue == "" {
		n.broadcast = append(slices.Clip(n.broadcast), s) // Clip: never write into t's array
		return n
	}
	n.groups = slices.Clone(n.groups)
	for i := range n.groups {
		if g := &n.groups[i]; g.name == s.opts.Queue {
			g.members = append(slices.Clip(g.members), s)
			return n
		}
	}
	n.groups = append(n.groups, queueGroup{
		name:    s.opts.Queue,
		members: []*memorySubscriber{s},
		next:    new(atomic.Uint64),
	})
	return n
}

// without returns a new snapshot holding t's subscriptions but s, or nil if none is left.
func (t *topicSubs) without(s *memorySubscriber) *topicSubs {
	if t == nil {
		return nil
	}
	n := *t
	is := func(x *memorySubscriber) bool { return x == s }
	if s.opts.Queue == "" {
		n.broadcast = slices.DeleteFunc(slices.Clone(n.broadcast), is)
	} else {
		n.groups = slices.Clone(n.groups)
		for i := range n.groups {
			if g := &n.groups[i]; g.name == s.opts.Queue {
				g.members = slices.DeleteFunc(slices.Clone(g.members), is)
				if len(g.members) == 0 {
					n.groups = slices.Delete(n.groups, i, i+1)
				}
				break
			}
		}
	}
	if len(n.broadcast) == 0 && len(n.groups) == 0 {
		return nil
	}
	return &n
}

// each calls f for every subscription in t.
func (t *topicSubs) each(f func(*memorySubscriber)) {
	for _, s := range t.broadcast {
		f(s)
	}
	for _, g := range t.groups {
		for _, s := range g.members {
			f(s)
		}
	}
}

// pick returns the group's next live member in turn, or nil if none is live.
func (g *queueGroup) pick() *memorySubscriber {
	n := uint64(len(g.members))
	start := g.next.Add(1) - 1
	for i := range n {
		if s := g.members[(start+i)%n]; s.live() {
			return s
		}
	}
	return nil
}

// memorySubscriber is one subscription to a memoryBroker.
type memorySubscriber struct {
	topic   string
	handler Handler
	opts    SubscribeOptions
	b       *memoryBroker
	closed  atomic.Bool // set under b.mu by Unsubscribe and Disconnect
	stop    func() bool // releases the context.AfterFunc; nil without one
}

// Options returns the options the subscription was made with.
func (s *memorySubscriber) Options() SubscribeOptions { return s.opts }

// Topic returns the subscribed topic.
func (s *memorySubscriber) Topic() string { return s.topic }

// Unsubscribe stops deliveries: no handler call begins after it returns, though one
// already under way in another goroutine may finish. It is idempotent, safe to call from
// the handler itself, and returns nil.
func (s *memorySubscriber) Unsubscribe() error {
	s.b.mu.Lock()
	if s.closed.Swap(true) {
		s.b.mu.Unlock()
		return nil
	}
	if t := s.b.topics[s.topic].without(s); t != nil {
		s.b.topics[s.topic] = t
	} else {
		delete(s.b.topics, s.topic)
	}
	s.b.mu.Unlock()
	s.release()
	return nil
}

// release lets go of the context.AfterFunc, if any. Called once, after s is closed.
func (s *memorySubscriber) release() {
	if s.stop != nil {
		s.stop()
	}
}

// live reports whether s still takes deliveries: not unsubscribed, and its context (whose
// AfterFunc may not have run yet) not done.
func (s *memorySubscriber) live() bool {
	if s.closed.Load() {
		return false
	}
	return s.opts.Context == nil || s.opts.Context.Err() == nil
}

// deliver calls s's handler with a copy of msg, and on failure appends the error to errs
// and calls onErr, if set. No lock is held.
func (s *memorySubscriber) deliver(topic string, msg *Message, onErr Handler, errs []error) []error {
	e := &memoryEvent{topic: topic}
	if msg != nil {
		e.msg.Header = maps.Clone(msg.Header)
		e.msg.Body = bytes.Clone(msg.Body)
	}
	if err := s.handler(e); err != nil {
		e.err = err
		errs = append(errs, err)
		if onErr != nil {
			_ = onErr(e)
		}
	}
	return errs
}

// memoryEvent is one delivery; its message is the handler's own copy.
type memoryEvent struct {
	topic string
	msg   Message
	err   error
}

// Topic returns the topic the message was published to.
func (e *memoryEvent) Topic() string { return e.topic }

// Message returns this delivery's copy of the message.
func (e *memoryEvent) Message() *Message { return &e.msg }

// Ack does nothing and returns nil: delivery is synchronous, so there is nothing to
// redeliver, with or without DisableAutoAck.
func (e *memoryEvent) Ack() error { return nil }

// Error returns the handler's error, once the handler has returned one; otherwise nil.
func (e *memoryEvent) Error() error { return e.err }
