// Package brokertest is the conformance suite every broker.Broker passes: round trips of
// headers and binary bodies, broadcast and queue-group delivery, unsubscribing, topic
// isolation, handler errors, concurrent publishers, manual acks, subscription contexts,
// reconnecting and large messages.
//
// A broker's test calls Run with a Suite that makes new, unconnected instances:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, brokertest.Suite{New: func(t testing.TB) broker.Broker { return mybroker.NewBroker() }, Shared: true})
//	}
//
// Deliveries may be asynchronous: the suite waits for them (at most Suite.Timeout), and
// before counting it makes sure every subscription is live by publishing probe messages
// (header Brokertest-Probe) until each subscriber has seen one. Handlers of the suite
// ignore probes, so the counts are of the suite's own messages only.
package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
)

// Headers the suite sets on the messages it publishes.
const (
	// ProbeHeader marks a probe message (see the package doc).
	ProbeHeader = "Brokertest-Probe"
	// IDHeader carries the suite's id of a message, to find duplicates and losses.
	IDHeader = "Brokertest-Id"
)

// Suite describes the broker under test.
type Suite struct {
	// New returns a new broker instance, not connected; the suite connects it and
	// disconnects it when the test ends. Each call returns a distinct instance.
	New func(t testing.TB) broker.Broker
	// Shared says that instances made by New deliver to each other's subscribers (a
	// network broker). Then the suite publishes from one instance to subscribers on
	// others; otherwise every test uses a single instance.
	Shared bool
	// SyncErrors says that Publish returns after delivery, with the error of a
	// subscriber's handler (the memory and HTTP brokers).
	SyncErrors bool
	// Timeout bounds each wait for deliveries. Default 10 s.
	Timeout time.Duration
}

// Run runs the suite as subtests of t.
func Run(t *testing.T, s Suite) {
	if s.New == nil {
		t.Fatal("brokertest: Suite.New is nil")
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Suite)
	}{
		{"Errors", testErrors},
		{"NotConnected", testNotConnected},
		{"RoundTrip", testRoundTrip},
		{"Broadcast", testBroadcast},
		{"QueueGroup", testQueueGroup},
		{"TwoQueueGroups", testTwoQueueGroups},
		{"Unsubscribe", testUnsubscribe},
		{"TopicIsolation", testTopicIsolation},
		{"HandlerError", testHandlerError},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"ManualAck", testManualAck},
		{"SubscribeContext", testSubscribeContext},
		{"Reconnect", testReconnect},
		{"LargeMessage", testLargeMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

// connected returns a new connected broker, disconnected when the test ends.
func (s Suite) connected(t *testing.T) broker.Broker {
	t.Helper()
	b := s.New(t)
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	})
	return b
}

// pair returns a publishing broker and a function giving the broker for the i-th
// subscriber: other instances when the brokers are shared, else the same one.
func (s Suite) pair(t *testing.T) (pub broker.Broker, sub func(i int) broker.Broker) {
	t.Helper()
	pub = s.connected(t)
	if !s.Shared {
		return pub, func(int) broker.Broker { return pub }
	}
	subs := map[int]broker.Broker{}
	return pub, func(i int) broker.Broker {
		if b, ok := subs[i]; ok {
			return b
		}
		b := s.connected(t)
		subs[i] = b
		return b
	}
}

// topic returns a topic no other test (or run) uses.
func topic(t *testing.T) string {
	return fmt.Sprintf("brokertest.%s.%d", strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()), time.Now().UnixNano())
}

// recorder counts the suite's messages a subscriber received, by id.
type recorder struct {
	mu     sync.Mutex
	ids    map[string]int
	total  int
	probes int
	topics map[string]bool
	last   *broker.Message
	fail   func(id string) error // the handler's error for a message, if set
	ack    bool                  // the handler acks each event
	ackErr error
}

func newRecorder() *recorder { return &recorder{ids: map[string]int{}, topics: map[string]bool{}} }

func (r *recorder) handler(ev broker.Event) error {
	m := ev.Message()
	if m == nil {
		return errors.New("brokertest: event without a message")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Header[ProbeHeader] != "" {
		r.probes++
		if r.ack {
			_ = ev.Ack()
		}
		return nil
	}
	id := m.Header[IDHeader]
	r.ids[id]++
	r.total++
	r.topics[ev.Topic()] = true
	r.last = &broker.Message{Header: m.Header, Body: bytes.Clone(m.Body)}
	if r.ack {
		if err := ev.Ack(); err != nil && r.ackErr == nil {
			r.ackErr = err
		}
	}
	if r.fail != nil {
		return r.fail(id)
	}
	return nil
}

func (r *recorder) counts() (total, distinct, probes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, len(r.ids), r.probes
}

func (r *recorder) dups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, n := range r.ids {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s×%d", id, n))
		}
	}
	return out
}

