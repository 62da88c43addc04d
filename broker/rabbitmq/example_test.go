package rabbitmq_test

import (
	"errors"
	"fmt"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
)

// A broadcast subscriber and a durable queue group on a local RabbitMQ server: the audit
// log sees every order, and one member of the billing group handles each, at least once.
func ExampleNewBroker() {
	b := rabbitmq.NewBroker(broker.Addrs("amqp://guest:guest@127.0.0.1:5672/"), rabbitmq.PrefetchCount(16))
	if err := b.Connect(); err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer b.Disconnect()

	_, err := b.Subscribe("orders.created", func(e broker.Event) error {
		fmt.Println("audit:", string(e.Message().Body))
		return nil
	})
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}
	// a handler error returns the order to the queue, to be handled again
	_, err = b.Subscribe("orders.created", func(e broker.Event) error {
		fmt.Println("billing:", e.Message().Header["Order-Id"])
		return nil
	}, broker.Queue("billing"), rabbitmq.DurableQueue())
	if err != nil {
		fmt.Println("subscribe:", err)
		return
	}

	// Publish returns once the server has the message
	err = b.Publish("orders.created", &broker.Message{
		Header: map[string]string{"Order-Id": "42", "Content-Type": "application/json"},
		Body:   []byte(`{"id":42}`),
	})
	if err != nil {
		fmt.Println("publish:", err)
	}
}

// Before Connect, Publish and Subscribe fail with broker.ErrNotConnected.
func ExampleNewBroker_notConnected() {
	b := rabbitmq.NewBroker()
	err := b.Publish("orders.created", &broker.Message{Body: []byte("{}")})
	fmt.Println(errors.Is(err, broker.ErrNotConnected))
	fmt.Println(b.String(), b.Address())
	// Output:
	// true
	// rabbitmq amqp://guest:xxxxx@127.0.0.1:5672/
}
