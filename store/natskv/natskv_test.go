package natskv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

func write(t testing.TB, s store.Store, key, value string, opts ...store.WriteOption) {
	t.Helper()
	if err := s.Write(&store.Record{Key: key, Value: []byte(value)}, opts...); err != nil {
		t.Fatalf("Write %q: %v", key, err)
	}
}

func readValue(t testing.TB, s store.Store, key string, opts ...store.ReadOption) string {
	t.Helper()
	recs, err := s.Read(key, opts...)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Read %q: %d records, %v", key, len(recs), err)
	}
	return string(recs[0].Value)
}

func list(t testing.TB, s store.Store, opts ...store.ListOption) []string {
	t.Helper()
	keys, err := s.List(opts...)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return keys
}

func TestString(t *testing.T) {
	s := NewStore()
	defer s.Close()
	if s.String() != "natskv" {
		t.Fatalf("String() = %q", s.String())
	}
	o := s.Options()
	if o.Database != store.DefaultDatabase || o.Table != store.DefaultTable {
		t.Fatalf("default scope %q/%q", o.Database, o.Table)
	}
}

// connOf returns the store's connection, made by a call beforehand.
func connOf(t testing.TB, s store.Store) *conn {
	t.Helper()
	ks := s.(*kvStore)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.conn == nil {
		t.Fatal("the store is not connected")
	}
	return ks.conn
}

// TestSweep: a sweep removes the expired records, and only them: not live ones, not a
// record written again after an expired revision of it; it keeps to its budgets and goes
// on where it stopped.
func TestSweep(t *testing.T) {
	s, db := newStore(t, SweepInterval(-1), KeyValueOptions(&jetstream.KeyValueConfig{History: 2}))
	write(t, s, "gone", "v", store.WriteTTL(100*time.Millisecond))
	write(t, s, "kept", "v")
	write(t, s, "later", "v", store.WriteTTL(time.Hour))
	write(t, s, "again", "old", store.WriteTTL(100*time.Millisecond))
	write(t, s, "again", "new") // the old revision stays in history: History 2
	for i := range 7 {
		write(t, s, fmt.Sprintf("batch/%d", i), "v", store.WriteTTL(100*time.Millisecond))
	}
	testutil.Eventually(t, 3*time.Second, func() bool {
		_, err := s.Read("gone")
		return err == store.ErrNotFound
	}, "the record with a 100 ms TTL expires")
	testutil.Eventually(t, 3*time.Second, func() bool {
		keys, err := s.List(store.ListPrefix("batch/"))
		return err == nil && len(keys) == 0
	}, "the batch expires")

	js := admin(t, natsURL())
	st, err := js.Stream(ctxT(t, 5*time.Second), "KV_"+bucketName(db))
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		t.Helper()
		info, err := st.Info(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if n := msgs(); n != 12 {
		t.Fatalf("%d messages in the bucket before the sweep, want 12", n)
	}
	c := connOf(t, s)
	sw := newSweeper(s.(*kvStore), c, s.(*kvStore).cfg, logger.DefaultLogger)
	sw.maxPurges = 4
	ctx := ctxT(t, 10*time.Second)
	var counts []int
	for range 5 {
		counts = append(counts, sw.sweep(ctx))
	}
	// 9 expired messages: gone, the old revision of again, 7 of the batch
	if !slices.Equal(counts, []int{4, 4, 1, 0, 0}) {
		t.Fatalf("sweeps removed %v records, want [4 4 1 0 0]", counts)
	}
	if n := msgs(); n != 3 {
		t.Fatalf("%d messages in the bucket after the sweeps, want 3 (kept, later, again)", n)
	}
	if got := readValue(t, s, "again"); got != "new" {
		t.Fatalf("again after the sweep: %q", got)
	}
	if got := list(t, s); !slices.Equal(got, []string{"again", "kept", "later"}) {
		t.Fatalf("List after the sweep: %q", got)
	}

	// the scan budget: a sweep looks at a few records, the next goes on from there
	for i := range 5 {
		write(t, s, fmt.Sprintf("scan/%d", i), "v", store.WriteTTL(time.Millisecond))
	}
	testutil.Eventually(t, 3*time.Second, func() bool {
		keys, err := s.List(store.ListPrefix("scan/"))
		return err == nil && len(keys) == 0
	}, "the records with a 1 ms TTL expire")
	sw.maxScan, sw.maxPurges = 3, 100
	counts = counts[:0]
	for range 4 {
		counts = append(counts, sw.sweep(ctx))
	}
	// first sweep: the 3 live records; then 3 expired; then the 2 left; then nothing
	if !slices.Equal(counts, []int{0, 3, 2, 0}) {
		t.Fatalf("sweeps with a scan budget of 3 removed %v, want [0 3 2 0]", counts)
	}
	if n := msgs(); n != 3 {
		t.Fatalf("%d messages after the budgeted sweeps, want 3", n)
	}
}

// TestSweepLoop: the store's own sweep removes expired records from the server, and
// Close stops it.
func TestSweepLoop(t *testing.T) {
	s, db := newStore(t, SweepInterval(20*time.Millisecond))
	write(t, s, "short", "v", store.WriteTTL(50*time.Millisecond))
	write(t, s, "kept", "v")
	js := admin(t, natsURL())
	st, err := js.Stream(ctxT(t, 5*time.Second), "KV_"+bucketName(db))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	}, "the sweep removes the expired record from the bucket")
	if got := list(t, s); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("List: %q", got)
	}
}

