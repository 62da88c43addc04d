package postgres

import (
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// TestI1Conformance is battery row I1 for the Postgres store: the conformance suite
// against the test server, with binary keys (bytea) and persistence. The suite's
// databases are dropped at the end.
func TestI1Conformance(t *testing.T) {
	dsn := requireServer(t)
	c := admin(t)
	var mu sync.Mutex
	var stores []*pgStore
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, s := range stores {
			for _, db := range usedDatabases(s) {
				if !seen[db] {
					seen[db] = true
					execSQL(t, c, "DROP SCHEMA IF EXISTS "+pgx.Identifier{db}.Sanitize()+" CASCADE")
				}
			}
		}
	})
	storetest.Run(t, func(testing.TB) store.Store {
		s := NewStore(store.Nodes(dsn)).(*pgStore)
		mu.Lock()
		stores = append(stores, s)
		mu.Unlock()
		return s
	}, storetest.Suite{Persistent: true})
}
