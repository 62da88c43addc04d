package nats_test

import (
	"testing"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/brokertest"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
)

// TestConformance runs the broker conformance suite, with subscribers on other broker
// instances (other connections) than the publisher.
func TestConformance(t *testing.T) {
	url := largePayloadURL(t)
	brokertest.Run(t, brokertest.Suite{
		New: func(t testing.TB) broker.Broker {
			b := natsbroker.NewNatsBroker(broker.Addrs(url))
			t.Cleanup(func() { _ = b.Disconnect() }) // for tests that fail before their own
			return b
		},
		Shared: true,
	})
}
