package nats_test

import (
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// conformancePayload is the max payload the conformance suite needs: its LargeMessage
// test publishes a 1 MiB body with headers, more than NATS's default max_payload (1 MiB,
// headers included).
const conformancePayload = 1<<20 + 64<<10

// privatePayload is the max_payload of the private server: the framework's message limit.
const privatePayload = 4 << 20

// largePayloadURL returns the URL of a server whose max payload carries the conformance
// suite's messages: the test server when it does, otherwise a private nats-server
// started for the test with max_payload raised (see startServer).
func largePayloadURL(t *testing.T) string {
	t.Helper()
	requireNATS(t)
	if natsMaxPayload >= conformancePayload {
		return natsURL()
	}
	t.Logf("the server at %s has max_payload %d, less than the %d the conformance suite needs: starting a private nats-server with max_payload %d",
		natsURL(), natsMaxPayload, conformancePayload, privatePayload)
	url, err := startServer(t, privatePayload)
	if err != nil {
		testutil.SkipOrFail(t, "the conformance suite needs a NATS server with max_payload ≥ %d (the one at %s has %d) and a private one could not be started: %v",
			conformancePayload, natsURL(), natsMaxPayload, err)
	}
	return url
}
