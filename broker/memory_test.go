package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/brokertest"
	"github.com/seed-b3892490/micro/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connected returns a connected memory broker, disconnected at the end of the test.
func connected(t testing.TB, opts ...broker.Option) broker.Broker {
	t.Helper()
	b := broker.NewMemoryBroker(opts...)
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	return b
}

// subscribe subscribes h and fails the test on error.
func subscribe(t testing.TB, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscriber {
	t.Helper()
	s, err := b.Subscribe(topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return s
}

// publish publishes body to topic and fails the test on error.
func publish(t testing.TB, b broker.Broker, topic, body string) {
	t.Helper()
	if err := b.Publish(topic, &broker.Message{Body: []byte(body)}); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// counter returns a handler counting its deliveries into n.
func counter(n *atomic.Int64) broker.Handler {
	return func(broker.Event) error { n.Add(1); return nil }
}

func TestString(t *testing.T) {
	for b, want := range map[broker.Broker]string{broker.NewMemoryBroker(): "memory", broker.NewBroker(): "http", broker.DefaultBroker: "http"} {
		if got := b.String(); got != want {
			t.Errorf("String() = %q, want %s", got, want)
		}
		if got := b.Address(); got != "" {
			t.Errorf("Address() of an unconnected %s broker = %q, want empty", want, got)
		}
	}
	if got := broker.String(); got != "http" {
		t.Errorf("broker.String() = %q, want http", got)
	}
}

func TestBroadcast(t *testing.T) {
	b := connected(t)
	const subs, msgs = 5, 20
	got := make([][]string, subs)
	for i := range subs {
		subscribe(t, b, "orders", func(e broker.Event) error {
			if e.Topic() != "orders" {
				t.Errorf("Topic() = %q", e.Topic())
			}
			got[i] = append(got[i], string(e.Message().Body))
			return nil
		})
	}
	var other atomic.Int64
	subscribe(t, b, "other", counter(&other))
	for j := range msgs {
		publish(t, b, "orders", fmt.Sprint(j))
	}
	for i := range subs {
		if len(got[i]) != msgs {
			t.Fatalf("subscriber %d got %d messages, want %d", i, len(got[i]), msgs)
		}
		for j, body := range got[i] {
			if body != fmt.Sprint(j) {
				t.Fatalf("subscriber %d message %d = %q", i, j, body)
			}
		}
	}
	if other.Load() != 0 {
		t.Fatalf("a subscriber of another topic got %d messages", other.Load())
	}
}

func TestPublishWithoutSubscribers(t *testing.T) {
	b := connected(t)
	publish(t, b, "nobody", "x")
}

func TestQueueGroupDeliversOnceAndSpreads(t *testing.T) {
	b := connected(t)
	const members, msgs = 3, 300
	counts := make([]atomic.Int64, members)
	for i := range counts {
		s := subscribe(t, b, "jobs", counter(&counts[i]), broker.Queue("workers"))
		if s.Options().Queue != "workers" || s.Topic() != "jobs" {
			t.Fatalf("Options().Queue = %q, Topic() = %q", s.Options().Queue, s.Topic())
		}
	}
	for range msgs {
		publish(t, b, "jobs", "j")
	}
	var total int64
	for i := range counts {
		n := counts[i].Load()
		total += n
		if n != msgs/members { // one publisher: round robin is exact
			t.Errorf("member %d got %d messages, want %d", i, n, msgs/members)
		}
	}
	if total != msgs {
		t.Fatalf("group got %d messages, want %d", total, msgs)
	}
}

func TestQueueGroupAfterMemberLeaves(t *testing.T) {
	b := connected(t)
	var a, c atomic.Int64
	sa := subscribe(t, b, "jobs", counter(&a), broker.Queue("q"))
	subscribe(t, b, "jobs", counter(&c), broker.Queue("q"))
	if err := sa.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		publish(t, b, "jobs", "j")
	}
	if a.Load() != 0 || c.Load() != 10 {
		t.Fatalf("left member got %d, remaining member got %d; want 0 and 10", a.Load(), c.Load())
	}
}

func TestBroadcastAndQueueGroupsMixed(t *testing.T) {
	b := connected(t)
	const msgs = 60
	var bc1, bc2 atomic.Int64
	subscribe(t, b, "t", counter(&bc1))
	subscribe(t, b, "t", counter(&bc2))
	ga := make([]atomic.Int64, 2)
	gb := make([]atomic.Int64, 3)
	for i := range ga {
		subscribe(t, b, "t", counter(&ga[i]), broker.Queue("a"))
	}
	for i := range gb {
		subscribe(t, b, "t", counter(&gb[i]), broker.Queue("b"))
	}
	for range msgs {
		publish(t, b, "t", "m")
	}
	if bc1.Load() != msgs || bc2.Load() != msgs {
		t.Fatalf("broadcast subscribers got %d and %d, want %d", bc1.Load(), bc2.Load(), msgs)
	}
	for name, g := range map[string][]atomic.Int64{"a": ga, "b": gb} {
		for i := range g {
			if n := g[i].Load(); n != int64(msgs/len(g)) {
				t.Errorf("group %s member %d got %d, want %d", name, i, n, msgs/len(g))
			}
		}
	}
}

func TestHandlerErrorsReachPublisher(t *testing.T) {
	var mu sync.Mutex
	var failed []broker.Event
	b := connected(t, broker.ErrorHandler(func(e broker.Event) error {
		mu.Lock()
		failed = append(failed, e)
		mu.Unlock()
		return errors.New("ignored")
	}))
	boom1, boom2 := errors.New("boom1"), errors.New("boom2")
	var before, after, queued atomic.Int64
	subscribe(t, b, "t", counter(&before))
	subscribe(t, b, "t", func(broker.Event) error { return boom1 })
	subscribe(t, b, "t", counter(&after))
	subscribe(t, b, "t", func(broker.Event) error { queued.Add(1); return boom2 }, broker.Queue("q"))

	err := b.Publish("t", &broker.Message{Body: []byte("x")})
	if !errors.Is(err, boom1) || !errors.Is(err, boom2) {
		t.Fatalf("Publish error = %v, want both handler errors", err)
	}
	if before.Load() != 1 || after.Load() != 1 || queued.Load() != 1 {
		t.Fatalf("deliveries: before %d, after %d, queued %d; want 1 each", before.Load(), after.Load(), queued.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 2 {
		t.Fatalf("ErrorHandler got %d events, want 2", len(failed))
	}
	for i, want := range []error{boom1, boom2} {
		e := failed[i]
		if e.Error() != want || e.Topic() != "t" || string(e.Message().Body) != "x" {
			t.Errorf("failed event %d: Error %v, Topic %q, Body %q", i, e.Error(), e.Topic(), e.Message().Body)
		}
	}
}

func TestHandlerErrorWithoutErrorHandler(t *testing.T) {
	b := connected(t)
	boom := errors.New("boom")
	var ok atomic.Int64
	subscribe(t, b, "t", func(e broker.Event) error {
		if e.Error() != nil {
			t.Errorf("Error() before the handler returned = %v", e.Error())
		}
		return boom
	})
	subscribe(t, b, "t", counter(&ok))
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, boom) {
		t.Fatalf("Publish error = %v, want %v", err, boom)
	}
	if ok.Load() != 1 {
		t.Fatalf("other subscriber got %d messages, want 1", ok.Load())
	}
}

func TestNotConnected(t *testing.T) {
	b := broker.NewMemoryBroker()
	h := func(broker.Event) error { return nil }
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish before Connect = %v, want ErrNotConnected", err)
	}
	if s, err := b.Subscribe("t", h); !errors.Is(err, broker.ErrNotConnected) || s != nil {
		t.Errorf("Subscribe before Connect = %v, %v; want nil, ErrNotConnected", s, err)
	}
	if err := b.Disconnect(); err != nil {
		t.Errorf("Disconnect while disconnected = %v", err)
	}
}

func TestMissingTopicAndHandler(t *testing.T) {
	b := connected(t)
	if err := b.Publish("", &broker.Message{}); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Publish(\"\") = %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe("", func(broker.Event) error { return nil }); !errors.Is(err, broker.ErrMissingTopic) {
		t.Errorf("Subscribe(\"\") = %v, want ErrMissingTopic", err)
	}
	if _, err := b.Subscribe("t", nil); !errors.Is(err, broker.ErrMissingHandler) {
		t.Errorf("Subscribe(nil handler) = %v, want ErrMissingHandler", err)
	}
}

func TestNilMessage(t *testing.T) {
	b := connected(t)
	var got *broker.Message
	subscribe(t, b, "t", func(e broker.Event) error { got = e.Message(); return nil })
	if err := b.Publish("t", nil); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Header != nil || got.Body != nil {
		t.Fatalf("nil message delivered as %+v, want an empty Message", got)
	}
}

func TestUnsubscribe(t *testing.T) {
	b := connected(t)
	var n, other atomic.Int64
	s := subscribe(t, b, "t", counter(&n))
	subscribe(t, b, "t", counter(&other))
	publish(t, b, "t", "1")
	for range 2 { // idempotent
		if err := s.Unsubscribe(); err != nil {
			t.Fatalf("Unsubscribe: %v", err)
		}
	}
	publish(t, b, "t", "2")
	if n.Load() != 1 || other.Load() != 2 {
		t.Fatalf("unsubscribed got %d (want 1), other got %d (want 2)", n.Load(), other.Load())
	}
}

func TestUnsubscribeFromHandler(t *testing.T) {
	b := connected(t)
	var n atomic.Int64
	var s broker.Subscriber
	s = subscribe(t, b, "t", func(broker.Event) error {
		n.Add(1)
		return s.Unsubscribe()
	})
	publish(t, b, "t", "1")
	publish(t, b, "t", "2")
	if n.Load() != 1 {
		t.Fatalf("got %d deliveries, want 1", n.Load())
	}
}

func TestHandlerMayUseBroker(t *testing.T) {
	b := connected(t)
	var echoed atomic.Int64
	subscribe(t, b, "echo", counter(&echoed))
	subscribe(t, b, "in", func(e broker.Event) error {
		s, err := b.Subscribe("late", func(broker.Event) error { return nil })
		if err != nil {
			return err
		}
		defer s.Unsubscribe()
		return b.Publish("echo", e.Message())
	})
	publish(t, b, "in", "x")
	if echoed.Load() != 1 {
		t.Fatalf("echo got %d messages, want 1", echoed.Load())
	}
}

func TestDisconnectAndReconnect(t *testing.T) {
	b := connected(t)
	var old, fresh atomic.Int64
	s := subscribe(t, b, "t", counter(&old))
	subscribe(t, b, "t", counter(&old), broker.Queue("q"))
	if err := b.Init(broker.Addrs("x:1")); !errors.Is(err, broker.ErrConnected) {
		t.Fatalf("Init while connected = %v, want ErrConnected", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Publish after Disconnect = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe("t", counter(&fresh)); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Subscribe after Disconnect = %v, want ErrNotConnected", err)
	}
	if err := b.Init(broker.Addrs("x:1")); err != nil {
		t.Fatalf("Init while disconnected: %v", err)
	}
	if got := b.Options().Addrs; len(got) != 1 || got[0] != "x:1" {
		t.Fatalf("Options().Addrs = %v after Init", got)
	}
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	subscribe(t, b, "t", counter(&fresh))
	if err := s.Unsubscribe(); err != nil { // a subscription Disconnect removed
		t.Fatal(err)
	}
	publish(t, b, "t", "m")
	if old.Load() != 0 || fresh.Load() != 1 {
		t.Fatalf("old subscriptions got %d (want 0), new got %d (want 1)", old.Load(), fresh.Load())
	}
}

func TestMessageIsolation(t *testing.T) {
	b := connected(t)
	var seen []string
	for i := range 3 {
		var opts []broker.SubscribeOption
		if i == 2 {
			opts = append(opts, broker.Queue("q")) // a queue member gets its own copy too
		}
		subscribe(t, b, "t", func(e broker.Event) error {
			m := e.Message()
			seen = append(seen, m.Header["k"]+"/"+string(m.Body))
			m.Header["k"] = "changed"
			m.Header["added"] = "yes"
			m.Body[0] = 'X'
			return nil
		}, opts...)
	}
	msg := &broker.Message{Header: map[string]string{"k": "v"}, Body: []byte("body")}
	if err := b.Publish("t", msg); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d deliveries, want 3", len(seen))
	}
	for i, s := range seen {
		if s != "v/body" {
			t.Errorf("handler %d saw %q, want v/body", i, s)
		}
	}
	if len(msg.Header) != 1 || msg.Header["k"] != "v" || string(msg.Body) != "body" {
		t.Fatalf("publisher's message changed: %+v", msg)
	}
}

func TestSubscribeContext(t *testing.T) {
	b := connected(t)
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	subscribe(t, b, "t", counter(&n), broker.SubscribeContext(ctx))
	qctx, qcancel := context.WithCancel(context.Background())
	var q1, q2 atomic.Int64
	subscribe(t, b, "t", counter(&q1), broker.Queue("q"), broker.SubscribeContext(qctx))
	subscribe(t, b, "t", counter(&q2), broker.Queue("q"))
	publish(t, b, "t", "1")
	publish(t, b, "t", "2")
	cancel()
	qcancel()
	for range 4 {
		publish(t, b, "t", "after")
	}
	if n.Load() != 2 || q1.Load() != 1 || q2.Load() != 5 {
		t.Fatalf("deliveries: broadcast %d (want 2), ended member %d (want 1), live member %d (want 5)",
			n.Load(), q1.Load(), q2.Load())
	}

	if _, err := b.Subscribe("t", counter(&n), broker.SubscribeContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with an ended context = %v, want context.Canceled", err)
	}

	// A subscription unsubscribed before its context ends stays unsubscribed.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	s := subscribe(t, b, "u", counter(&n), broker.SubscribeContext(ctx2))
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	cancel2()
}

func TestPublishContext(t *testing.T) {
	b := connected(t)
	var n atomic.Int64
	subscribe(t, b, "t", counter(&n))
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Publish("t", &broker.Message{}, broker.PublishContext(ctx)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := b.Publish("t", &broker.Message{}, broker.PublishContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with an ended context = %v, want context.Canceled", err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d deliveries, want 1", n.Load())
	}
}

func TestDefaultBroker(t *testing.T) {
	if broker.DefaultBroker.String() != "http" || broker.NewBroker().String() != "http" {
		t.Fatalf("the default broker is %s, want http", broker.DefaultBroker)
	}
	// the default HTTP broker on a memory registry (the default one, mDNS, would send
	// multicast from this test)
	old := broker.DefaultBroker
	broker.DefaultBroker = broker.NewHttpBroker(broker.Registry(registry.NewMemoryRegistry()), broker.Addrs("127.0.0.1:0"))
	defer func() { broker.DefaultBroker = old }()
	if err := broker.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("Publish before Connect = %v", err)
	}
	if err := broker.Init(); err != nil {
		t.Fatal(err)
	}
	if err := broker.Connect(); err != nil {
		t.Fatal(err)
	}
	defer broker.Disconnect()
	var n atomic.Int64
	s, err := broker.Subscribe("t", counter(&n))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := broker.Publish("t", &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d deliveries, want 1", n.Load())
	}
}

// TestConcurrentUse publishes while subscriptions come and go. Every message must reach
// the steady broadcast subscriber once, and the queue group, whose two steady members
// are joined and left by others all along, exactly once.
func TestConcurrentUse(t *testing.T) {
	b := connected(t)
	const publishers, churners, msgs = 4, 4, 200
	var steady, group atomic.Int64
	subscribe(t, b, "t", counter(&steady))
	subscribe(t, b, "t", counter(&group), broker.Queue("g"))
	subscribe(t, b, "t", counter(&group), broker.Queue("g"))

	var wg sync.WaitGroup
	done := make(chan struct{})
	for range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var opts []broker.SubscribeOption
				switch i % 3 {
				case 0:
					opts = append(opts, broker.Queue("g"))
				case 1:
					opts = append(opts, broker.Queue("other"))
				}
				h := func(broker.Event) error { return nil }
				if i%3 == 0 {
					h = counter(&group)
				}
				s, err := b.Subscribe("t", h, opts...)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Unsubscribe(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var pubs sync.WaitGroup
	for range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for range msgs {
				if err := b.Publish("t", &broker.Message{Body: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	pubs.Wait()
	close(done)
	wg.Wait()
	if want := int64(publishers * msgs); steady.Load() != want || group.Load() != want {
		t.Fatalf("steady subscriber got %d, queue group got %d; want %d each", steady.Load(), group.Load(), want)
	}
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Suite{
		New:        func(testing.TB) broker.Broker { return broker.NewMemoryBroker() },
		SyncErrors: true,
	})
}

type settingKey struct{}

// SubscribeContext and PublishContext keep what options before them stored in the
// options' context (backend settings), whatever the order.
func TestContextOptionsKeepSettings(t *testing.T) {
	setting := func(o *broker.SubscribeOptions) { o.Context = context.WithValue(o.Context, settingKey{}, "durable") }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, opts := range [][]broker.SubscribeOption{
		{setting, broker.SubscribeContext(ctx)},
		{broker.SubscribeContext(ctx), setting},
	} {
		o := broker.NewSubscribeOptions(opts...)
		if o.Context.Value(settingKey{}) != "durable" {
			t.Fatal("a setting given with SubscribeContext was lost")
		}
		if o.Context.Done() == nil {
			t.Fatal("the subscription's context does not end with ctx")
		}
	}
	var po broker.PublishOptions
	broker.PublishOption(func(o *broker.PublishOptions) { o.Context = context.WithValue(context.Background(), settingKey{}, "p") })(&po)
	broker.PublishContext(ctx)(&po)
	if po.Context.Value(settingKey{}) != "p" || po.Context.Done() == nil {
		t.Fatal("PublishContext lost a setting or the context")
	}
}