// waitFor polls cond every 5 ms until it holds or the suite's timeout passes.
func (s Suite) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(s.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", s.Timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// ready publishes probes on topic until every recorder has seen one.
func (s Suite) ready(t *testing.T, pub broker.Broker, topic string, recs ...*recorder) {
	t.Helper()
	deadline := time.Now().Add(s.Timeout)
	for n := 1; ; n++ {
		all := true
		for _, r := range recs {
			if _, _, p := r.counts(); p == 0 {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions to %s not live after %v of probes", topic, s.Timeout)
		}
		// a probe may fail while a subscription is being set up (no subscriber yet)
		_ = pub.Publish(topic, &broker.Message{Header: map[string]string{ProbeHeader: strconv.Itoa(n)}})
		time.Sleep(20 * time.Millisecond) // the probes' pace
	}
}

func subscribe(t *testing.T, b broker.Broker, topic string, r *recorder, opts ...broker.SubscribeOption) broker.Subscriber {
	t.Helper()
	sub, err := b.Subscribe(topic, r.handler, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

func msg(id string, body []byte) *broker.Message {
	return &broker.Message{Header: map[string]string{IDHeader: id, "Content-Type": "application/octet-stream"}, Body: body}
}

// publishN publishes n messages with ids prefix-0 … prefix-(n-1).
func publishN(t *testing.T, b broker.Broker, topic, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		id := prefix + strconv.Itoa(i)
		if err := b.Publish(topic, msg(id, []byte(id))); err != nil {
			t.Fatalf("Publish %s: %v", id, err)
		}
	}
}

func testErrors(t *testing.T, s Suite) {
	b := s.connected(t)
	if b.String() == "" {
		t.Error("String is empty")
	}
	if err := b.Publish("", msg("x", nil)); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Publish to an empty topic: %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe("", newRecorder().handler); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Subscribe to an empty topic: %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe(topic(t), nil); !errors.Is(err, broker.ErrMissingHandler) {
		t.Errorf("Subscribe with a nil handler: %v, want ErrMissingHandler", err)
	}
}

func testNotConnected(t *testing.T, s Suite) {
	b := s.New(t)
	if err := b.Publish(topic(t), msg("x", nil)); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish before Connect: %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(topic(t), newRecorder().handler); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Subscribe before Connect: %v, want ErrNotConnected", err)
	}
}

func testRoundTrip(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	r := newRecorder()
	subscribe(t, sub(0), tp, r)
	s.ready(t, pub, tp, r)
	body := make([]byte, 512)
	for i := range body {
		body[i] = byte(i)
	}
	m := msg("rt", body)
	m.Header["Content-Type"] = "application/json"
	m.Header["X-Unusual"] = "a b\tc=d;é ∑"
	if err := pub.Publish(tp, m); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the message did not arrive", func() bool { n, _, _ := r.counts(); return n == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.last
	if !bytes.Equal(got.Body, body) {
		t.Errorf("body changed in transit: %d bytes, want the %d sent", len(got.Body), len(body))
	}
	for _, k := range []string{"Content-Type", "X-Unusual", IDHeader} {
		if got.Header[k] != m.Header[k] {
			t.Errorf("header %s = %q, want %q", k, got.Header[k], m.Header[k])
		}
	}
	if !r.topics[tp] || len(r.topics) != 1 {
		t.Errorf("Event.Topic gave %v, want %s", r.topics, tp)
	}
}

func testBroadcast(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	for i, r := range recs {
		subscribe(t, sub(i), tp, r)
	}
	s.ready(t, pub, tp, recs...)
	const n = 100
	publishN(t, pub, tp, "b", n)
	for i, r := range recs {
		s.waitFor(t, fmt.Sprintf("subscriber %d did not get every message", i), func() bool { _, d, _ := r.counts(); return d == n })
	}
	s.settle(t, pub, tp, recs...)
	for i, r := range recs {
		if d := r.dups(); len(d) > 0 {
			t.Errorf("subscriber %d got duplicates: %v", i, d)
		}
	}
}

// settle publishes a probe and waits for it to reach the broadcast recorders, so that
// messages published before it have had their chance to be duplicated.
func (s Suite) settle(t *testing.T, pub broker.Broker, topic string, recs ...*recorder) {
	t.Helper()
	before := make([]int, len(recs))
	for i, r := range recs {
		_, _, before[i] = r.counts()
	}
	if err := pub.Publish(topic, &broker.Message{Header: map[string]string{ProbeHeader: "settle"}}); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		s.waitFor(t, "the settling probe did not arrive", func() bool { _, _, p := r.counts(); return p > before[i] })
	}
}

func testQueueGroup(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	group := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	for i, r := range group {
		subscribe(t, sub(i), tp, r, broker.Queue("workers"))
	}
	all := newRecorder()
	subscribe(t, sub(3), tp, all)
	s.ready(t, pub, tp, append(group, all)...)
	const n = 300
	publishN(t, pub, tp, "q", n)
	s.waitFor(t, "the broadcast subscriber did not get every message", func() bool { _, d, _ := all.counts(); return d == n })
	sum := func() (total int, distinct map[string]bool) {
		distinct = map[string]bool{}
		for _, r := range group {
			r.mu.Lock()
			total += r.total
			for id := range r.ids {
				distinct[id] = true
			}
			r.mu.Unlock()
		}
		return total, distinct
	}
	s.waitFor(t, "the group did not get every message", func() bool { _, d := sum(); return len(d) == n })
	s.settle(t, pub, tp, all)
	total, _ := sum()
	if total != n {
		t.Errorf("the group received %d deliveries of %d messages: duplicates", total, n)
	}
	busy := 0
	for _, r := range group {
		if tot, _, _ := r.counts(); tot > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("only %d of 3 group members got messages", busy)
	}
}

func testTwoQueueGroups(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	a := []*recorder{newRecorder(), newRecorder()}
	b := []*recorder{newRecorder(), newRecorder()}
	for i, r := range a {
		subscribe(t, sub(i), tp, r, broker.Queue("a"))
	}
	for i, r := range b {
		subscribe(t, sub(2+i), tp, r, broker.Queue("b"))
	}
	s.ready(t, pub, tp, append(a, b...)...)
	const n = 100
	publishN(t, pub, tp, "g", n)
	for name, g := range map[string][]*recorder{"a": a, "b": b} {
		s.waitFor(t, "group "+name+" did not get every message once", func() bool {
			total := 0
			for _, r := range g {
				tot, _, _ := r.counts()
				total += tot
			}
			return total == n
		})
	}
}

func testUnsubscribe(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	gone, stays := newRecorder(), newRecorder()
	sg := subscribe(t, sub(0), tp, gone)
	subscribe(t, sub(1), tp, stays)
	s.ready(t, pub, tp, gone, stays)
	if sg.Topic() != tp {
		t.Errorf("Subscriber.Topic = %q, want %q", sg.Topic(), tp)
	}
	if err := sg.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	publishN(t, pub, tp, "u", 10)
	s.waitFor(t, "the remaining subscriber did not get the messages", func() bool { _, d, _ := stays.counts(); return d == 10 })
	s.settle(t, pub, tp, stays)
	if n, _, _ := gone.counts(); n != 0 {
		t.Errorf("%d messages reached a subscriber after Unsubscribe", n)
	}
}

func testTopicIsolation(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	ta, tb := topic(t)+".a", topic(t)+".b"
	ra, rb := newRecorder(), newRecorder()
	subscribe(t, sub(0), ta, ra)
	subscribe(t, sub(1), tb, rb)
	s.ready(t, pub, ta, ra)
	s.ready(t, pub, tb, rb)
	publishN(t, pub, ta, "a", 5)
	publishN(t, pub, tb, "b", 7)
	s.waitFor(t, "topic a's messages", func() bool { _, d, _ := ra.counts(); return d == 5 })
	s.waitFor(t, "topic b's messages", func() bool { _, d, _ := rb.counts(); return d == 7 })
	s.settle(t, pub, ta, ra)
	s.settle(t, pub, tb, rb)
	if n, _, _ := ra.counts(); n != 5 {
		t.Errorf("topic a's subscriber got %d messages, want 5", n)
	}
	if n, _, _ := rb.counts(); n != 7 {
		t.Errorf("topic b's subscriber got %d messages, want 7", n)
	}
}

func testHandlerError(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	r := newRecorder()
	r.fail = func(id string) error {
		if id == "bad" {
			return errors.New("brokertest: handler failed")
		}
		return nil
	}
	subscribe(t, sub(0), tp, r)
	s.ready(t, pub, tp, r)
	err := pub.Publish(tp, msg("bad", []byte("x")))
	if s.SyncErrors && err == nil {
		t.Error("Publish returned nil although the subscriber's handler failed")
	}
	if !s.SyncErrors && err != nil {
		t.Errorf("Publish: %v", err)
	}
	if err := pub.Publish(tp, msg("good", []byte("y"))); err != nil {
		t.Fatalf("Publish after a handler error: %v", err)
	}
	s.waitFor(t, "the subscription stopped after a handler error", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.ids["good"] > 0
	})
}

