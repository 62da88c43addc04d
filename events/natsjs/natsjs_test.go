package natsjs_test

import (
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
)

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Stream { return newStream(t) })
}

// TestE4AckSemantics is battery row E4 on JetStream.
func TestE4AckSemantics(t *testing.T) {
	eventstest.AckSemantics(t, func(t *testing.T) events.Stream { return newStream(t) }, time.Second)
}
