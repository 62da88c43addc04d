package natskv

import (
	"testing"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// TestI1Conformance is battery row I1 for this store: the conformance suite against the
// shared server. The largest value is what the server's max_payload (1 MiB by default)
// leaves after RecordOverhead.
func TestI1Conformance(t *testing.T) {
	requireNATS(t)
	t.Cleanup(func() {
		if err := created.deleteAll(natsURL()); err != nil {
			t.Errorf("delete the suite's buckets: %v", err)
		}
	})
	storetest.Run(t, func(testing.TB) store.Store {
		return NewStore(store.Nodes(natsURL()))
	}, storetest.Suite{Persistent: true, MaxValueSize: int(natsMaxPayload) - RecordOverhead})
}