func testConcurrentPublishers(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	r := newRecorder()
	subscribe(t, sub(0), tp, r)
	s.ready(t, pub, tp, r)
	const publishers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("p%d-%d", p, i)
				if err := pub.Publish(tp, msg(id, []byte(id))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Publish: %v", err)
	}
	s.waitFor(t, "messages of concurrent publishers lost", func() bool { _, d, _ := r.counts(); return d == publishers*each })
}

func testManualAck(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	r := newRecorder()
	r.ack = true
	so := subscribe(t, sub(0), tp, r, broker.DisableAutoAck())
	if so.Options().AutoAck {
		t.Error("Subscriber.Options().AutoAck is true with DisableAutoAck")
	}
	s.ready(t, pub, tp, r)
	publishN(t, pub, tp, "k", 10)
	s.waitFor(t, "manually acked messages", func() bool { _, d, _ := r.counts(); return d == 10 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ackErr != nil {
		t.Errorf("Ack: %v", r.ackErr)
	}
}

func testSubscribeContext(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gone, stays := newRecorder(), newRecorder()
	subscribe(t, sub(0), tp, gone, broker.SubscribeContext(ctx))
	subscribe(t, sub(1), tp, stays)
	s.ready(t, pub, tp, gone, stays)
	cancel()
	// the subscription ends when its context does, possibly a moment later: wait until
	// the remaining subscriber has seen a probe published after the cancel that the
	// cancelled one missed
	s.waitFor(t, "a subscription outlived its context", func() bool {
		_, _, before := gone.counts()
		s.settle(t, pub, tp, stays)
		_, _, after := gone.counts()
		return after == before
	})
	_, _, base := gone.counts()
	publishN(t, pub, tp, "c", 10)
	s.waitFor(t, "the remaining subscriber", func() bool { _, d, _ := stays.counts(); return d == 10 })
	s.settle(t, pub, tp, stays)
	if n, _, p := gone.counts(); n != 0 || p != base {
		t.Errorf("%d messages reached a subscriber whose context ended", n)
	}
}

func testReconnect(t *testing.T, s Suite) {
	b := s.New(t)
	for round := 0; round < 2; round++ {
		if err := b.Connect(); err != nil {
			t.Fatalf("Connect (round %d): %v", round, err)
		}
		tp := topic(t)
		r := newRecorder()
		sub, err := b.Subscribe(tp, r.handler)
		if err != nil {
			t.Fatalf("Subscribe (round %d): %v", round, err)
		}
		s.ready(t, b, tp, r)
		publishN(t, b, tp, "r", 3)
		s.waitFor(t, "messages after reconnecting", func() bool { _, d, _ := r.counts(); return d == 3 })
		_ = sub.Unsubscribe()
		if err := b.Disconnect(); err != nil {
			t.Fatalf("Disconnect (round %d): %v", round, err)
		}
	}
}

func testLargeMessage(t *testing.T, s Suite) {
	pub, sub := s.pair(t)
	tp := topic(t)
	r := newRecorder()
	subscribe(t, sub(0), tp, r)
	s.ready(t, pub, tp, r)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := pub.Publish(tp, msg("big", body)); err != nil {
		t.Fatalf("Publish of 1 MiB: %v", err)
	}
	s.waitFor(t, "the 1 MiB message", func() bool { n, _, _ := r.counts(); return n == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if !bytes.Equal(r.last.Body, body) {
		t.Errorf("1 MiB body changed: %d bytes back", len(r.last.Body))
	}
}
