package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Plans     []planNode `json:"Plans"`
}

func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// literal writes an argument of selectSQL as an SQL literal, for EXPLAIN EXECUTE.
func literal(v interface{}) string {
	switch v := v.(type) {
	case []byte:
		return `'\x` + hex.EncodeToString(v) + `'::bytea`
	case int64:
		return strconv.FormatInt(v, 10)
	}
	panic(fmt.Sprintf("literal of %T", v))
}

// explain returns the plan of q with args: as the server plans it for these values
// (custom), or for any values (generic, as a prepared statement run many times may be).
func explain(t *testing.T, c *pgx.Conn, generic bool, q string, args []interface{}) planNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []byte
	if !generic {
		if err := c.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&out); err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
	} else {
		execSQL(t, c, "SET plan_cache_mode = force_generic_plan")
		defer execSQL(t, c, "RESET plan_cache_mode")
		execSQL(t, c, "PREPARE micro_explain AS "+q)
		defer execSQL(t, c, "DEALLOCATE micro_explain")
		lits := make([]string, len(args))
		for i, a := range args {
			lits[i] = literal(a)
		}
		x := "EXPLAIN (FORMAT JSON) EXECUTE micro_explain"
		if len(lits) > 0 {
			x += "(" + strings.Join(lits, ", ") + ")"
		}
		if err := c.QueryRow(ctx, x).Scan(&out); err != nil {
			t.Fatalf("%s: %v", x, err)
		}
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", out, err)
	}
	return plans[0].Plan
}

// TestPrefixQueriesUseTheIndex checks, with EXPLAIN, that the statements of prefix reads
// and lists read a range of the primary key's index (no sequential scan of the table, no
// sort) over a table of 20,000 records, planned for their values and generically.
func TestPrefixQueriesUseTheIndex(t *testing.T) {
	s, db := newStore(t)
	if err := s.Write(&store.Record{Key: "first", Value: []byte("v")}); err != nil { // creates the table
		t.Fatal(err)
	}
	c := admin(t)
	tb := table{db, store.DefaultTable}
	execSQL(t, c, "INSERT INTO "+tb.ident()+" (key, value, expiry) SELECT convert_to('key/' || lpad(i::text, 6, '0'), 'UTF8'), '\\x00',"+
		" CASE WHEN i % 3 = 0 THEN now() + interval '1 hour' END FROM generate_series(1, 20000) i")
	execSQL(t, c, "ANALYZE "+tb.ident())
	var pkey string
	if err := c.QueryRow(context.Background(), "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'", tb.ident()).Scan(&pkey); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		cols string
		p    pattern
	}{
		{"list prefix", "key", pattern{prefix: "key/0001"}},
		{"list prefix with limit and offset", "key", pattern{prefix: "key/01", offset: 10, limit: 20}},
		{"list prefix and suffix", "key", pattern{prefix: "key/01", suffix: "7"}},
		{"read prefix", "key, value, metadata, expiry, now()", pattern{prefix: "key/0001"}},
		{"read prefix ending in 0xff", "key, value, metadata, expiry, now()", pattern{prefix: "key/\xff"}},
	} {
		q, args := selectSQL(tc.cols, tb, tc.p)
		for _, generic := range []bool{false, true} {
			plan := explain(t, c, generic, q, args)
			var index bool
			plan.walk(func(n planNode) {
				switch n.NodeType {
				case "Seq Scan", "Sort":
					t.Errorf("%s (generic plan %v): the plan has a %s node: %+v", tc.name, generic, n.NodeType, plan)
				case "Index Scan", "Index Only Scan":
					if n.IndexName == pkey && strings.Contains(n.IndexCond, "key >=") && strings.Contains(n.IndexCond, "key <") {
						index = true
					}
				}
			})
			if !index {
				t.Errorf("%s (generic plan %v): no range scan of the index %s: %+v", tc.name, generic, pkey, plan)
			}
		}
	}

	// the statements do select what the model says
	keys, err := s.List(store.ListPrefix("key/0001"), store.ListSuffix("5"))
	if err != nil || len(keys) != 10 || keys[0] != "key/000105" || keys[9] != "key/000195" {
		t.Fatalf("List prefix key/0001 suffix 5: %q, %v", keys, err)
	}
}

