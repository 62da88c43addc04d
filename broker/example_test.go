package broker_test

import (
	"errors"
	"fmt"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/registry"
)

// A memory broker delivers each message to every plain subscriber and to one member of
// each queue group, in turn.
func ExampleNewMemoryBroker() {
	b := broker.NewMemoryBroker()
	if err := b.Connect(); err != nil {
		panic(err)
	}
	defer b.Disconnect()

	_, _ = b.Subscribe("greetings", func(e broker.Event) error {
		fmt.Println("audit:", string(e.Message().Body))
		return nil
	})
	for _, name := range []string{"worker-1", "worker-2"} {
		_, _ = b.Subscribe("greetings", func(e broker.Event) error {
			fmt.Println(name+":", string(e.Message().Body))
			return nil
		}, broker.Queue("workers"))
	}

	for _, body := range []string{"hello", "bonjour"} {
		if err := b.Publish("greetings", &broker.Message{Body: []byte(body)}); err != nil {
			fmt.Println("publish:", err)
		}
	}
	// Output:
	// audit: hello
	// worker-1: hello
	// audit: bonjour
	// worker-2: bonjour
}

// Publish returns the handlers' errors, after delivering to every subscriber.
func ExampleBroker_Publish_handlerError() {
	b := broker.NewMemoryBroker()
	_ = b.Connect()
	defer b.Disconnect()

	errFull := errors.New("disk full")
	_, _ = b.Subscribe("logs", func(broker.Event) error { return errFull })
	_, _ = b.Subscribe("logs", func(e broker.Event) error {
		fmt.Println("stored", string(e.Message().Body))
		return nil
	})

	err := b.Publish("logs", &broker.Message{Body: []byte("line 1")})
	fmt.Println(errors.Is(err, errFull))
	// Output:
	// stored line 1
	// true
}

// Two HTTP brokers find each other's subscriptions in a registry (a memory one here;
// by default mDNS) and deliver over HTTP; Publish returns once the subscriber has
// handled the message, with its error if it failed.
func ExampleNewHttpBroker() {
	reg := registry.NewMemoryRegistry()
	pub := broker.NewHttpBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))
	sub := broker.NewHttpBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))
	for _, b := range []broker.Broker{pub, sub} {
		if err := b.Connect(); err != nil {
			panic(err)
		}
		defer b.Disconnect()
	}
	_, _ = sub.Subscribe("orders", func(e broker.Event) error {
		if string(e.Message().Body) == "bad" {
			return errors.New("cannot take order bad")
		}
		fmt.Println("took order", string(e.Message().Body))
		return nil
	})
	fmt.Println(pub.Publish("orders", &broker.Message{Body: []byte("42")}))
	fmt.Println(pub.Publish("orders", &broker.Message{Body: []byte("bad")}) != nil)
	// Output:
	// took order 42
	// <nil>
	// true
}
