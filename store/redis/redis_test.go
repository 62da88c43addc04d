package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

func TestString(t *testing.T) {
	if got := NewStore().String(); got != "redis" {
		t.Fatalf("String() = %q", got)
	}
}

func TestOptionsDefaults(t *testing.T) {
	s := NewStore()
	o := s.Options()
	if o.Database != store.DefaultDatabase || o.Table != store.DefaultTable || o.Context == nil || o.Logger == nil {
		t.Fatalf("defaults: %+v", o)
	}
	cfg, err := parseConfig(o)
	if err != nil || cfg.addr != "127.0.0.1:6379" || cfg.timeout != DefaultTimeout || cfg.ropts.DB != 0 {
		t.Fatalf("default config: %+v, %v", cfg, err)
	}
}

func TestParseNodes(t *testing.T) {
	for _, tc := range []struct {
		node, addr string
		db         int
	}{
		{"127.0.0.1:6380", "127.0.0.1:6380", 0},
		{"localhost", "localhost:6379", 0},
		{"[::1]:7000", "[::1]:7000", 0},
		{"redis://127.0.0.1:6381/3", "127.0.0.1:6381", 3},
		{"redis://user:secret@db.example:6379/1", "db.example:6379", 1},
		{" redis://h:1/0 ", "h:1", 0},
	} {
		cfg, err := parseConfig(store.Options{Nodes: []string{tc.node}})
		if err != nil || cfg.addr != tc.addr || cfg.ropts.DB != tc.db {
			t.Errorf("node %q: addr %q db %d, %v; want %q db %d", tc.node, cfg.addr, cfg.ropts.DB, err, tc.addr, tc.db)
		}
	}
	cfg, err := parseConfig(store.Options{Nodes: []string{"redis://u:pw@h:1/0"}})
	if err != nil || cfg.ropts.Username != "u" || cfg.ropts.Password != "pw" {
		t.Fatalf("credentials from the URL: %v", err)
	}
}

// TestBadOptions: options that cannot be used give a clear error from Init and from every
// call, never a panic, and never ErrNotFound; a password is not repeated in it.
func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []string
		want  string
	}{
		{"two nodes", []string{"127.0.0.1:6379", "127.0.0.1:6380"}, "2 nodes"},
		{"bad scheme", []string{"http://127.0.0.1:6379"}, "invalid URL scheme"},
		{"bad URL", []string{"redis://[::1"}, "node"},
		{"bad database", []string{"redis://127.0.0.1:6379/x"}, "invalid"},
		{"bad port", []string{"127.0.0.1:port"}, "neither host:port"},
		{"spaces", []string{"a host:1"}, "neither host:port"},
		{"password", []string{"redis://u:hunter2@127.0.0.1:6379/x"}, "xxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(store.Nodes(tc.nodes...))
			defer s.Close()
			check := func(what string, err error) {
				t.Helper()
				if err == nil || err == store.ErrNotFound || !strings.Contains(err.Error(), "store/redis") || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: %v, want an error of store/redis saying %q", what, err, tc.want)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("%s: the error shows the password: %v", what, err)
				}
			}
			check("Init", s.Init())
			_, err := s.Read("k")
			check("Read", err)
			_, err = s.Read("", store.ReadPrefix())
			check("Read prefix", err)
			check("Write", s.Write(&store.Record{Key: "k"}))
			check("Delete", s.Delete("k"))
			_, err = s.List()
			check("List", err)
		})
	}
}

// TestUnreachable: a server that refuses connections gives, at once, an error that names
// the backend, the operation, the record and the address, and wraps ErrUnavailable.
func TestUnreachable(t *testing.T) {
	addr := testutil.FreeAddr(t) // nothing listens there
	s := NewStore(store.Nodes(addr), store.Table("tb"), Timeout(2*time.Second))
	defer s.Close()
	began := time.Now()
	_, err := s.Read("the-key")
	if err == nil || !errors.Is(err, ErrUnavailable) || time.Since(began) > time.Second {
		t.Fatalf("Read: %v after %s, want ErrUnavailable at once", err, time.Since(began))
	}
	for _, part := range []string{"store/redis: Read", `"the-key"`, "micro/tb", addr, "refused"} {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("the error %q does not say %q", err, part)
		}
	}
	if err := s.Write(&store.Record{Key: "k"}, store.WriteTo("db2", "t2")); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Write \"k\" to db2/t2") {
		t.Fatalf("Write: %v", err)
	}
	if _, err := s.List(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "List of micro/tb") {
		t.Fatalf("List: %v", err)
	}
}

func TestWriteRefusals(t *testing.T) {
	s := NewStore(store.Nodes(testutil.FreeAddr(t))) // refused before any round trip
	defer s.Close()
	if err := s.Write(nil); err == nil || !strings.Contains(err.Error(), "nil record") {
		t.Fatalf("Write(nil): %v", err)
	}
	if err := s.Write(&store.Record{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Write of an empty key: %v", err)
	}
	err := s.Write(&store.Record{Key: "md", Metadata: map[string]interface{}{"f": func() {}}})
	if err == nil || !strings.Contains(err.Error(), `"md"`) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Write of metadata JSON cannot encode: %v", err)
	}
}

