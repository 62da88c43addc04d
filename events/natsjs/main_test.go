package natsjs_test

import (
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/natsjs"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireNATS skips (or fails, with MICRO_TEST_REQUIRE=1) when the shared server (with JetStream) is
// unreachable.
func requireNATS(t testing.TB) {
	t.Helper()
	testutil.RequireNATS(t, true)
}

// natsURL is the shared server's address.
func natsURL() string { return testutil.SharedNATSURL() }

// quietLogger keeps the expected warnings (dead letters) out of the test output unless
// the test fails or runs with -v.
func quietLogger(t testing.TB) logger.Logger {
	return logger.NewLogger(logger.WithOutput(testWriter{t}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newStream returns a stream on the shared server, closed at the end of the test.
func newStream(t testing.TB, opts ...natsjs.Option) events.Stream {
	t.Helper()
	requireNATS(t)
	return newStreamAt(t, natsURL(), opts...)
}

// newStreamAt returns a stream on the server at url, closed at the end of the test.
func newStreamAt(t testing.TB, url string, opts ...natsjs.Option) events.Stream {
	t.Helper()
	s, err := natsjs.NewStream(append([]natsjs.Option{natsjs.Address(url), natsjs.Logger(quietLogger(t)), natsjs.MaxAge(time.Hour)}, opts...)...)
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
