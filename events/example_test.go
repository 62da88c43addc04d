package events_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/seed-b3892490/micro/events"
)

// A memory stream: publish a value, consume it as an event, acknowledge it.
func ExampleNewStream() {
	s, err := events.NewStream()
	if err != nil {
		panic(err)
	}
	defer s.(io.Closer).Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Consume("orders", events.WithGroup("billing"), events.WithAutoAck(false, 0), events.WithContext(ctx))
	if err != nil {
		panic(err)
	}

	type order struct {
		ID    string
		Cents int
	}
	if err := s.Publish("orders", order{ID: "o-1", Cents: 1250}, events.WithMetadata(map[string]string{"shop": "north"})); err != nil {
		panic(err)
	}

	ev := <-ch
	var o order
	if err := ev.Unmarshal(&o); err != nil {
		panic(err)
	}
	fmt.Println(ev.Topic, ev.Metadata["shop"], o.ID, o.Cents)
	fmt.Println(ev.Ack())
	// Output:
	// orders north o-1 1250
	// <nil>
}

// Replaying what a topic retained since a time, with WithOffset.
func ExampleWithOffset() {
	s, _ := events.NewStream()
	defer s.(io.Closer).Close()
	for _, step := range []string{"created", "paid", "shipped"} {
		_ = s.Publish("order.o-1", step)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := s.Consume("order.o-1", events.WithOffset(time.Now().Add(-time.Minute)), events.WithContext(ctx))
	for i := 0; i < 3; i++ {
		ev := <-ch
		var step string
		_ = ev.Unmarshal(&step)
		fmt.Println(step)
	}
	// Output:
	// created
	// paid
	// shipped
}

// A memory store of events, read back by topic.
func ExampleNewStore() {
	st := events.NewStore()
	_ = st.Write(&events.Event{ID: "1", Topic: "audit", Payload: []byte(`"login"`)})
	_ = st.Write(&events.Event{ID: "2", Topic: "audit", Payload: []byte(`"logout"`)}, events.WithTTL(0))
	evs, _ := st.Read("audit", events.ReadLimit(10))
	for _, e := range evs {
		fmt.Println(e.ID, string(e.Payload))
	}
	// Output:
	// 1 "login"
	// 2 "logout"
}
