package natsjs_test

import (
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/natsjs"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsURL is the server the tests share: MICRO_TEST_NATS, or the local default.
func natsURL() string {
	if u := os.Getenv("MICRO_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

var (
	natsOnce sync.Once
	natsErr  error
)

// requireNATS skips (or fails, with MICRO_TEST_REQUIRE=1) when the server is unreachable
// or has no JetStream.
func requireNATS(t testing.TB) {
	t.Helper()
	natsOnce.Do(func() {
		nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
		if err != nil {
			natsErr = err
			return
		}
		defer nc.Close()
		if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err != nil {
			natsErr = err
		}
	})
	if natsErr != nil {
		testutil.SkipOrFail(t, "NATS with JetStream is not reachable at %s (set MICRO_TEST_NATS, or start nats-server -js): %v", natsURL(), natsErr)
	}
}

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
