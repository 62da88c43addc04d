package broker

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// DefaultBroker is the broker used when none is given: the memory broker, until the HTTP
// broker lands. Constructing it starts nothing.
var DefaultBroker Broker = NewMemoryBroker()

// NewBroker returns the default kind of broker (memory, for now).
func NewBroker(opts ...Option) Broker { return NewMemoryBroker(opts...) }

type memoryBroker struct {
	mu        sync.RWMutex
	opts      Options
	connected bool
	subs      map[string][]*memorySubscriber
	next      atomic.Uint64 // round robin over queue members
}

// NewMemoryBroker returns a broker that delivers within this process. Publish delivers
// synchronously, in the publisher's goroutine: to every subscriber without a queue, and to
// one member of each queue group (in turn). A handler error does not stop delivery to the
// others; Publish returns every handler error joined. It is safe for concurrent use.
func NewMemoryBroker(opts ...Option) Broker {
	return &memoryBroker{opts: *NewOptions(opts...), subs: make(map[string][]*memorySubscriber)}
}

func (m *memoryBroker) Init(opts ...Option) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.connected {
		return errors.New("broker: cannot Init while connected")
	}
	for _, o := range opts {
		o(&m.opts)
	}
	return nil
}

func (m *memoryBroker) Options() Options {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.opts
}

func (m *memoryBroker) Address() string { return "" }

func (m *memoryBroker) Connect() error {
	m.mu.Lock()
	m.connected = true
	m.mu.Unlock()
	return nil
}

// Disconnect removes every subscription; Publish and Subscribe fail until Connect.
func (m *memoryBroker) Disconnect() error {
	m.mu.Lock()
	subs := m.subs
	m.subs = make(map[string][]*memorySubscriber)
	m.connected = false
	m.mu.Unlock()
	for _, list := range subs {
		for _, s := range list {
			s.release()
		}
	}
	return nil
}

func (m *memoryBroker) Publish(topic string, msg *Message, opts ...PublishOption) error {
	if topic == "" {
		return ErrMissingTopic
	}
	m.mu.RLock()
	if !m.connected {
		m.mu.RUnlock()
		return ErrNotConnected
	}
	list := m.subs[topic]
	errHandler := m.opts.ErrorHandler
	m.mu.RUnlock()
	var targets []*memorySubscriber
	groups := map[string][]*memorySubscriber{}
	for _, s := range list {
		if ctx := s.opts.Context; ctx != nil && ctx.Err() != nil {
			continue // ended: being unsubscribed
		}
		if s.opts.Queue == "" {
			targets = append(targets, s)
		} else {
			groups[s.opts.Queue] = append(groups[s.opts.Queue], s)
		}
	}
	for _, g := range groups {
		targets = append(targets, g[int(m.next.Add(1)%uint64(len(g)))])
	}
	var errs []error
	for _, s := range targets {
		e := &memoryEvent{topic: topic, msg: copyMessage(msg)}
		if err := s.handler(e); err != nil {
			e.err = err
			errs = append(errs, err)
			if errHandler != nil {
				_ = errHandler(e)
			}
		}
	}
	return errors.Join(errs...)
}

func copyMessage(m *Message) *Message {
	if m == nil {
		return &Message{}
	}
	return &Message{Header: maps.Clone(m.Header), Body: append([]byte(nil), m.Body...)}
}

func (m *memoryBroker) Subscribe(topic string, h Handler, opts ...SubscribeOption) (Subscriber, error) {
	if topic == "" {
		return nil, ErrMissingTopic
	}
	if h == nil {
		return nil, errors.New("broker: nil handler")
	}
	s := &memorySubscriber{id: uuid.New().String(), topic: topic, handler: h, opts: NewSubscribeOptions(opts...), b: m}
	m.mu.Lock()
	if !m.connected {
		m.mu.Unlock()
		return nil, ErrNotConnected
	}
	m.subs[topic] = append(m.subs[topic], s)
	m.mu.Unlock()
	if ctx := s.opts.Context; ctx != nil && ctx.Done() != nil {
		s.stop = context.AfterFunc(ctx, func() { _ = s.Unsubscribe() })
	}
	return s, nil
}

func (m *memoryBroker) String() string { return "memory" }

type memorySubscriber struct {
	id      string
	topic   string
	handler Handler
	opts    SubscribeOptions
	b       *memoryBroker
	stop    func() bool
}

func (s *memorySubscriber) Options() SubscribeOptions { return s.opts }
func (s *memorySubscriber) Topic() string             { return s.topic }

// Unsubscribe stops deliveries to s. It is idempotent.
func (s *memorySubscriber) Unsubscribe() error {
	s.b.mu.Lock()
	list := s.b.subs[s.topic]
	for i, x := range list {
		if x == s {
			s.b.subs[s.topic] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(s.b.subs[s.topic]) == 0 {
		delete(s.b.subs, s.topic)
	}
	s.b.mu.Unlock()
	s.release()
	return nil
}

func (s *memorySubscriber) release() {
	if s.stop != nil {
		s.stop()
	}
}

type memoryEvent struct {
	topic string
	msg   *Message
	err   error
}

func (e *memoryEvent) Topic() string     { return e.topic }
func (e *memoryEvent) Message() *Message { return e.msg }
func (e *memoryEvent) Ack() error        { return nil }
func (e *memoryEvent) Error() error      { return e.err }

// Init applies options to DefaultBroker.
func Init(opts ...Option) error { return DefaultBroker.Init(opts...) }

// Connect connects DefaultBroker.
func Connect() error { return DefaultBroker.Connect() }

// Disconnect disconnects DefaultBroker.
func Disconnect() error { return DefaultBroker.Disconnect() }

// Publish publishes with DefaultBroker.
func Publish(topic string, msg *Message, opts ...PublishOption) error {
	return DefaultBroker.Publish(topic, msg, opts...)
}

// Subscribe subscribes with DefaultBroker.
func Subscribe(topic string, handler Handler, opts ...SubscribeOption) (Subscriber, error) {
	return DefaultBroker.Subscribe(topic, handler, opts...)
}

// String names DefaultBroker's implementation.
func String() string { return DefaultBroker.String() }
