package rabbitmq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/brokertest"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
)

func TestConformance(t *testing.T) {
	requireRabbit(t)
	var mu sync.Mutex
	recorders := map[testing.TB]*queueRecorder{}
	brokertest.Run(t, brokertest.Suite{
		New: func(t testing.TB) broker.Broker {
			mu.Lock()
			defer mu.Unlock()
			rec := recorders[t]
			if rec == nil {
				// registered before any of the test's brokers connects, so it runs after
				// they have all disconnected (a deleted queue with a consumer would be
				// declared again)
				rec = &queueRecorder{}
				recorders[t] = rec
				t.Cleanup(func() { rec.deleteAll(t) })
			}
			return &recordingBroker{Broker: newBroker(t), rec: rec}
		},
		Shared: true,
	})
}

// recordingBroker records the group queues its subscriptions declare, which outlive
// their members, so that the test can delete them.
type recordingBroker struct {
	broker.Broker
	rec *queueRecorder
}

func (b *recordingBroker) Subscribe(topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if o := broker.NewSubscribeOptions(opts...); o.Queue != "" && topic != "" {
		b.rec.mu.Lock()
		b.rec.names = append(b.rec.names, groupQueue(o.Queue, topic))
		b.rec.mu.Unlock()
	}
	return b.Broker.Subscribe(topic, h, opts...)
}

type queueRecorder struct {
	mu    sync.Mutex
	names []string
}

func (r *queueRecorder) deleteAll(t testing.TB) {
	r.mu.Lock()
	names := r.names
	r.mu.Unlock()
	if len(names) == 0 {
		return
	}
	conn, err := amqp.Dial(rabbitURL())
	if err != nil {
		t.Errorf("delete the suite's queues: %v", err)
		return
	}
	defer conn.Close()
	for _, q := range names {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
			_ = ch.Close()
		}
	}
}

func TestErrors(t *testing.T) {
	b := newBroker(t)
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish before Connect: %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe("t", func(broker.Event) error { return nil }); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Subscribe before Connect: %v, want ErrNotConnected", err)
	}
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(); err != nil {
		t.Errorf("second Connect: %v", err)
	}
	if err := b.Init(rabbitmq.PrefetchCount(3)); !errors.Is(err, broker.ErrConnected) {
		t.Errorf("Init while connected: %v, want ErrConnected", err)
	}
	if err := b.Publish("", &broker.Message{}); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Publish to an empty topic: %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe("", func(broker.Event) error { return nil }); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Subscribe to an empty topic: %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe("t", nil); !errors.Is(err, broker.ErrMissingHandler) {
		t.Errorf("Subscribe with a nil handler: %v, want ErrMissingHandler", err)
	}
	if b.String() != "rabbitmq" {
		t.Errorf("String = %q", b.String())
	}
	if a := b.Address(); strings.Contains(a, "guest:guest") || !strings.HasPrefix(a, "amqp") {
		t.Errorf("Address = %q: want the URL with its password hidden", a)
	}
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := b.Disconnect(); err != nil {
		t.Errorf("second Disconnect: %v", err)
	}
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish after Disconnect: %v, want ErrNotConnected", err)
	}
	if err := b.Init(rabbitmq.PrefetchCount(3)); err != nil {
		t.Errorf("Init after Disconnect: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []broker.Option
	}{
		{"negative prefetch", []broker.Option{rabbitmq.PrefetchCount(-1)}},
		{"prefetch too large", []broker.Option{rabbitmq.PrefetchCount(70000)}},
		{"negative timeout", []broker.Option{rabbitmq.Timeout(-time.Second)}},
		{"bad delivery mode", []broker.Option{rabbitmq.MessageDeliveryMode(7)}},
		{"long exchange name", []broker.Option{rabbitmq.ExchangeName(strings.Repeat("x", 256))}},
		{"bad URL", []broker.Option{broker.Addrs("http://127.0.0.1:5672")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := rabbitmq.NewBroker(tc.opts...)
			if err := b.Connect(); !errors.Is(err, rabbitmq.ErrInvalidOption) {
				_ = b.Disconnect()
				t.Errorf("Connect: %v, want ErrInvalidOption", err)
			}
			if err := rabbitmq.NewBroker().Init(tc.opts...); !errors.Is(err, rabbitmq.ErrInvalidOption) {
				t.Errorf("Init: %v, want ErrInvalidOption", err)
			}
		})
	}
}