// TestListLeavesNoConsumers: the consumers of listings are deleted when they end.
func TestListLeavesNoConsumers(t *testing.T) {
	s, db := newStore(t)
	for i := range 20 {
		write(t, s, fmt.Sprintf("k%02d", i), "v")
	}
	for range 10 {
		if got := list(t, s, store.ListPrefix("k1")); len(got) != 10 {
			t.Fatalf("List: %q", got)
		}
		if recs, err := s.Read("k0", store.ReadPrefix(), store.ReadLimit(3)); err != nil || len(recs) != 3 {
			t.Fatalf("prefix Read: %d records, %v", len(recs), err)
		}
	}
	st, err := admin(t, natsURL()).Stream(ctxT(t, 5*time.Second), "KV_"+bucketName(db))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.Consumers == 0
	}, "the listings' consumers are deleted")
}

func TestDeleteBucket(t *testing.T) {
	s, db := newStore(t)
	write(t, s, "a", "1")
	write(t, s, "b", "2", store.WriteTo("", "other"))
	js := admin(t, natsURL())
	if err := s.Delete(db, DeleteBucket()); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(ctxT(t, 5*time.Second), bucketName(db)); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("the bucket after DeleteBucket: %v", err)
	}
	if _, err := s.Read("a"); err != store.ErrNotFound {
		t.Fatalf("Read after DeleteBucket: %v", err)
	}
	if keys := list(t, s, store.ListFrom("", "other")); len(keys) != 0 {
		t.Fatalf("List after DeleteBucket: %q", keys)
	}
	if err := s.Delete(db, DeleteBucket()); err != nil {
		t.Fatalf("DeleteBucket of a database without a bucket: %v", err)
	}
	// a Write creates the bucket again
	write(t, s, "a", "again")
	if got := readValue(t, s, "a"); got != "again" {
		t.Fatalf("after writing again: %q", got)
	}
	// an empty key names the call's database
	other := "test_" + unique()
	write(t, s, "x", "1", store.WriteTo(other, ""))
	if err := s.Delete("", store.DeleteFrom(other, ""), DeleteBucket()); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(ctxT(t, 5*time.Second), bucketName(other)); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("the bucket of DeleteFrom's database after DeleteBucket: %v", err)
	}
	if got := readValue(t, s, "a"); got != "again" {
		t.Fatalf("deleting another database's bucket removed this one's records: %q", got)
	}
}

// TestBucketDeletedElsewhere: a bucket another store deletes is not found by this one,
// which recreates it on the next Write.
func TestBucketDeletedElsewhere(t *testing.T) {
	s, db := newStore(t, Timeout(time.Second))
	write(t, s, "k", "v")
	if got := readValue(t, s, "k"); got != "v" {
		t.Fatal(got)
	}
	other := NewStore(store.Nodes(natsURL()), store.Database(db))
	defer other.Close()
	if err := other.Delete("", DeleteBucket()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 3*time.Second, func() bool {
		_, err := s.Read("k")
		return err == store.ErrNotFound
	}, "the record of the deleted bucket is not found")
	start := time.Now()
	if _, err := s.Read("k"); err != store.ErrNotFound {
		t.Fatalf("Read: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a Read of a deleted bucket took %s", d)
	}
	write(t, s, "k", "again")
	if got := readValue(t, other, "k"); got != "again" {
		t.Fatalf("after the bucket was recreated: %q", got)
	}
}