func TestSuccessor(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"a", "b"}, {"ab", "ac"}, {"a\xff", "b"}, {"a\xff\xff", "b"}, {"\x00", "\x01"},
		{"\xfe\xff", "\xff"}, {"\xff", ""}, {"\xff\xff", ""}, {"", ""},
	} {
		if got := successor([]byte(tc.prefix)); string(got) != tc.want || (tc.want == "") != (got == nil) {
			t.Errorf("successor(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// FuzzSuccessor checks the range of a prefix query against strings.HasPrefix: a key is in
// [prefix, successor(prefix)) exactly when it starts with prefix.
func FuzzSuccessor(f *testing.F) {
	for _, seed := range [][2]string{
		{"a", "ab"}, {"a", "b"}, {"ab", "a"}, {"a\xff", "b"}, {"a\xff", "a\xff\xff"}, {"\xff", "\xff\x00"},
		{"", "x"}, {"\x00", ""}, {"key/01", "key/019"}, {"key/01", "key/02"}, {"\xfe\xff", "\xff"},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, prefix, key []byte) {
		hi := successor(prefix)
		in := bytes.Compare(key, prefix) >= 0 && (hi == nil || bytes.Compare(key, hi) < 0)
		if in != bytes.HasPrefix(key, prefix) {
			t.Fatalf("prefix %q, successor %q, key %q: in the range %v, has the prefix %v", prefix, hi, key, in, !in)
		}
	})
}

// TestSweep checks that the sweep deletes expired records, more than one batch of them,
// from the tables the store uses, and leaves the others; and that expired records are
// not returned before it runs.
func TestSweep(t *testing.T) {
	s, db := newStore(t, SweepInterval(50*time.Millisecond))
	if err := s.Write(&store.Record{Key: "live", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&store.Record{Key: "later", Value: []byte("v")}, store.WriteTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := admin(t)
	tb := table{db, store.DefaultTable}
	const expired = sweepBatch + 500
	execSQL(t, c, "INSERT INTO "+tb.ident()+" (key, value, expiry) SELECT convert_to('old/' || i, 'UTF8'), '', now() - interval '1 second'"+
		" FROM generate_series(1, $1::int) i", expired)
	count := func() int {
		var n int
		if err := c.QueryRow(context.Background(), "SELECT count(*) FROM "+tb.ident()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return count() == 2 }, "the sweep deletes the expired records")
	if keys, err := s.List(); err != nil || !slices.Equal(keys, []string{"later", "live"}) {
		t.Fatalf("List after the sweep: %q, %v", keys, err)
	}
}

func TestExpiredRecordsAreNotReturned(t *testing.T) {
	s, db := newStore(t) // the sweep runs once a minute
	if err := s.Write(&store.Record{Key: "live", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c := admin(t)
	tb := table{db, store.DefaultTable}
	execSQL(t, c, "INSERT INTO "+tb.ident()+" (key, value, expiry) VALUES ('\\x6f6c64', '', now() - interval '1 millisecond')") // "old"
	if _, err := s.Read("old"); err != store.ErrNotFound {
		t.Fatalf("Read of an expired record: %v", err)
	}
	if recs, err := s.Read("", store.ReadPrefix()); err != nil || len(recs) != 1 || recs[0].Key != "live" {
		t.Fatalf("prefix read: %v, %v", recs, err)
	}
	if keys, err := s.List(store.ListSuffix("d")); err != nil || len(keys) != 0 {
		t.Fatalf("List suffix d: %q, %v", keys, err)
	}
	// the expiry is the server's: a record written with a TTL expires at now() + TTL
	if err := s.Write(&store.Record{Key: "ttl", Value: []byte("v")}, store.WriteTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var left time.Duration
	if err := c.QueryRow(context.Background(), "SELECT (extract(epoch FROM expiry - now()) * 1e6)::bigint * 1000 FROM "+tb.ident()+" WHERE key = '\\x74746c'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left <= 59*time.Minute || left > time.Hour {
		t.Fatalf("the stored expiry is %s from now, want about 1h", left)
	}
}

// TestSweepStopsOnClose checks that the store's goroutines (the sweep, the pool's) end
// with Close.
func TestSweepStopsOnClose(t *testing.T) {
	dsn := requireServer(t)
	db := unique("close")
	dropAtEnd(t, db)
	before := runtime.NumGoroutine()
	s := NewStore(store.Nodes(dsn), store.Database(db), SweepInterval(10*time.Millisecond))
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}, store.WriteTTL(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatalf("no goroutine started: %d before, %d after", before, runtime.NumGoroutine())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return runtime.NumGoroutine() <= before }, "goroutines back to the baseline after Close")
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Read("k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if err := s.Write(&store.Record{Key: "k"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentFirstUse has stores of their own connections write at once to new tables
// of a new database: each table and the schema are created once, and no write fails.
func TestConcurrentFirstUse(t *testing.T) {
	dsn := requireServer(t)
	db := unique("first")
	dropAtEnd(t, db)
	const stores, tables = 6, 3
	start := make(chan struct{})
	errc := make(chan error, stores*tables)
	var wg sync.WaitGroup
	for i := range stores {
		s := NewStore(store.Nodes(dsn), store.Database(db))
		defer s.Close()
		for j := range tables {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errc <- s.Write(&store.Record{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}, store.WriteTo("", fmt.Sprintf("t%d", j)))
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent first write: %v", err)
		}
	}
	s := NewStore(store.Nodes(dsn), store.Database(db))
	defer s.Close()
	for j := range tables {
		keys, err := s.List(store.ListFrom("", fmt.Sprintf("t%d", j)))
		if err != nil || len(keys) != stores {
			t.Fatalf("table t%d: %q, %v", j, keys, err)
		}
	}
	c := admin(t)
	var indexes int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_indexes WHERE schemaname = $1", db).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if indexes != 2*tables {
		t.Fatalf("%d indexes in the schema, want %d (a primary key and an expiry index per table)", indexes, 2*tables)
	}
}

// TestNames checks that database and table names reach PostgreSQL as they are, quoted,
// and that names it cannot hold are refused with a clear error.
func TestNames(t *testing.T) {
	s, db := newStore(t)
	c := admin(t)
	hostile := []string{`Upper`, `upper`, `with space`, `quote"inside`, `it's`, `x"; DROP TABLE micro; --`, `ключ`, `a.b`, `$1`}
	for _, name := range hostile {
		if err := s.Write(&store.Record{Key: "k", Value: []byte(name)}, store.WriteTo("", name)); err != nil {
			t.Fatalf("write to table %q: %v", name, err)
		}
	}
	other := unique("Other") + `"q`
	dropAtEnd(t, other)
	if err := s.Write(&store.Record{Key: "k", Value: []byte("other")}, store.WriteTo(other, "t")); err != nil {
		t.Fatalf("write to database %q: %v", other, err)
	}
	for _, name := range hostile {
		recs, err := s.Read("k", store.ReadFrom("", name))
		if err != nil || string(recs[0].Value) != name {
			t.Fatalf("read from table %q: %v, %v", name, recs, err)
		}
	}
	rows, err := c.Query(context.Background(), "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", db)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(hostile)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("tables of schema %q:\n got %q\nwant %q", db, got, want)
	}

	long := strings.Repeat("n", maxName+1)
	for _, tc := range []struct{ database, table, want string }{
		{long, "t", "at most 63"},
		{db, long, "at most 63"},
		{"nul\x00", "t", "without NUL"},
		{db, "bad\xff", "valid UTF-8"},
		{"pg_mine", "t", "reserved"},
	} {
		err := s.Write(&store.Record{Key: "k", Value: []byte("v")}, store.WriteTo(tc.database, tc.table))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store/postgres: ") {
			t.Errorf("write to %q/%q: %v, want an error saying %q", tc.database, tc.table, err, tc.want)
		}
		if _, err := s.Read("k", store.ReadFrom(tc.database, tc.table)); err == nil || err == store.ErrNotFound {
			t.Errorf("read from %q/%q: %v, want the error of the name", tc.database, tc.table, err)
		}
		if _, err := s.List(store.ListFrom(tc.database, tc.table)); err == nil {
			t.Errorf("list %q/%q: no error", tc.database, tc.table)
		}
	}
	// a name of 63 bytes is taken whole
	name63 := strings.Repeat("m", maxName)
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}, store.WriteTo("", name63)); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.List(store.ListFrom("", name63)); err != nil || len(keys) != 1 {
		t.Fatalf("table of 63 bytes: %q, %v", keys, err)
	}
}

func TestKeyLimit(t *testing.T) {
	s, _ := newStore(t)
	big := strings.Repeat("k", MaxKeySize)
	if err := s.Write(&store.Record{Key: big, Value: []byte("v")}); err != nil {
		t.Fatalf("key of MaxKeySize bytes: %v", err)
	}
	if recs, err := s.Read(big); err != nil || len(recs) != 1 {
		t.Fatalf("read of the key of MaxKeySize bytes: %v", err)
	}
	err := s.Write(&store.Record{Key: big + "k", Value: []byte("v")})
	if err == nil || !strings.Contains(err.Error(), "at most 2048") {
		t.Fatalf("key over MaxKeySize: %v", err)
	}
	if _, err := s.Read(big + "k"); err != store.ErrNotFound {
		t.Fatalf("read of a key over MaxKeySize: %v", err)
	}
	if err := s.Delete(big + "k"); err != nil {
		t.Fatalf("delete of a key over MaxKeySize: %v", err)
	}
}

func TestMetadataErrors(t *testing.T) {
	s, db := newStore(t)
	err := s.Write(&store.Record{Key: "nul", Value: []byte("v"), Metadata: map[string]interface{}{"a": "x\x00y"}})
	if err == nil || !strings.Contains(err.Error(), "NUL") || !strings.Contains(err.Error(), `"nul"`) {
		t.Fatalf("metadata with NUL: %v, want an error naming the record and the NUL", err)
	}
	if _, err := s.Read("nul"); err != store.ErrNotFound {
		t.Fatalf("the refused record: %v", err)
	}
	err = s.Write(&store.Record{Key: "ch", Value: []byte("v"), Metadata: map[string]interface{}{"a": make(chan int)}})
	if err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Fatalf("unencodable metadata: %v", err)
	}
	// metadata another program wrote that is no object
	c := admin(t)
	tb := table{db, store.DefaultTable}
	execSQL(t, c, "INSERT INTO "+tb.ident()+" (key, value, metadata) VALUES ('\\x626164', '', '[1]'), ('\\x6e756c6c', '', 'null')") // bad, null
	for _, k := range []string{"bad", "null"} {
		_, err := s.Read(k)
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), strconv.Quote(k)) {
			t.Fatalf("Read of metadata %s: %v, want ErrCorrupt naming the record", k, err)
		}
	}
}