// TestConnectUnreachable: no server → ErrUnavailable within Timeout, nothing left running.
func TestConnectUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := rabbitmq.NewBroker(broker.Addrs("amqp://guest:guest@127.0.0.1:1/"), rabbitmq.Timeout(time.Second))
	start := time.Now()
	err := b.Connect()
	if !errors.Is(err, rabbitmq.ErrUnavailable) {
		t.Fatalf("Connect to a closed port: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Connect took %s, want ≤ Timeout (1 s)", d)
	}
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish after a failed Connect: %v, want ErrNotConnected", err)
	}
}

// TestConnectExchangeMismatch: an exchange that exists with another type fails Connect
// with a message naming it, and the connection is not left open.
func TestConnectExchangeMismatch(t *testing.T) {
	a := newAdmin(t, "")
	ex := "micro-test-" + unique()
	if err := a.do(func(ch *amqp.Channel) error { return ch.ExchangeDeclare(ex, "fanout", false, false, false, false, nil) }); err != nil {
		t.Fatal(err)
	}
	a.deleteExchangeLater(ex)
	b := newBroker(t, rabbitmq.ExchangeName(ex))
	err := b.Connect()
	if err == nil {
		_ = b.Disconnect()
		t.Fatal("Connect succeeded on an exchange of another type")
	}
	if !strings.Contains(err.Error(), ex) || !strings.Contains(err.Error(), "another type") {
		t.Errorf("Connect: %v: want the exchange named and the mismatch explained", err)
	}
}