func TestDefaultTTL(t *testing.T) {
	s, _ := newStore(t, DefaultTTL(time.Hour))
	write(t, s, "default", "v")
	write(t, s, "own", "v", store.WriteTTL(time.Minute))
	if err := s.Write(&store.Record{Key: "record", Value: []byte("v"), Expiry: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]time.Duration{"default": time.Hour, "own": time.Minute, "record": 2 * time.Minute} {
		recs, err := s.Read(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := recs[0].Expiry; got > want || got < want-10*time.Second {
			t.Fatalf("%s: Expiry %s, want about %s", key, got, want)
		}
	}
	short, _ := newStore(t, DefaultTTL(100*time.Millisecond))
	write(t, short, "k", "v")
	testutil.Eventually(t, 3*time.Second, func() bool {
		_, err := short.Read("k")
		return err == store.ErrNotFound
	}, "a record with the default TTL expires")
	if _, err := newConfig(store.Options{Context: context.WithValue(context.Background(), defaultTTLKey{}, -time.Second)}); err == nil {
		t.Fatal("a negative DefaultTTL is accepted")
	}
}

func TestValueTooLarge(t *testing.T) {
	s, _ := newStore(t)
	big := make([]byte, int(natsMaxPayload)-RecordOverhead+1)
	err := s.Write(&store.Record{Key: "big", Value: big})
	if err == nil || !strings.Contains(err.Error(), "max_payload") || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Write of a value too large: %v", err)
	}
	md := map[string]interface{}{"m": strings.Repeat("x", 100)}
	err = s.Write(&store.Record{Key: "big", Value: big[:len(big)-50], Metadata: md})
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("Write of a value and metadata too large: %v", err)
	}
	if _, err := s.Read("big"); err != store.ErrNotFound {
		t.Fatalf("Read after refused writes: %v", err)
	}
}

// TestLongNames: the longest key, of the bytes that take most room, in a database and a
// table with long names.
func TestLongNames(t *testing.T) {
	table := strings.Repeat("t.", 100)
	s, _ := newStore(t, store.Table(table))
	key := strings.Repeat("\xff", MaxKeySize)
	write(t, s, key, "v")
	if got := readValue(t, s, key); got != "v" {
		t.Fatal(got)
	}
	if got := list(t, s, store.ListPrefix(key)); !slices.Equal(got, []string{key}) {
		t.Fatalf("List with the longest prefix: %d keys", len(got))
	}
	if recs, err := s.Read(key[:MaxKeySize-1], store.ReadPrefix()); err != nil || len(recs) != 1 {
		t.Fatalf("prefix Read: %d records, %v", len(recs), err)
	}
	db := strings.Repeat("database ", 20)
	write(t, s, key, "in a long database", store.WriteTo(db, ""))
	defer func() {
		if err := s.Delete(db, DeleteBucket()); err != nil {
			t.Error(err)
		}
	}()
	if got := readValue(t, s, key, store.ReadFrom(db, "")); got != "in a long database" {
		t.Fatal(got)
	}

	tooLong := strings.Repeat("k", MaxKeySize+1)
	if err := s.Write(&store.Record{Key: tooLong, Value: []byte("v")}); err == nil {
		t.Fatal("Write of a key longer than MaxKeySize: no error")
	}
	if _, err := s.Read(tooLong); err != store.ErrNotFound {
		t.Fatalf("Read of a key too long: %v", err)
	}
	if err := s.Delete(tooLong); err != nil {
		t.Fatalf("Delete of a key too long: %v", err)
	}
	if got := list(t, s, store.ListPrefix(tooLong)); len(got) != 0 {
		t.Fatalf("List of a prefix too long: %q", got)
	}
}

