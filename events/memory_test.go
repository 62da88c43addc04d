package events_test

import (
	"io"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
)

// newMemory returns a memory stream closed at the end of the test.
func newMemory(t *testing.T, opts ...events.Option) events.Stream {
	t.Helper()
	s, err := events.NewStream(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.(io.Closer).Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Stream { return newMemory(t) })
}

// TestE4AckSemantics is battery row E4 on the memory stream.
func TestE4AckSemantics(t *testing.T) {
	eventstest.AckSemantics(t, func(t *testing.T) events.Stream { return newMemory(t) }, time.Second)
}
