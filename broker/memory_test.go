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
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connected(t testing.TB) broker.Broker {
	b := broker.NewMemoryBroker()
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	return b
}

func TestBroadcastAndQueue(t *testing.T) {
	b := connected(t)
	var bc1, bc2 atomic.Int64
	q := make([]atomic.Int64, 3)
	_, _ = b.Subscribe("t", func(broker.Event) error { bc1.Add(1); return nil })
	_, _ = b.Subscribe("t", func(broker.Event) error { bc2.Add(1); return nil })
	for i := range q {
		i := i
		_, _ = b.Subscribe("t", func(broker.Event) error { q[i].Add(1); return nil }, broker.Queue("workers"))
	}
	for i := 0; i < 300; i++ {
		if err := b.Publish("t", &broker.Message{Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if bc1.Load() != 300 || bc2.Load() != 300 {
		t.Fatalf("broadcast %d %d", bc1.Load(), bc2.Load())
	}
	total := q[0].Load() + q[1].Load() + q[2].Load()
	if total != 300 || q[0].Load() == 0 || q[1].Load() == 0 || q[2].Load() == 0 {
		t.Fatalf("queue %d %d %d", q[0].Load(), q[1].Load(), q[2].Load())
	}
}

func TestHandlerErrorReachesPublisher(t *testing.T) {
	var failed atomic.Int64
	b := broker.NewMemoryBroker(broker.ErrorHandler(func(e broker.Event) error { failed.Add(1); return nil }))
	_ = b.Connect()
	defer b.Disconnect()
	var ok atomic.Int64
	boom := errors.New("boom")
	_, _ = b.Subscribe("t", func(broker.Event) error { return boom })
	_, _ = b.Subscribe("t", func(broker.Event) error { ok.Add(1); return nil })
	err := b.Publish("t", &broker.Message{})
	if !errors.Is(err, boom) || ok.Load() != 1 || failed.Load() != 1 {
		t.Fatalf("err %v ok %d failed %d", err, ok.Load(), failed.Load())
	}
}

func TestLifecycleErrors(t *testing.T) {
	b := broker.NewMemoryBroker()
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("got %v", err)
	}
	if _, err := b.Subscribe("t", func(broker.Event) error { return nil }); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("got %v", err)
	}
	_ = b.Connect()
	if err := b.Publish("", &broker.Message{}); !errors.Is(err, broker.ErrMissingTopic) {
		t.Fatalf("got %v", err)
	}
	if err := b.Init(); err == nil {
		t.Fatal("Init while connected")
	}
	var n atomic.Int64
	s, _ := b.Subscribe("t", func(broker.Event) error { n.Add(1); return nil })
	_ = b.Publish("t", &broker.Message{})
	_ = s.Unsubscribe()
	_ = s.Unsubscribe()
	_ = b.Publish("t", &broker.Message{})
	if n.Load() != 1 {
		t.Fatalf("%d deliveries", n.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, _ = b.Subscribe("c", func(broker.Event) error { n.Add(1); return nil }, broker.SubscribeContext(ctx))
	cancel()
	_ = b.Publish("c", &broker.Message{})
	if n.Load() != 1 {
		t.Fatal("a subscription whose context ended still received")
	}
	_ = b.Disconnect()
	if err := b.Publish("t", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("after Disconnect: %v", err)
	}
}

func TestHandlersDoNotShareMessages(t *testing.T) {
	b := connected(t)
	seen := make(chan string, 2)
	for i := 0; i < 2; i++ {
		_, _ = b.Subscribe("t", func(e broker.Event) error {
			seen <- e.Message().Header["k"]
			e.Message().Header["k"] = "changed"
			e.Message().Body[0] = 'X'
			return nil
		})
	}
	msg := &broker.Message{Header: map[string]string{"k": "v"}, Body: []byte("b")}
	_ = b.Publish("t", msg)
	if <-seen != "v" || <-seen != "v" || msg.Header["k"] != "v" || msg.Body[0] != 'b' {
		t.Fatal("a handler changed another's message")
	}
}

func TestConcurrentUse(t *testing.T) {
	b := connected(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				s, _ := b.Subscribe("t", func(broker.Event) error { return nil }, broker.Queue(fmt.Sprint(j%2)))
				_ = b.Publish("t", &broker.Message{Body: []byte("x")})
				_ = s.Unsubscribe()
			}
		}()
	}
	wg.Wait()
}

func BenchmarkPublish(b *testing.B) {
	br := connected(b)
	_, _ = br.Subscribe("t", func(broker.Event) error { return nil })
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{}`)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = br.Publish("t", msg)
	}
}

func ExampleNewMemoryBroker() {
	b := broker.NewMemoryBroker()
	_ = b.Connect()
	defer b.Disconnect()
	_, _ = b.Subscribe("greetings", func(e broker.Event) error {
		fmt.Println(e.Topic(), string(e.Message().Body))
		return nil
	})
	_ = b.Publish("greetings", &broker.Message{Body: []byte("hello")})
	// Output: greetings hello
}
