package natsjs_test

import (
	"fmt"
	"io"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/natsjs"
)

// A JetStream stream: a durable group with manual acknowledgement and a retry limit.
// It needs a NATS server with JetStream at 127.0.0.1:4222, so it has no checked output.
func ExampleNewStream() {
	s, err := natsjs.NewStream(
		natsjs.Address("nats://127.0.0.1:4222"),
		natsjs.Name("billing"),
		natsjs.MaxAge(24*time.Hour),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.(io.Closer).Close()

	ch, err := s.Consume("orders.created",
		events.WithGroup("billing"),
		events.WithAutoAck(false, 30*time.Second),
		events.WithRetryLimit(5),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Publish("orders.created", map[string]int{"cents": 1250}); err != nil {
		fmt.Println(err)
		return
	}
	ev := <-ch
	var order map[string]int
	if err := ev.Unmarshal(&order); err != nil {
		_ = ev.Nack() // tried again at once, dead-lettered after 6 deliveries
		return
	}
	_ = ev.Ack()
	fmt.Println(order["cents"])
}
