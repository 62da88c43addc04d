package natsjs_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
	"github.com/seed-b3892490/micro/events/natsjs"
)

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Stream { return newStream(t) })
}

// TestE4AckSemantics is battery row E4 on JetStream.
func TestE4AckSemantics(t *testing.T) {
	eventstest.AckSemantics(t, func(t *testing.T) events.Stream { return newStream(t) }, time.Second)
}

// TestGoroutinesReturnToBaseline: a stream closed with consumers of every kind (ended
// by context or by Close, with events in flight) leaves no goroutine behind, and an
// ungrouped consumer's JetStream consumer is deleted when its consuming ends.
func TestGoroutinesReturnToBaseline(t *testing.T) {
	requireNATS(t)
	baseline := goleak.IgnoreCurrent()
	s, err := natsjs.NewStream(natsjs.Address(natsURL()), natsjs.Logger(quietLogger(t)), natsjs.MaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	topic := eventstest.Topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	var chans []<-chan events.Event
	for i := 0; i < 6; i++ {
		opts := []events.ConsumeOption{events.WithContext(ctx)}
		if i%2 == 0 {
			opts = append(opts, events.WithGroup("g"), events.WithAutoAck(false, time.Second), events.WithRetryLimit(3))
		}
		ch, err := s.Consume(topic, opts...)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	last, err := s.Consume(topic, events.WithAutoAck(false, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	eventstest.Receive(t, last, 5*time.Second)
	cancel()
	for _, ch := range chans {
		if !eventstest.Drain(ch, 5*time.Second) {
			t.Fatal("a channel was not closed after its context ended")
		}
	}
	if err := s.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if !eventstest.Drain(last, 5*time.Second) {
		t.Fatal("a channel was not closed by Close")
	}
	goleak.VerifyNone(t, baseline)

	// Only the group's durable consumer is left on the server.
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name, err := js.StreamNameBySubject(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range st.ConsumerNames(context.Background()).Name() {
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "g" {
		t.Errorf("consumers left on the server: %v, want only the group's [g]", names)
	}
	_ = js.DeleteStream(context.Background(), name)
}
