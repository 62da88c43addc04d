package eventstest_test

import (
	"io"
	"testing"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
)

// How an implementation runs the suite, from a test of its own package.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		eventstest.Run(t, func(t *testing.T) events.Stream {
			s, err := events.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.(io.Closer).Close() })
			return s
		})
	}
	_ = testConformance
}