// TestUnreachable checks calls against an address where nothing listens and one that
// accepts connections and never answers: an error naming the backend and the operation,
// within the store's timeout.
func TestUnreachable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	refused := testutil.FreeAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	for _, tc := range []struct {
		name, addr string
		deadline   bool
	}{
		{"refused", refused, false},
		{"silent", ln.Addr().String(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(store.Nodes("postgres://postgres@"+tc.addr+"/test?sslmode=disable"), Timeout(timeout))
			defer s.Close()
			ops := map[string]func() error{
				"read":   func() error { _, err := s.Read("k"); return err },
				"write":  func() error { return s.Write(&store.Record{Key: "k"}) },
				"delete": func() error { return s.Delete("k") },
				"list":   func() error { _, err := s.List(); return err },
			}
			for op, f := range ops {
				start := time.Now()
				err := f()
				took := time.Since(start)
				if err == nil || err == store.ErrNotFound {
					t.Fatalf("%s: %v, want an error", op, err)
				}
				if !strings.HasPrefix(err.Error(), "store/postgres: "+op) {
					t.Errorf("%s: the error does not name the backend and the operation: %v", op, err)
				}
				if tc.deadline && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: %v, want one that matches context.DeadlineExceeded", op, err)
				}
				if took > timeout+250*time.Millisecond {
					t.Errorf("%s took %s, timeout %s", op, took, timeout)
				}
				t.Logf("%s: %s: %v", op, took.Round(time.Millisecond), err)
			}
		})
	}
}

// TestInitChangesConnection checks that Init with other nodes drops the connection
// made with the old ones, and that a bad connection string gives a clear error.
func TestInitChangesConnection(t *testing.T) {
	dsn := requireServer(t)
	s, _ := newStore(t, store.Nodes("postgres://postgres@"+testutil.FreeAddr(t)+"/test?sslmode=disable"), Timeout(time.Second))
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err == nil {
		t.Fatal("write to a closed port: no error")
	}
	if err := s.Init(store.Nodes(dsn)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("write after Init with the server's address: %v", err)
	}
	if err := s.Init(store.Nodes("postgres://h:notaport/x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("k"); err == nil || !strings.Contains(err.Error(), "connection string") {
		t.Fatalf("read with a bad connection string: %v", err)
	}
	if err := s.Init(store.Nodes(dsn, dsn)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("k"); err == nil || !strings.Contains(err.Error(), "one connection string") {
		t.Fatalf("read with two nodes: %v", err)
	}
	if err := s.Init(store.Nodes(dsn)); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Read("k"); err != nil || string(recs[0].Value) != "v" {
		t.Fatalf("read after Init: %v", err)
	}
}
