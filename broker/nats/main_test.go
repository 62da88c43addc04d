package nats_test

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/broker"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireNATS skips (or fails, with MICRO_TEST_REQUIRE=1) when the shared server is
// unreachable.
func requireNATS(t testing.TB) {
	t.Helper()
	natsMaxPayload = testutil.RequireNATS(t, false)
}

// natsMaxPayload is the shared server's max payload, once requireNATS has run.
var natsMaxPayload int64

// natsURL is the shared server's address.
func natsURL() string { return testutil.SharedNATSURL() }

func unique() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// topic returns a subject no other test or run uses.
func topic(t testing.TB) string {
	return "test.broker." + strings.NewReplacer("/", "-", " ", "-", ".", "-").Replace(t.Name()) + "." + unique()
}

// newBroker returns a broker on the test server, not connected; it is disconnected at
// the end of the test.
func newBroker(t testing.TB, opts ...broker.Option) broker.Broker {
	t.Helper()
	requireNATS(t)
	b := natsbroker.NewNatsBroker(append([]broker.Option{broker.Addrs(natsURL())}, opts...)...)
	t.Cleanup(func() {
		if err := b.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	})
	return b
}

// connected returns a connected broker on the test server, disconnected at the end of
// the test.
func connected(t testing.TB, opts ...broker.Option) broker.Broker {
	t.Helper()
	b := newBroker(t, opts...)
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return b
}

// rawConn returns a plain nats.go connection to the test server, closed at the end of
// the test.
func rawConn(t testing.TB) *nats.Conn {
	t.Helper()
	requireNATS(t)
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// dropped reads the drop count of a broker or subscriber.
func dropped(t testing.TB, v any) uint64 {
	t.Helper()
	dc, ok := v.(natsbroker.DropCounter)
	if !ok {
		t.Fatalf("%T does not implement DropCounter", v)
	}
	return dc.Dropped()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, cond, what)
}
