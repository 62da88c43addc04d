package nats_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/broker"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
)

// A broker connects only in Connect: constructing one needs no server, and until then
// Publish and Subscribe say it is not connected.
func ExampleNewNatsBroker() {
	b := natsbroker.NewNatsBroker(
		broker.Addrs("127.0.0.1:4222"),
		natsbroker.PendingLimits(1000, 8<<20), // what a slow subscription may hold
	)
	fmt.Println(b.String(), b.Address())
	err := b.Publish("orders.created", &broker.Message{Body: []byte("{}")})
	fmt.Println(errors.Is(err, broker.ErrNotConnected))
	// Output:
	// nats nats://127.0.0.1:4222
	// true
}

// Each message reaches every plain subscriber and one member of each queue group; the
// subscribers here share the publisher's connection, but they could be anywhere.
// (Not run by go test: it needs a NATS server.)
func Example_publishSubscribe() {
	b := natsbroker.NewNatsBroker(broker.Addrs("nats://127.0.0.1:4222"))
	if err := b.Connect(); err != nil {
		fmt.Println("no NATS:", err)
		return
	}
	defer b.Disconnect()

	got := make(chan string, 2)
	_, _ = b.Subscribe("orders.created", func(e broker.Event) error {
		got <- "audit: " + string(e.Message().Body)
		return nil
	})
	_, _ = b.Subscribe("orders.created", func(e broker.Event) error {
		got <- "worker: " + string(e.Message().Body) + " " + e.Message().Header["Id"]
		return nil
	}, broker.Queue("workers"))

	msg := &broker.Message{Header: map[string]string{"Id": "42"}, Body: []byte("order")}
	if err := b.Publish("orders.created", msg); err != nil {
		fmt.Println("publish:", err)
		return
	}
	for i := 0; i < 2; i++ {
		select {
		case s := <-got:
			fmt.Println(s)
		case <-time.After(5 * time.Second):
			fmt.Println("timed out")
			return
		}
	}
	fmt.Println("dropped:", b.(natsbroker.DropCounter).Dropped())
}