// TestBadInput: names and headers AMQP cannot carry fail alone with a clear error, and the
// broker keeps working.
func TestBadInput(t *testing.T) {
	b := connected(t)
	tp := topicFor(t)
	got := make(chan *broker.Message, 16)
	if _, err := b.Subscribe(tp, func(e broker.Event) error { got <- e.Message(); return nil }); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", 256)
	for _, tc := range []struct {
		name  string
		topic string
		msg   *broker.Message
	}{
		{"long topic", strings.Repeat("t", 256), &broker.Message{}},
		{"long header name", tp, &broker.Message{Header: map[string]string{long: "v"}}},
		{"huge headers", tp, &broker.Message{Header: map[string]string{"X-Big": strings.Repeat("v", 200<<10)}}},
	} {
		err := b.Publish(tc.topic, tc.msg)
		if !errors.Is(err, rabbitmq.ErrMessageTooLarge) {
			t.Errorf("%s: Publish: %v, want ErrMessageTooLarge", tc.name, err)
		}
	}
	if _, err := b.Subscribe(strings.Repeat("t", 256), func(broker.Event) error { return nil }); !errors.Is(err, rabbitmq.ErrMessageTooLarge) {
		t.Errorf("Subscribe to a long topic: %v, want ErrMessageTooLarge", err)
	}
	if _, err := b.Subscribe(tp, func(broker.Event) error { return nil }, broker.Queue(strings.Repeat("q", 250))); !errors.Is(err, rabbitmq.ErrMessageTooLarge) {
		t.Errorf("Subscribe with a long queue name: %v, want ErrMessageTooLarge", err)
	}
	_, err := b.Subscribe(tp, func(broker.Event) error { return nil }, broker.Queue("q"+unique()),
		rabbitmq.QueueArguments(map[string]interface{}{"x-bad": struct{}{}}))
	if err == nil {
		t.Error("Subscribe with a queue argument AMQP cannot encode succeeded")
	}
	// a nil message, an empty body and a nil header are fine; the broker still works
	if err := b.Publish(tp, nil); err != nil {
		t.Errorf("Publish(nil): %v", err)
	}
	if err := b.Publish(tp, &broker.Message{Header: map[string]string{"A": ""}, Body: []byte("ok")}); err != nil {
		t.Fatalf("Publish after bad input: %v", err)
	}
	// headers just within one frame are fine
	if err := b.Publish(tp, &broker.Message{Header: map[string]string{"X-Big": strings.Repeat("v", 120<<10)}, Body: []byte("big")}); err != nil {
		t.Fatalf("Publish of 120 KiB of headers: %v", err)
	}
	for _, want := range []string{"", "ok", "big"} {
		select {
		case m := <-got:
			if string(m.Body) != want {
				t.Errorf("body %q, want %q", m.Body, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %q not delivered after bad input", want)
		}
	}
}

// TestQueueMismatch: a group queue that exists with other settings fails Subscribe with
// the server's reason, and other subscriptions are unaffected.
func TestQueueMismatch(t *testing.T) {
	b := connected(t)
	a := newAdmin(t, "")
	tp, q := topicFor(t), "g"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	s, err := b.Subscribe(tp, func(broker.Event) error { return nil }, broker.Queue(q))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Unsubscribe()
	_, err = b.Subscribe(tp, func(broker.Event) error { return nil }, broker.Queue(q), rabbitmq.DurableQueue())
	if err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("Subscribe with the other durability: %v, want an error explaining the mismatch", err)
	}
	if err := b.Publish(tp, &broker.Message{Body: []byte("x")}); err != nil {
		t.Errorf("Publish after a refused Subscribe: %v", err)
	}
}

// TestOptionsTravel: the AMQP properties and the routing options of this package reach the
// server, checked with a plain AMQP consumer; headers come back as strings.
func TestOptionsTravel(t *testing.T) {
	b := connected(t)
	a := newAdmin(t, "")
	tp := topicFor(t)
	var q amqp.Queue
	var dl <-chan amqp.Delivery
	ch, err := a.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if q, err = ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, tp, rabbitmq.DefaultExchangeName, false, nil); err != nil {
		t.Fatal(err)
	}
	if dl, err = ch.Consume(q.Name, "", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	err = b.Publish(tp, &broker.Message{Header: map[string]string{"H": "v"}, Body: []byte{0, 1, 2}},
		rabbitmq.ContentType("application/x"), rabbitmq.Priority(3), rabbitmq.MessageId("m1"),
		rabbitmq.CorrelationID("c1"), rabbitmq.ReplyTo("r1"), rabbitmq.TypeMsg("ty"), rabbitmq.AppID("app"),
		rabbitmq.Timestamp(ts), rabbitmq.Expiration("60000"), rabbitmq.ContentEncoding("gzip"),
		rabbitmq.DeliveryMode(amqp.Transient))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dl:
		if d.ContentType != "application/x" || d.Priority != 3 || d.MessageId != "m1" || d.CorrelationId != "c1" ||
			d.ReplyTo != "r1" || d.Type != "ty" || d.AppId != "app" || !d.Timestamp.Equal(ts) || d.Expiration != "60000" ||
			d.ContentEncoding != "gzip" || d.DeliveryMode != amqp.Transient {
			t.Errorf("properties did not travel: %+v", d)
		}
		if d.Headers["H"] != "v" || string(d.Body) != "\x00\x01\x02" {
			t.Errorf("headers %v body %q", d.Headers, d.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	// the default delivery mode is persistent
	if err := b.Publish(tp, &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-dl:
		if d.DeliveryMode != amqp.Persistent {
			t.Errorf("default delivery mode %d, want persistent", d.DeliveryMode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	// a foreign publisher's typed headers and content type reach a subscriber as strings
	got := make(chan *broker.Message, 1)
	tp2 := topicFor(t)
	if _, err := b.Subscribe(tp2, func(e broker.Event) error { got <- e.Message(); return nil }); err != nil {
		t.Fatal(err)
	}
	err = ch.PublishWithContext(context.Background(), rabbitmq.DefaultExchangeName, tp2, false, false, amqp.Publishing{
		ContentType: "text/plain",
		Headers:     amqp.Table{"n": int32(-7), "f": true, "b": []byte("raw"), "d": amqp.Decimal{Scale: 2, Value: 1234}},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		want := map[string]string{"n": "-7", "f": "true", "b": "raw", "d": "12.34", "Content-Type": "text/plain"}
		for k, v := range want {
			if m.Header[k] != v {
				t.Errorf("header %s = %q, want %q (all: %v)", k, m.Header[k], v, m.Header)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery of the foreign message")
	}
}

// TestHeadersExchange: ExchangeType and Headers route on message headers.
func TestHeadersExchange(t *testing.T) {
	a := newAdmin(t, "")
	ex := "micro-test-h-" + unique()
	a.deleteExchangeLater(ex)
	b := connected(t, rabbitmq.ExchangeName(ex), rabbitmq.ExchangeType(rabbitmq.ExchangeTypeHeaders))
	var red, all atomic.Int32
	if _, err := b.Subscribe("any", func(broker.Event) error { red.Add(1); return nil },
		rabbitmq.Headers(map[string]interface{}{"x-match": "all", "Color": "red"})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe("any", func(broker.Event) error { all.Add(1); return nil },
		rabbitmq.Headers(map[string]interface{}{"x-match": "any"})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"red", "blue", "red"} {
		if err := b.Publish("ignored", &broker.Message{Header: map[string]string{"Color": c}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "two red messages", func() bool { return red.Load() == 2 })
	if n := all.Load(); n != 0 {
		t.Errorf("a binding with x-match any and no header got %d messages", n)
	}
}

// TestDisconnectBaseline: after Disconnect every goroutine the broker started has ended,
// including those of subscriptions (broadcast, group, with a context) and reconnects.
func TestDisconnectBaseline(t *testing.T) {
	a := newAdmin(t, "")
	ignore := goleak.IgnoreCurrent()
	b := newBroker(t)
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	tp, q := topicFor(t), "g"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	var n atomic.Int32
	h := func(broker.Event) error { n.Add(1); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, opts := range [][]broker.SubscribeOption{nil, {broker.Queue(q)}, {broker.SubscribeContext(ctx)}, {rabbitmq.SubscribeContext(ctx)}} {
		if _, err := b.Subscribe(tp, h, opts...); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if err := b.Publish(tp, &broker.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "deliveries", func() bool { return n.Load() == 40 })
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore)
}

// TestSubscribeContextOption: this package's SubscribeContext keeps the options given
// before it (here DurableQueue), and ending it unsubscribes.
func TestSubscribeContextOption(t *testing.T) {
	b := connected(t)
	a := newAdmin(t, "")
	tp, q := topicFor(t), "g"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	if _, err := b.Subscribe(tp, func(broker.Event) error { n.Add(1); return nil },
		broker.Queue(q), rabbitmq.DurableQueue(), rabbitmq.SubscribeContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := a.do(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclarePassive(groupQueue(q, tp), true, false, false, false, nil)
		return err
	}); err != nil {
		t.Errorf("the group queue is not durable: %v", err)
	}
	if err := b.Publish(tp, &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a delivery", func() bool { return n.Load() == 1 })
	cancel()
	// once the subscription has ended, the queue (which outlives it) keeps the messages
	waitFor(t, 5*time.Second, "the consumer to go", func() bool {
		consumers := -1
		_ = a.do(func(ch *amqp.Channel) error {
			qi, err := ch.QueueDeclarePassive(groupQueue(q, tp), true, false, false, false, nil)
			consumers = qi.Consumers
			return err
		})
		return consumers == 0
	})
	if err := b.Publish(tp, &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the message to wait in the queue", func() bool { return a.messages(groupQueue(q, tp)) == 1 })
	if got := n.Load(); got != 1 {
		t.Errorf("%d deliveries after the context ended", got-1)
	}
}

// TestManualAck: with DisableAutoAck a message the handler does not Ack is delivered again
// once the subscription's channel closes, and one it Acks is not; a second Ack is a no-op.
func TestManualAck(t *testing.T) {
	a := newAdmin(t, "")
	tp, q := topicFor(t), "g"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	b := connected(t)
	type seen struct {
		id  string
		ack error
	}
	got := make(chan seen, 16)
	sub, err := b.Subscribe(tp, func(e broker.Event) error {
		id := e.Message().Header["id"]
		var err error
		if id == "acked" {
			err = e.Ack()
			if err2 := e.Ack(); err2 != nil {
				err = err2
			}
		}
		got <- seen{id, err}
		return nil
	}, broker.Queue(q), broker.DisableAutoAck())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acked", "unacked"} {
		if err := b.Publish(tp, &broker.Message{Header: map[string]string{"id": id}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case s := <-got:
			if s.ack != nil {
				t.Errorf("Ack: %v", s.ack)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no delivery")
		}
	}
	_ = sub.Unsubscribe()
	waitFor(t, 5*time.Second, "the unacked message back in the queue", func() bool { return a.messages(groupQueue(q, tp)) == 1 })
	if _, err := b.Subscribe(tp, func(e broker.Event) error {
		got <- seen{id: e.Message().Header["id"]}
		return nil
	}, broker.Queue(q)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s.id != "unacked" {
			t.Errorf("redelivered %q, want the unacked message", s.id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unacked message was not delivered again")
	}
}

// TestHandlerErrorRedelivery: a handler error (or panic) returns the message to the queue
// and it is delivered again until the handler succeeds; the ErrorHandler sees each
// failure. With NoRequeueOnError a failed message is not delivered again.
func TestHandlerErrorRedelivery(t *testing.T) {
	a := newAdmin(t, "")
	var failures atomic.Int32
	b := connected(t, broker.ErrorHandler(func(e broker.Event) error {
		if e.Error() == nil {
			t.Error("ErrorHandler called with an event without an error")
		}
		failures.Add(1)
		return nil
	}))
	t.Run("requeue", func(t *testing.T) {
		tp, q := topicFor(t), "g"+unique()
		a.deleteQueueLater(t, groupQueue(q, tp))
		var calls atomic.Int32
		subscribe(t, b, tp, func(e broker.Event) error {
			switch calls.Add(1) {
			case 1, 2:
				return errors.New("transient failure")
			case 3:
				panic("handler panic")
			}
			return nil
		}, broker.Queue(q))
		failures.Store(0)
		if err := b.Publish(tp, &broker.Message{Body: []byte("retry me")}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the fourth delivery", func() bool { return calls.Load() == 4 })
		if f := failures.Load(); f != 3 {
			t.Errorf("ErrorHandler called %d times, want 3", f)
		}
		waitFor(t, 5*time.Second, "an empty queue", func() bool { return a.messages(groupQueue(q, tp)) == 0 })
		if c := calls.Load(); c != 4 {
			t.Errorf("%d deliveries, want 4", c)
		}
	})
	t.Run("no requeue", func(t *testing.T) {
		tp, q := topicFor(t), "g"+unique()
		a.deleteQueueLater(t, groupQueue(q, tp))
		got := make(chan string, 16)
		subscribe(t, b, tp, func(e broker.Event) error {
			id := string(e.Message().Body)
			got <- id
			if id == "bad" {
				return errors.New("permanent failure")
			}
			return nil
		}, broker.Queue(q), rabbitmq.NoRequeueOnError())
		for _, id := range []string{"bad", "m1"} {
			if err := b.Publish(tp, &broker.Message{Body: []byte(id)}); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if g != id {
					t.Fatalf("got %q, want %q: the failed message came back", g, id)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s not delivered", id)
			}
		}
		if err := b.Publish(tp, &broker.Message{Body: []byte("m2")}); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != "m2" {
				t.Errorf("got %q, want m2: the failed message was delivered again", g)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("m2 not delivered")
		}
	})
}

// TestBinaryRoundTrip: header names and values and bodies of any bytes arrive unchanged.
func TestBinaryRoundTrip(t *testing.T) {
	b := connected(t)
	tp := topicFor(t)
	got := make(chan *broker.Message, 1)
	subscribe(t, b, tp, func(e broker.Event) error { got <- e.Message(); return nil })
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	h := map[string]string{"\x00key é": "\x00\xff\xfe value", "Empty": "", strings.Repeat("n", 255): strings.Repeat("\xff", 4096)}
	if err := b.Publish(tp, &broker.Message{Header: h, Body: body}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Body) != string(body) {
			t.Errorf("body changed: % x", m.Body)
		}
		if len(m.Header) != len(h) {
			t.Errorf("headers %q, want %q", m.Header, h)
		}
		for k, v := range h {
			if m.Header[k] != v {
				t.Errorf("header %q = %q, want %q", k, m.Header[k], v)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
}