// TestUnreachable: with no server, every call fails at once with an error that names the
// backend and the operation and matches ErrUnavailable; Read does not claim the record
// is missing.
func TestUnreachable(t *testing.T) {
	s := NewStore(store.Nodes(testutil.FreeAddr(t)), Timeout(2*time.Second))
	defer s.Close()
	calls := map[string]func() error{
		"Write":  func() error { return s.Write(&store.Record{Key: "k", Value: []byte("v")}) },
		"Read":   func() error { _, err := s.Read("k"); return err },
		"List":   func() error { _, err := s.List(); return err },
		"Delete": func() error { return s.Delete("k") },
	}
	for op, call := range calls {
		start := time.Now()
		err := call()
		d := time.Since(start)
		if err == nil || err == store.ErrNotFound || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s: %v, want an error matching ErrUnavailable", op, err)
		}
		if !strings.HasPrefix(err.Error(), "natskv: "+op) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("%s: the error %q does not name the backend, the operation and the cause", op, err)
		}
		if d > time.Second {
			t.Fatalf("%s against a closed port took %s", op, d)
		}
	}
}

// TestSilentServer: a server that accepts connections and never answers makes calls
// fail at their time bound.
func TestSilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 { // bounded; ends when the listener closes
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	const timeout = 300 * time.Millisecond
	s := NewStore(store.Nodes(l.Addr().String()), Timeout(timeout))
	defer s.Close()
	for _, op := range []string{"Write", "Read"} {
		start := time.Now()
		var err error
		if op == "Write" {
			err = s.Write(&store.Record{Key: "k", Value: []byte("v")})
		} else {
			_, err = s.Read("k")
		}
		d := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "natskv: "+op) {
			t.Fatalf("%s: %v, want an error matching ErrUnavailable", op, err)
		}
		// the Write waits for the handshake, in vain, until its bound; the Read may meet
		// the end of that attempt earlier
		if (op == "Write" && d < timeout-50*time.Millisecond) || d > timeout+500*time.Millisecond {
			t.Fatalf("%s failed after %s, want at most about the timeout of %s: %v", op, d, timeout, err)
		}
	}
}

// TestContext: a call ends when the store's context ends.
func TestContext(t *testing.T) {
	requireNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := NewStore(store.WithContext(ctx), store.Nodes(natsURL()), store.Database("test_"+unique()))
	defer s.Close()
	if _, err := s.Read("k"); err != store.ErrNotFound {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Read("k"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Read with the store's context cancelled: %v", err)
	}
}

// TestCorrupt: records the store did not write in its format give errors matching
// store.ErrCorrupt that name the key; others stay readable.
func TestCorrupt(t *testing.T) {
	s, db := newStore(t)
	write(t, s, "good", "v")
	js := admin(t, natsURL())
	prefix := tablePrefix(bucketName(db), store.DefaultTable)
	if _, err := js.Publish(ctxT(t, 5*time.Second), keySubject(prefix, "garbage"), []byte("not an entry")); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(keySubject(prefix, "badexpiry"))
	m.Data = encodeEntry([]byte("v"), nil)
	m.Header.Set(expiresHeader, "soon")
	if _, err := js.PublishMsg(ctxT(t, 5*time.Second), m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"garbage", "badexpiry"} {
		_, err := s.Read(key)
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Fatalf("Read %s: %v", key, err)
		}
	}
	if _, err := s.Read("g", store.ReadPrefix()); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `"garbage"`) {
		t.Fatalf("prefix Read over a corrupt record: %v", err)
	}
	if got := readValue(t, s, "good"); got != "v" {
		t.Fatal(got)
	}
	if got := list(t, s, store.ListPrefix("g")); !slices.Equal(got, []string{"garbage", "good"}) {
		t.Fatalf("List: %q", got)
	}
}

