package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serverURL is the server of the tests: MICRO_TEST_POSTGRES, or the local default.
func serverURL() string {
	if u := os.Getenv("MICRO_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var (
	serverOnce sync.Once
	serverErr  error
)

// requireServer returns the test server's connection string; it skips the test (fails
// it with MICRO_TEST_REQUIRE=1) when the server does not answer.
func requireServer(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, serverURL())
		if err != nil {
			serverErr = err
			return
		}
		serverErr = c.Ping(ctx)
		_ = c.Close(ctx)
	})
	if serverErr != nil {
		testutil.SkipOrFail(t, "PostgreSQL is not reachable at %s (set MICRO_TEST_POSTGRES, or start it: pg_ctlcluster <version> main start): %v", serverURL(), serverErr)
	}
	return serverURL()
}

// unique returns a database (schema) name of the test's own: st_<tag>_<random>.
func unique(tag string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "st_" + tag + "_" + hex.EncodeToString(b)
}

// admin returns a connection to the test server for the tests' own SQL, closed at the
// end of the test.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, requireServer(t))
	if err != nil {
		t.Fatalf("connect to %s: %v", serverURL(), err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// exec runs SQL of the test's own on c.
func execSQL(t testing.TB, c *pgx.Conn, sql string, args ...interface{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dropAtEnd drops the schemas of databases at the end of the test.
func dropAtEnd(t testing.TB, databases ...string) {
	t.Helper()
	c := admin(t)
	t.Cleanup(func() {
		for _, db := range databases {
			execSQL(t, c, "DROP SCHEMA IF EXISTS "+pgx.Identifier{db}.Sanitize()+" CASCADE")
		}
	})
}

// newStore returns a store on the test server in a database of the test's own, dropped
// at the end of the test with everything in it, and closed before.
func newStore(t testing.TB, opts ...store.Option) (*pgStore, string) {
	t.Helper()
	dsn := requireServer(t)
	db := unique("t")
	dropAtEnd(t, db)
	s := NewStore(append([]store.Option{store.Nodes(dsn), store.Database(db)}, opts...)...).(*pgStore)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, db
}

// usedDatabases returns the databases of the tables s has used.
func usedDatabases(s *pgStore) []string {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	seen := map[string]bool{}
	var dbs []string
	for t := range s.tables {
		if !seen[t.database] {
			seen[t.database] = true
			dbs = append(dbs, t.database)
		}
	}
	return dbs
}
