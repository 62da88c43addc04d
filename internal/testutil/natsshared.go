package testutil

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// SharedNATSURL returns the address of the NATS server the tests share: MICRO_TEST_NATS,
// or nats://127.0.0.1:4222.
func SharedNATSURL() string {
	if u := os.Getenv("MICRO_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

var sharedNATS struct {
	once       sync.Once
	err        error // reaching the server
	jsErr      error // reaching its JetStream
	maxPayload int64
}

// RequireNATS skips t (or fails it, under MICRO_TEST_REQUIRE=1) unless the shared NATS
// server (SharedNATSURL) answers, and, when jetStream is set, has JetStream. It asks
// once per test binary, and returns the server's max payload.
func RequireNATS(t testing.TB, jetStream bool) (maxPayload int64) {
	t.Helper()
	s := &sharedNATS
	s.once.Do(func() {
		nc, err := nats.Connect(SharedNATSURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
		if err != nil {
			s.err = err
			return
		}
		defer nc.Close()
		s.maxPayload = nc.MaxPayload()
		if _, err := nc.Request("$JS.API.INFO", nil, 2*time.Second); err != nil {
			s.jsErr = err
		}
	})
	switch {
	case s.err != nil:
		SkipOrFail(t, "NATS is not reachable at %s (set MICRO_TEST_NATS, or start nats-server -js): %v", SharedNATSURL(), s.err)
	case jetStream && s.jsErr != nil:
		SkipOrFail(t, "NATS at %s has no JetStream (start nats-server with -js): %v", SharedNATSURL(), s.jsErr)
	}
	return s.maxPayload
}