// TestForeignMarkers: delete and purge markers other KV clients leave are no records.
func TestForeignMarkers(t *testing.T) {
	s, db := newStore(t)
	write(t, s, "deleted", "v")
	write(t, s, "purged", "v")
	write(t, s, "kept", "v")
	kv, err := admin(t, natsURL()).KeyValue(ctxT(t, 5*time.Second), bucketName(db))
	if err != nil {
		t.Fatal(err)
	}
	kvKey := func(k string) string {
		return strings.TrimPrefix(keySubject(tablePrefix(bucketName(db), store.DefaultTable), k), "$KV."+bucketName(db)+".")
	}
	if err := kv.Delete(ctxT(t, 5*time.Second), kvKey("deleted")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctxT(t, 5*time.Second), kvKey("purged")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deleted", "purged"} {
		if _, err := s.Read(k); err != store.ErrNotFound {
			t.Fatalf("Read %s: %v", k, err)
		}
	}
	if got := list(t, s); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("List: %q", got)
	}
	if recs, err := s.Read("", store.ReadPrefix()); err != nil || len(recs) != 1 || recs[0].Key != "kept" {
		t.Fatalf("prefix Read: %v %v", recs, err)
	}
	// Create replaces a marker (the last message of the key's subject), not a record
	c := s.(store.Creator)
	for _, k := range []string{"deleted", "purged"} {
		if err := c.Create(&store.Record{Key: k, Value: []byte("created")}); err != nil {
			t.Fatalf("Create over the %s marker: %v", k, err)
		}
		if got := readValue(t, s, k); got != "created" {
			t.Fatalf("%s after Create: %q", k, got)
		}
	}
	if err := c.Create(&store.Record{Key: "kept", Value: []byte("x")}); err != store.ErrExists {
		t.Fatalf("Create of kept: %v, want store.ErrExists", err)
	}
	// a record that does not decode counts as there
	if _, err := kv.Put(ctxT(t, 5*time.Second), kvKey("foreign"), []byte{0xff, 0x00}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(&store.Record{Key: "foreign", Value: []byte("x")}); err != store.ErrExists {
		t.Fatalf("Create over a foreign value: %v, want store.ErrExists", err)
	}
}

// TestBucketConfig: the buckets the store creates have the configuration of its options.
func TestBucketConfig(t *testing.T) {
	s, db := newStore(t, DefaultMemory(), DefaultDescription("orders of the shop"),
		KeyValueOptions(&jetstream.KeyValueConfig{Bucket: "ignored", History: 3, MaxBytes: 1 << 20}))
	write(t, s, "k", "v")
	st, err := admin(t, natsURL()).Stream(ctxT(t, 5*time.Second), "KV_"+bucketName(db))
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Storage != jetstream.MemoryStorage || cfg.Description != "orders of the shop" || cfg.MaxMsgsPerSubject != 3 || cfg.MaxBytes != 1<<20 {
		t.Fatalf("bucket configuration: storage %v, description %q, history %d, max bytes %d", cfg.Storage, cfg.Description, cfg.MaxMsgsPerSubject, cfg.MaxBytes)
	}
	plain, db2 := newStore(t)
	write(t, plain, "k", "v")
	st, err = admin(t, natsURL()).Stream(ctxT(t, 5*time.Second), "KV_"+bucketName(db2))
	if err != nil {
		t.Fatal(err)
	}
	cfg = st.CachedInfo().Config
	if cfg.Storage != jetstream.FileStorage || cfg.Description != fmt.Sprintf("micro store database %q", db2) || cfg.MaxMsgsPerSubject != 1 {
		t.Fatalf("default bucket configuration: storage %v, description %q, history %d", cfg.Storage, cfg.Description, cfg.MaxMsgsPerSubject)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]store.Option{
		"Timeout(0)":  Timeout(0),
		"History 100": KeyValueOptions(&jetstream.KeyValueConfig{History: 100}),
	} {
		s := NewStore(opt)
		if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err == nil || !strings.HasPrefix(err.Error(), "natskv: ") {
			t.Errorf("%s: Write: %v", name, err)
		}
		if err := s.Init(); err == nil {
			t.Errorf("%s: Init: no error", name)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
	}
}

// TestCloseThenUse: Close may come at any time; a store used after Close connects again.
func TestCloseThenUse(t *testing.T) {
	s, _ := newStore(t)
	write(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readValue(t, s, "k"); got != "v" {
		t.Fatal(got)
	}
	// Close while calls run
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if err := s.Write(&store.Record{Key: fmt.Sprintf("c%d/%d", i, j), Value: []byte("v")}); err != nil && !errors.Is(err, ErrUnavailable) {
					errs <- err
					return
				}
			}
		}()
	}
	for range 3 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a Write during Close: %v", err)
	}
}
