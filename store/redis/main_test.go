package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests make hundreds on purpose
	goredis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

// quietLogger drops go-redis's log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

// redisURL is the server the tests share: MICRO_TEST_REDIS, or the local default.
func redisURL() string {
	if u := os.Getenv("MICRO_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

var (
	redisOnce sync.Once
	redisErr  error
)

// requireRedis skips (or fails, with MICRO_TEST_REQUIRE=1) when the shared server is
// unreachable; it is checked once per test binary.
func requireRedis(t testing.TB) {
	t.Helper()
	redisOnce.Do(func() {
		ropts, err := goredis.ParseURL(redisURL())
		if err != nil {
			redisErr = err
			return
		}
		ropts.DialTimeout, ropts.ReadTimeout, ropts.MaxRetries = 2*time.Second, 2*time.Second, -1
		ropts.Protocol, ropts.DisableIdentity = 2, true
		rdb := goredis.NewClient(ropts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		redisErr = rdb.Ping(ctx).Err()
	})
	if redisErr != nil {
		testutil.SkipOrFail(t, "Redis is not reachable at %s (set MICRO_TEST_REDIS, or start redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no): %v", redisURL(), redisErr)
	}
}

// rawClient returns a go-redis client of the shared server, closed at the end of the test.
func rawClient(t testing.TB) *goredis.Client {
	t.Helper()
	requireRedis(t)
	ropts, err := goredis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	ropts.Protocol, ropts.DisableIdentity = 2, true
	rdb := goredis.NewClient(ropts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// unique returns a name part unique to this run.
func unique() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newStore returns a store of the shared server with a database of the test's own, closed
// at the end of the test; the caller deletes what it writes (or uses cleanupScope).
func newStore(t testing.TB, opts ...store.Option) store.Store {
	t.Helper()
	requireRedis(t)
	s := NewStore(append([]store.Option{store.Nodes(redisURL()), store.Database("rt_" + unique())}, opts...)...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// cleanupScope deletes, at the end of the test, every Redis key of table of database
// (SCAN, then DEL).
func cleanupScope(t testing.TB, database, table string) {
	t.Helper()
	rdb := rawClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, globEscape(tablePrefix(database, table))+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
					t.Errorf("cleanup: %v", err)
					return
				}
				keys = keys[:0]
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}