func TestTTLOf(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		rec    time.Duration
		o      store.WriteOptions
		ttl    time.Duration
		remove bool
	}{
		{"none", 0, store.WriteOptions{}, 0, false},
		{"record", 2 * time.Second, store.WriteOptions{}, 2 * time.Second, false},
		{"ttl wins", time.Hour, store.WriteOptions{TTL: time.Second, Expiry: now.Add(time.Minute)}, time.Second, false},
		{"expiry", time.Hour, store.WriteOptions{Expiry: now.Add(1500 * time.Millisecond)}, 1500 * time.Millisecond, false},
		{"past", 0, store.WriteOptions{Expiry: now.Add(-time.Second)}, 0, true},
		{"now", 0, store.WriteOptions{Expiry: now}, 0, true},
		{"sub-millisecond", 0, store.WriteOptions{TTL: 10 * time.Microsecond}, time.Millisecond, false},
		{"rounded up", 0, store.WriteOptions{TTL: 1001*time.Millisecond + 1}, 1002 * time.Millisecond, false},
		{"negative ttl is none", 0, store.WriteOptions{TTL: -time.Second}, 0, false},
		{"negative record expiry is none", -time.Second, store.WriteOptions{}, 0, false},
	} {
		ttl, remove := ttlOf(&store.Record{Key: "k", Expiry: tc.rec}, tc.o, now)
		if ttl != tc.ttl || remove != tc.remove {
			t.Errorf("%s: %s, %v; want %s, %v", tc.name, ttl, remove, tc.ttl, tc.remove)
		}
	}
}

// TestTTLIsRedisExpiry: a record with a TTL is a Redis key with that PTTL (Redis removes
// it), one without has none, and a sub-millisecond TTL is kept as 1 ms.
func TestTTLIsRedisExpiry(t *testing.T) {
	s := newStore(t)
	db := s.Options().Database
	cleanupScope(t, db, store.DefaultTable)
	rdb := rawClient(t)
	ctx := context.Background()
	if err := s.Write(&store.Record{Key: "ttl", Value: []byte("v")}, store.WriteTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&store.Record{Key: "none", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if d, err := rdb.PTTL(ctx, tablePrefix(db, store.DefaultTable)+"ttl").Result(); err != nil || d <= 59*time.Second || d > time.Minute {
		t.Fatalf("PTTL of a record with a TTL of 1 min: %s, %v", d, err)
	}
	if d, err := rdb.PTTL(ctx, tablePrefix(db, store.DefaultTable)+"none").Result(); err != nil || d != -1 {
		t.Fatalf("PTTL of a record without TTL: %s, %v (want -1, no expiry)", d, err)
	}
	if err := s.Write(&store.Record{Key: "tiny", Value: []byte("v")}, store.WriteTTL(time.Microsecond)); err != nil {
		t.Fatalf("a TTL under 1 ms: %v", err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		_, err := s.Read("tiny")
		return err == store.ErrNotFound
	}, "a record with a 1 µs TTL is gone")
}

// TestInitReconnects: Init with other Nodes makes the next call use them; Close leaves
// the store usable.
func TestInitReconnects(t *testing.T) {
	s := newStore(t)
	db := s.Options().Database
	cleanupScope(t, db, store.DefaultTable)
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(store.Nodes(testutil.FreeAddr(t))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Read after Init with a node that refuses: %v", err)
	}
	if err := s.Init(store.Nodes(redisURL())); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Read("k"); err != nil || string(recs[0].Value) != "v" {
		t.Fatalf("Read after Init back and Close: %v", err)
	}
	if o := s.Options(); o.Database != db {
		t.Fatalf("Init changed the database: %q", o.Database)
	}
}

// TestClientOptions: ClientOptions functions run in order on the go-redis options, after
// Timeout has set the timeouts.
func TestClientOptions(t *testing.T) {
	var order []string
	o := store.Options{}
	ClientOptions(func(ro *goredis.Options) { order = append(order, "1"); ro.PoolSize = 3 })(&o)
	ClientOptions(func(ro *goredis.Options) { order = append(order, "2") })(&o)
	Timeout(time.Second)(&o)
	cfg, err := parseConfig(o)
	if err != nil || strings.Join(order, "") != "12" || cfg.ropts.PoolSize != 3 || cfg.timeout != time.Second || cfg.ropts.ReadTimeout != time.Second {
		t.Fatalf("config %+v, %v, order %q", cfg, err, order)
	}
	Timeout(-1)(&o)
	if cfg, _ := parseConfig(o); cfg.timeout != DefaultTimeout {
		t.Fatalf("a negative Timeout gives %s, want the default", cfg.timeout)
	}
}

// TestHooks: Hooks see the store's commands.
func TestHooks(t *testing.T) {
	watch := newCommandWatch(t.Errorf)
	s := newStore(t, Hooks(watch))
	cleanupScope(t, s.Options().Database, store.DefaultTable)
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); err != nil {
		t.Fatal(err)
	}
	if watch.count("set") != 1 || watch.count("scan") == 0 {
		t.Fatalf("the hook saw %v", watch.counts)
	}
}

// NewStore fits cmd.DefaultStores, which takes func(...store.Option) store.Store.
var _ func(...store.Option) store.Store = NewStore
