// Package storetest is the conformance suite every store.Store passes: the behaviour the
// store package documents, checked the same way for every backend.
//
// A backend's test calls Run with a function that returns a new store, and the Suite of
// the backend's capabilities:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) store.Store {
//			return mystore.NewStore(store.Nodes(addr))
//		}, storetest.Suite{Persistent: true})
//	}
//
// Each call of the function returns a new store value, not yet used. The suite isolates
// its tests by naming the data, not the store: each test calls Init on the stores it gets
// with a database and a table of its own (store.Database, store.Table), and names other
// databases and tables the same way (ReadFrom, WriteTo, …). The names are unique per test
// and per run (a random part), at most 50 bytes of [a-z0-9_] starting with a letter, so a
// backend can keep them in one shared server across runs. At the end of each test the
// suite deletes the records it wrote (through a new store) and closes every store it got.
//
// The tests (subtests of the caller's test, in this order):
//
//	Options              Init sets the database and table that Options returns
//	ReadMissing          an absent key is exactly store.ErrNotFound (==); patterns find nothing
//	RoundTripBinary      values with all 256 byte values, and random ones, read back unchanged
//	Metadata             JSON-typed metadata round-trips; nil metadata; replaced, not merged; unencodable metadata refused
//	Overwrite            a second write replaces value, metadata and expiry
//	Copies               records are copied in and out; Write does not change the caller's record
//	Values               empty values (nil and []byte{}) and one of MaxValueSize bytes
//	Keys                 keys with slashes, dots, spaces, control characters, unicode, 250 bytes; NUL and invalid UTF-8 unless TextKeysOnly
//	EmptyKey             Write of a nil record, an empty key or a NewRecord that could not
//	                     encode its value is an error (store.CheckRecord)
//	Delete               Delete removes; Delete of a missing key, table or database is not an error
//	Queries              Read with ReadPrefix/ReadSuffix/ReadLimit/ReadOffset and List with ListPrefix/ListSuffix/ListLimit/ListOffset, all combinations against a reference model
//	Order                List and pattern reads are sorted by the keys' bytes
//	Expiry               WriteTTL(1s) gone at 1.2 s, WriteExpiry, Record.Expiry, precedence, remaining TTL;
//	                     Create over an expired record
//	ExpiryInPast         WriteExpiry in the past stores nothing and removes the key
//	Scopes               the same key in two tables and two databases are independent; store.Scope
//	Concurrent           8 writers × 100 keys with readers listing meanwhile (on two store values when Persistent)
//	Create               store.Creator: Create writes only where no record is, else exactly store.ErrExists;
//	                     8 goroutines creating each of 20 keys at once: one wins (on two store values when Persistent)
//	Reopen               with Persistent: records survive Close, read by a new store
//	CloseTwice           Close returns nil, twice
//
// The Expiry test waits 1.2 s; the others take milliseconds on a local backend.
//
// LostReply is a check of its own, outside Run, for a backend whose test can make its
// connection lose an answer (testutil.ReplyCutter, a loopback proxy, in micro's own).
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/store"
)

// Suite describes what the backend under test can do. The zero value asks for
// everything except persistence.
type Suite struct {
	// Persistent says records outlive Close: a store made by the next call of the
	// function sees them (the file store, databases). It turns on the Reopen test and
	// makes the Concurrent test write through two store values at once.
	Persistent bool
	// TextKeysOnly says the backend takes only keys that are valid UTF-8 without NUL
	// bytes (a text column, say). The Keys test then leaves out its keys with NUL bytes
	// and invalid UTF-8; the backend's documentation should say so.
	TextKeysOnly bool
	// MaxValueSize is the largest value the backend takes, in bytes; default 1 MiB. The
	// Values test writes one value of this size.
	MaxValueSize int
	// NoCreate says the store is not a store.Creator: the Create test is skipped (every
	// store of micro is one).
	NoCreate bool
}

// tests are the suite's tests, in the order Run runs them.
var tests = []struct {
	name string
	fn   func(*env)
}{
	{"Options", testOptions},
	{"ReadMissing", testReadMissing},
	{"RoundTripBinary", testRoundTripBinary},
	{"Metadata", testMetadata},
	{"Overwrite", testOverwrite},
	{"Copies", testCopies},
	{"Values", testValues},
	{"Keys", testKeys},
	{"EmptyKey", testEmptyKey},
	{"Delete", testDelete},
	{"Queries", testQueries},
	{"Order", testOrder},
	{"Expiry", testExpiry},
	{"ExpiryInPast", testExpiryInPast},
	{"Scopes", testScopes},
	{"Concurrent", testConcurrent},
	{"Create", testCreate},
	{"Reopen", testReopen},
	{"CloseTwice", testCloseTwice},
}

// Names returns the names of the suite's tests, in the order Run runs them (the names of
// the subtests it makes).
func Names() []string {
	names := make([]string, len(tests))
	for i, tc := range tests {
		names[i] = tc.name
	}
	return names
}

// Run runs the suite as subtests of t. newStore returns a new store each call.
func Run(t *testing.T, newStore func(t testing.TB) store.Store, suites ...Suite) {
	if newStore == nil {
		t.Fatal("storetest: newStore is nil")
	}
	var s Suite
	if len(suites) > 0 {
		s = suites[0]
	}
	if s.MaxValueSize <= 0 {
		s.MaxValueSize = 1 << 20
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "Reopen" && !s.Persistent {
				t.Skip("the backend is not persistent (Suite.Persistent)")
			}
			if tc.name == "Create" && s.NoCreate {
				t.Skip("the backend is not a store.Creator (Suite.NoCreate)")
			}
			tc.fn(newEnv(t, newStore, s))
		})
	}
}

// env is one test's view of the backend: its database and table, the stores it got and
// the places it wrote to.
type env struct {
	t        *testing.T
	newStore func(testing.TB) store.Store
	suite    Suite
	db, tb   string

	mu     sync.Mutex
	stores []*tracked
	scopes map[[2]string]bool
}

type tracked struct {
	store.Store
	closed bool
}

// Create is the store's Create; tests that need a Creator check the store's own kind
// (creator).
func (tr *tracked) Create(r *store.Record, opts ...store.WriteOption) error {
	c, ok := tr.Store.(store.Creator)
	if !ok {
		return fmt.Errorf("the %s store is not a store.Creator", tr.Store.String())
	}
	return c.Create(r, opts...)
}

var seq atomic.Uint64

func newEnv(t *testing.T, newStore func(testing.TB) store.Store, s Suite) *env {
	e := &env{t: t, newStore: newStore, suite: s, scopes: map[[2]string]bool{}}
	e.db, e.tb = e.name("d"), e.name("t")
	e.track(e.db, e.tb)
	t.Cleanup(e.cleanup)
	return e
}

// name returns a database or table name unique to this test and run.
func (e *env) name(tag string) string {
	var b strings.Builder
	parts := strings.Split(strings.ToLower(e.t.Name()), "/")
	base := parts[len(parts)-1]
	for _, r := range base {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	base = b.String()
	if len(base) > 24 {
		base = base[:24]
	}
	return fmt.Sprintf("st_%s_%s%d_%08x", base, tag, seq.Add(1)%1000, rand.Uint32())
}

// track records that the test writes to table of db, for the cleanup.
func (e *env) track(db, table string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scopes[[2]string{db, table}] = true
}

// store returns a new store whose database and table are the test's.
func (e *env) store() store.Store {
	e.t.Helper()
	s := e.newStore(e.t)
	if s == nil {
		e.t.Fatal("storetest: newStore returned nil")
	}
	tr := &tracked{Store: s}
	e.mu.Lock()
	e.stores = append(e.stores, tr)
	e.mu.Unlock()
	if err := s.Init(store.Database(e.db), store.Table(e.tb)); err != nil {
		e.t.Fatalf("Init: %v", err)
	}
	return tr
}

// closeStore closes a store the test got, once.
func (e *env) closeStore(s store.Store) error {
	tr := s.(*tracked)
	e.mu.Lock()
	defer e.mu.Unlock()
	if tr.closed {
		return nil
	}
	tr.closed = true
	return tr.Store.Close()
}

// cleanup deletes what the test wrote and closes the stores it got.
func (e *env) cleanup() {
	t := e.t
	s := e.newStore(t)
	if s != nil {
		for scope := range e.scopes {
			keys, err := s.List(store.ListFrom(scope[0], scope[1]))
			if err != nil {
				t.Errorf("cleanup: List of %s/%s: %v", scope[0], scope[1], err)
				continue
			}
			for _, k := range keys {
				if err := s.Delete(k, store.DeleteFrom(scope[0], scope[1])); err != nil {
					t.Errorf("cleanup: Delete %q: %v", k, err)
					break
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("cleanup: Close: %v", err)
		}
	}
	for _, tr := range e.stores {
		if err := e.closeStore(tr); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func write(t *testing.T, s store.Store, r *store.Record, opts ...store.WriteOption) {
	t.Helper()
	if err := s.Write(r, opts...); err != nil {
		t.Fatalf("Write %q: %v", r.Key, err)
	}
}

// readOne reads the one record of key.
func readOne(t *testing.T, s store.Store, key string, opts ...store.ReadOption) *store.Record {
	t.Helper()
	recs, err := s.Read(key, opts...)
	if err != nil {
		t.Fatalf("Read %q: %v", key, err)
	}
	if len(recs) != 1 || recs[0] == nil {
		t.Fatalf("Read %q: %d records, want 1", key, len(recs))
	}
	if recs[0].Key != key {
		t.Fatalf("Read %q: the record's key is %q", key, recs[0].Key)
	}
	return recs[0]
}

// readValue reads the value of key.
func readValue(t *testing.T, s store.Store, key string, opts ...store.ReadOption) string {
	t.Helper()
	return string(readOne(t, s, key, opts...).Value)
}

// notFound checks that key has no record: Read returns store.ErrNotFound itself.
func notFound(t *testing.T, s store.Store, key string, opts ...store.ReadOption) {
	t.Helper()
	recs, err := s.Read(key, opts...)
	if err != store.ErrNotFound { // the contract is the sentinel itself, not wrapped
		t.Fatalf("Read %q: got %d records and error %v (%T), want store.ErrNotFound itself", key, len(recs), err, err)
	}
	if len(recs) != 0 {
		t.Fatalf("Read %q: ErrNotFound with %d records", key, len(recs))
	}
}

func list(t *testing.T, s store.Store, opts ...store.ListOption) []string {
	t.Helper()
	keys, err := s.List(opts...)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return keys
}

// readKeys returns the keys of the records of a pattern read, and checks each value is
// value(key).
func readKeys(t *testing.T, s store.Store, key string, value func(string) string, opts ...store.ReadOption) []string {
	t.Helper()
	recs, err := s.Read(key, opts...)
	if err != nil {
		t.Fatalf("Read %q with a pattern: %v", key, err)
	}
	keys := []string{}
	for _, r := range recs {
		if value != nil && string(r.Value) != value(r.Key) {
			t.Fatalf("Read %q: the value of %q is %q, want %q", key, r.Key, r.Value, value(r.Key))
		}
		keys = append(keys, r.Key)
	}
	return keys
}

func sameKeys(got, want []string) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return slices.Equal(got, want)
}

func testOptions(e *env) {
	t := e.t
	s := e.store()
	o := s.Options()
	if o.Database != e.db || o.Table != e.tb {
		t.Fatalf("after Init(Database(%q), Table(%q)), Options has %q, %q", e.db, e.tb, o.Database, o.Table)
	}
	if s.String() == "" {
		t.Fatal("String is empty")
	}
}

func testReadMissing(e *env) {
	t := e.t
	s := e.store()
	notFound(t, s, "missing")
	write(t, s, &store.Record{Key: "present", Value: []byte("v")})
	notFound(t, s, "missing")
	notFound(t, s, "presen")
	notFound(t, s, "present ")
	other := e.name("o")
	notFound(t, s, "present", store.ReadFrom(e.db, other))
	notFound(t, s, "present", store.ReadFrom(e.name("o"), e.tb))
	if keys := readKeys(t, s, "missing", nil, store.ReadPrefix()); len(keys) != 0 {
		t.Fatalf("prefix read of nothing: %q", keys)
	}
	if keys := readKeys(t, s, "missing", nil, store.ReadSuffix()); len(keys) != 0 {
		t.Fatalf("suffix read of nothing: %q", keys)
	}
	if keys := list(t, s, store.ListPrefix("missing")); len(keys) != 0 {
		t.Fatalf("List of a prefix nothing has: %q", keys)
	}
	if keys := list(t, s, store.ListFrom(e.db, other)); len(keys) != 0 {
		t.Fatalf("List of an unused table: %q", keys)
	}
	if keys := list(t, s, store.ListFrom(e.name("o"), e.tb)); len(keys) != 0 {
		t.Fatalf("List of an unused database: %q", keys)
	}
}

func testRoundTripBinary(e *env) {
	t := e.t
	s := e.store()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	rev := slices.Clone(all)
	slices.Reverse(rev)
	rnd := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	values := map[string][]byte{"bin/all": all, "bin/rev": rev, "bin/random": rnd, "bin/zeros": make([]byte, 300)}
	for k, v := range values {
		write(t, s, &store.Record{Key: k, Value: v})
	}
	for k, v := range values {
		got := readOne(t, s, k)
		if !bytes.Equal(got.Value, v) {
			t.Fatalf("%s: the value read back differs from the one written (%d bytes, want %d)", k, len(got.Value), len(v))
		}
		if got.Expiry != 0 {
			t.Fatalf("%s: Expiry %s for a record written without one", k, got.Expiry)
		}
	}
	recs, err := s.Read("bin/", store.ReadPrefix())
	if err != nil || len(recs) != len(values) {
		t.Fatalf("prefix read: %d records, %v", len(recs), err)
	}
	for _, got := range recs {
		if !bytes.Equal(got.Value, values[got.Key]) {
			t.Fatalf("prefix read: the value of %s differs", got.Key)
		}
	}
}

func testMetadata(e *env) {
	t := e.t
	s := e.store()
	md := map[string]interface{}{
		"string": "text ✓",
		"empty":  "",
		"number": 42.5,
		"int":    float64(7),
		"tiny":   -1e-9,
		"true":   true,
		"false":  false,
		"nil":    nil,
		"list":   []interface{}{"a", 1.0, nil, true},
		"object": map[string]interface{}{"x": "y", "deep": map[string]interface{}{"z": 1.0}},
		"":       "empty key",
	}
	write(t, s, &store.Record{Key: "md", Value: []byte("v"), Metadata: md})
	if got := readOne(t, s, "md").Metadata; !reflect.DeepEqual(got, md) {
		t.Fatalf("metadata read back:\n got %#v\nwant %#v", got, md)
	}
	write(t, s, &store.Record{Key: "nomd", Value: []byte("v")})
	if got := readOne(t, s, "nomd").Metadata; len(got) != 0 {
		t.Fatalf("nil metadata read back as %#v", got)
	}
	write(t, s, &store.Record{Key: "md", Value: []byte("v2"), Metadata: map[string]interface{}{"only": "this"}})
	if got := readOne(t, s, "md").Metadata; !reflect.DeepEqual(got, map[string]interface{}{"only": "this"}) {
		t.Fatalf("metadata after a second write: %#v (replaced, not merged)", got)
	}
	bad := &store.Record{Key: "badmd", Value: []byte("v"), Metadata: map[string]interface{}{"ch": make(chan int)}}
	if err := s.Write(bad); err == nil {
		t.Fatal("Write of metadata that JSON cannot encode: no error")
	}
	notFound(t, s, "badmd")
}

func testOverwrite(e *env) {
	t := e.t
	s := e.store()
	write(t, s, &store.Record{Key: "k", Value: []byte("one"), Metadata: map[string]interface{}{"n": 1.0}}, store.WriteTTL(time.Hour))
	write(t, s, &store.Record{Key: "k", Value: []byte("two")})
	got := readOne(t, s, "k")
	if string(got.Value) != "two" || len(got.Metadata) != 0 || got.Expiry != 0 {
		t.Fatalf("after a second write: value %q metadata %v expiry %s, want two, none, 0", got.Value, got.Metadata, got.Expiry)
	}
	if keys := list(t, s); !sameKeys(keys, []string{"k"}) {
		t.Fatalf("List: %q", keys)
	}
}

func testCopies(e *env) {
	t := e.t
	s := e.store()
	w := &store.Record{Key: "c", Value: []byte("abc"), Metadata: map[string]interface{}{"a": "b"}}
	write(t, s, w, store.WriteTTL(time.Hour))
	if w.Expiry != 0 || w.Key != "c" {
		t.Fatalf("Write changed the caller's record: %+v", w)
	}
	w.Value[0] = 'X'
	w.Metadata["a"] = "changed"
	w.Metadata["new"] = "added"
	r := readOne(t, s, "c")
	if string(r.Value) != "abc" || !reflect.DeepEqual(r.Metadata, map[string]interface{}{"a": "b"}) {
		t.Fatalf("changing the written record changed the stored one: %q %v", r.Value, r.Metadata)
	}
	r.Value[0] = 'Y'
	r.Metadata["a"] = "mine"
	r2 := readOne(t, s, "c")
	if string(r2.Value) != "abc" || r2.Metadata["a"] != "b" {
		t.Fatalf("changing a record Read returned changed the stored one: %q %v", r2.Value, r2.Metadata)
	}
}

func testValues(e *env) {
	t := e.t
	s := e.store()
	write(t, s, &store.Record{Key: "nil"})
	write(t, s, &store.Record{Key: "empty", Value: []byte{}})
	for _, k := range []string{"nil", "empty"} {
		if v := readOne(t, s, k).Value; len(v) != 0 {
			t.Fatalf("%s value read back as %d bytes", k, len(v))
		}
	}
	big := make([]byte, e.suite.MaxValueSize)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	write(t, s, &store.Record{Key: "big", Value: big})
	if got := readOne(t, s, "big").Value; !bytes.Equal(got, big) {
		t.Fatalf("a value of %d bytes read back as %d different bytes", len(big), len(got))
	}
	recs, err := s.Read("bi", store.ReadPrefix())
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Value, big) {
		t.Fatalf("prefix read of the big value: %d records, %v", len(recs), err)
	}
	if keys := list(t, s); !sameKeys(keys, []string{"big", "empty", "nil"}) {
		t.Fatalf("List: %q", keys)
	}
}

// unusualKeys are keys every backend takes.
var unusualKeys = []string{
	"a/b/c", "a/b", "a//b", "/leading", "trailing/", "../up", ".", "..", "a.b.c",
	"with space", " leading space", "trailing space ", "tab\there", "new\nline", "cr\rlf", "\x01control\x7f",
	"ключ", "日本語", "emoji 😀", "a\u00e9", "ae\u0301", "%2F%20", "*?[]{}()", `back\slash`, `"quoted"`, "'single'",
	"colon:key", "semi;colon", "#hash", "=eq", "+plus", "~tilde", "$dollar", "@at", "UPPER", "upper",
	strings.Repeat("k", 250),
}

// binaryKeys are keys with NUL bytes or invalid UTF-8, left out by Suite.TextKeysOnly.
var binaryKeys = []string{"nul\x00inside", "\x00", "\x00\x00lead", "\xff\xfe invalid", "tail\xc3"}

func testKeys(e *env) {
	t := e.t
	s := e.store()
	keys := slices.Clone(unusualKeys)
	if !e.suite.TextKeysOnly {
		keys = append(keys, binaryKeys...)
	}
	value := func(k string) string { return "value of " + k }
	for _, k := range keys {
		write(t, s, &store.Record{Key: k, Value: []byte(value(k))})
	}
	for _, k := range keys {
		if got := readValue(t, s, k); got != value(k) {
			t.Fatalf("key %q: value %q", k, got)
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := list(t, s); !sameKeys(got, want) {
		t.Fatalf("List:\n got %q\nwant %q", got, want)
	}
	for _, prefix := range []string{"a/", "a", "/", ".", " ", "\x01", "ключ", "a\u00e9"} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		if got := readKeys(t, s, prefix, value, store.ReadPrefix()); !sameKeys(got, want) {
			t.Fatalf("Read prefix %q:\n got %q\nwant %q", prefix, got, want)
		}
		if got := list(t, s, store.ListPrefix(prefix)); !sameKeys(got, want) {
			t.Fatalf("List prefix %q:\n got %q\nwant %q", prefix, got, want)
		}
	}
	// deleting every other key leaves the rest, among them keys that are prefixes of
	// deleted ones and keys that differ from deleted ones by Unicode normalisation only
	for i, k := range keys {
		if i%2 == 0 {
			if err := s.Delete(k); err != nil {
				t.Fatalf("Delete %q: %v", k, err)
			}
		}
	}
	var rest []string
	for i, k := range keys {
		if i%2 == 0 {
			notFound(t, s, k)
		} else {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	if got := list(t, s); !sameKeys(got, rest) {
		t.Fatalf("List after deleting half:\n got %q\nwant %q", got, rest)
	}
}

func testEmptyKey(e *env) {
	t := e.t
	s := e.store()
	if err := s.Write(nil); err == nil {
		t.Fatal("Write(nil): no error")
	}
	if err := s.Write(&store.Record{Key: "", Value: []byte("v")}); err == nil {
		t.Fatal("Write of an empty key: no error")
	}
	if err := s.Write(store.NewRecord("unencodable", make(chan int))); err == nil {
		t.Fatal("Write of a NewRecord whose value could not be encoded: no error (see store.CheckRecord)")
	}
	notFound(t, s, "")
	notFound(t, s, "unencodable")
	if err := s.Delete(""); err != nil {
		t.Fatalf("Delete of the empty key: %v", err)
	}
	if keys := list(t, s); len(keys) != 0 {
		t.Fatalf("List after refused writes: %q", keys)
	}
}

func testDelete(e *env) {
	t := e.t
	s := e.store()
	for _, k := range []string{"a", "b", "c"} {
		write(t, s, &store.Record{Key: k, Value: []byte(k)})
	}
	if err := s.Delete("b"); err != nil {
		t.Fatal(err)
	}
	notFound(t, s, "b")
	if keys := list(t, s); !sameKeys(keys, []string{"a", "c"}) {
		t.Fatalf("List after Delete: %q", keys)
	}
	if got := readValue(t, s, "a"); got != "a" {
		t.Fatalf("a: %q", got)
	}
	for _, del := range []struct {
		what string
		key  string
		opts []store.DeleteOption
	}{
		{"a key deleted already", "b", nil},
		{"a key never written", "never", nil},
		{"a prefix of a key", "", nil},
		{"a key of an unused table", "a", []store.DeleteOption{store.DeleteFrom(e.db, e.name("o"))}},
		{"a key of an unused database", "a", []store.DeleteOption{store.DeleteFrom(e.name("o"), e.tb)}},
	} {
		if err := s.Delete(del.key, del.opts...); err != nil {
			t.Fatalf("Delete of %s: %v, want nil", del.what, err)
		}
	}
	if keys := list(t, s); !sameKeys(keys, []string{"a", "c"}) {
		t.Fatalf("List after Deletes elsewhere: %q", keys)
	}
	write(t, s, &store.Record{Key: "b", Value: []byte("again")})
	if got := readValue(t, s, "b"); got != "again" {
		t.Fatalf("b written again: %q", got)
	}
}

// queryKeys are the keys of the Queries test.
var queryKeys = []string{
	"a", "a1", "a10", "a2", "ab", "abc", "abc/1", "abc/2", "b", "b1", "ba", "bab",
	"c/1", "c/10", "c/2", "d", "z1",
}

// model is the reference: the keys that match, sorted, then offset, then limit.
func model(prefix, suffix string, offset, limit uint) []string {
	var out []string
	for _, k := range queryKeys { // sorted
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			out = append(out, k)
		}
	}
	if offset >= uint(len(out)) {
		return nil
	}
	out = out[offset:]
	if limit > 0 && limit < uint(len(out)) {
		out = out[:limit]
	}
	return out
}

func testQueries(e *env) {
	t := e.t
	s := e.store()
	if !slices.IsSorted(queryKeys) {
		t.Fatal("storetest: queryKeys must be sorted")
	}
	value := func(k string) string { return "v:" + k }
	perm := rand.New(rand.NewPCG(5, 6)).Perm(len(queryKeys))
	for _, i := range perm {
		write(t, s, &store.Record{Key: queryKeys[i], Value: []byte(value(queryKeys[i]))})
	}
	offsets, limits := []uint{0, 1, 3, 20}, []uint{0, 1, 2, 20}
	for _, prefix := range []string{"", "a", "ab", "abc/", "b", "c/", "a10", "zz"} {
		for _, suffix := range []string{"", "1", "b", "/2", "a", "zz"} {
			for _, off := range offsets {
				for _, lim := range limits {
					want := model(prefix, suffix, off, lim)
					got := list(t, s, store.ListPrefix(prefix), store.ListSuffix(suffix), store.ListOffset(off), store.ListLimit(lim))
					if !sameKeys(got, want) {
						t.Fatalf("List prefix %q suffix %q offset %d limit %d:\n got %q\nwant %q", prefix, suffix, off, lim, got, want)
					}
				}
			}
		}
	}
	for _, key := range []string{"", "a", "ab", "abc/1", "1", "/2", "c/", "zz"} {
		for _, mode := range []string{"prefix", "suffix", "both"} {
			for _, off := range []uint{0, 1, 3} {
				for _, lim := range []uint{0, 1, 2} {
					opts := []store.ReadOption{store.ReadOffset(off), store.ReadLimit(lim)}
					var prefix, suffix string
					if mode != "suffix" {
						opts, prefix = append(opts, store.ReadPrefix()), key
					}
					if mode != "prefix" {
						opts, suffix = append(opts, store.ReadSuffix()), key
					}
					want := model(prefix, suffix, off, lim)
					if got := readKeys(t, s, key, value, opts...); !sameKeys(got, want) {
						t.Fatalf("Read %q %s offset %d limit %d:\n got %q\nwant %q", key, mode, off, lim, got, want)
					}
				}
			}
		}
	}
	// an exact read ignores offset and limit
	if got := readValue(t, s, "ab", store.ReadOffset(5), store.ReadLimit(1)); got != value("ab") {
		t.Fatalf("exact read with offset and limit: %q", got)
	}
}

func testOrder(e *env) {
	t := e.t
	s := e.store()
	keys := []string{"b", "B", "a", "a0", "a/", "a\u00e9", "a~", "A", "_", "0", "10", "9", "a a", "a-"}
	r := rand.New(rand.NewPCG(7, 8))
	const alphabet = "aAbB09_-/.~ é"
	runes := []rune(alphabet)
	for len(keys) < 60 {
		n := 1 + r.IntN(12)
		var b strings.Builder
		for range n {
			b.WriteRune(runes[r.IntN(len(runes))])
		}
		if k := b.String(); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for _, k := range keys {
		write(t, s, &store.Record{Key: k, Value: []byte(k)})
	}
	want := slices.Clone(keys)
	slices.Sort(want) // Go's string order: the bytes'
	if got := list(t, s); !sameKeys(got, want) {
		t.Fatalf("List is not sorted by the keys' bytes:\n got %q\nwant %q", got, want)
	}
	if got := readKeys(t, s, "", func(k string) string { return k }, store.ReadPrefix()); !sameKeys(got, want) {
		t.Fatalf("Read with a prefix is not sorted by the keys' bytes:\n got %q\nwant %q", got, want)
	}
}

func testExpiry(e *env) {
	t := e.t
	s := e.store()
	start := time.Now()
	var last time.Time
	gone := func(r *store.Record, opts ...store.WriteOption) {
		last = time.Now()
		write(t, s, r, opts...)
	}
	gone(&store.Record{Key: "ttl", Value: []byte("v")}, store.WriteTTL(time.Second))
	gone(&store.Record{Key: "expiry", Value: []byte("v")}, store.WriteExpiry(time.Now().Add(time.Second)))
	gone(&store.Record{Key: "record", Value: []byte("v"), Expiry: time.Second})
	gone(&store.Record{Key: "ttlwins", Value: []byte("v")}, store.WriteTTL(time.Second), store.WriteExpiry(time.Now().Add(time.Hour)))
	gone(&store.Record{Key: "optionwins", Value: []byte("v"), Expiry: time.Hour}, store.WriteTTL(time.Second))
	write(t, s, &store.Record{Key: "ttlwins2", Value: []byte("v")}, store.WriteTTL(time.Hour), store.WriteExpiry(time.Now().Add(-time.Minute)))
	write(t, s, &store.Record{Key: "long", Value: []byte("v")}, store.WriteTTL(time.Hour))
	longWritten := time.Now() // the TTL of long began before this
	write(t, s, &store.Record{Key: "perm", Value: []byte("v")})

	// before they expire, the records are there with the time they have left (checked
	// only when the writes were quick enough for it to mean something)
	if since := time.Since(start); since < 700*time.Millisecond {
		for _, k := range []string{"ttl", "expiry", "record", "ttlwins", "optionwins"} {
			if r := readOne(t, s, k); r.Expiry <= 0 || r.Expiry > time.Second {
				t.Fatalf("%s right after the write: Expiry %s, want in (0, 1s]", k, r.Expiry)
			}
		}
	} else {
		t.Logf("the writes took %s: the records with a 1 s TTL are not read before they expire", since)
	}
	if r := readOne(t, s, "long"); r.Expiry <= time.Hour-time.Minute || r.Expiry > time.Hour {
		t.Fatalf("long: Expiry %s, want about 1h", r.Expiry)
	}
	if r := readOne(t, s, "perm"); r.Expiry != 0 {
		t.Fatalf("perm: Expiry %s, want 0", r.Expiry)
	}

	// 1.2 s after the last of the writes with a 1 s TTL began
	<-time.After(time.Until(last.Add(1200 * time.Millisecond)))
	if !e.suite.NoCreate {
		c := creator(t, s)
		// an expired record counts as none, whether or not the backend removed it yet
		if err := c.Create(&store.Record{Key: "optionwins", Value: []byte("again")}); err != nil {
			t.Fatalf("Create over an expired record: %v", err)
		}
		if got := readValue(t, s, "optionwins"); got != "again" {
			t.Fatalf("optionwins after Create over its expired record: %q", got)
		}
		if err := s.Delete("optionwins"); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"ttl", "expiry", "record", "ttlwins", "optionwins"} {
		notFound(t, s, k)
	}
	want := []string{"long", "perm", "ttlwins2"}
	if got := list(t, s); !sameKeys(got, want) {
		t.Fatalf("List after expiry: %q, want %q", got, want)
	}
	if got := readKeys(t, s, "", nil, store.ReadPrefix()); !sameKeys(got, want) {
		t.Fatalf("prefix read after expiry: %q, want %q", got, want)
	}
	if got := list(t, s, store.ListOffset(1), store.ListLimit(1)); !sameKeys(got, []string{"perm"}) {
		t.Fatalf("List offset 1 limit 1 after expiry: %q, want [perm] (expired records are not counted)", got)
	}
	if got := readKeys(t, s, "", nil, store.ReadPrefix(), store.ReadOffset(2)); !sameKeys(got, []string{"ttlwins2"}) {
		t.Fatalf("prefix read offset 2 after expiry: %q, want [ttlwins2]", got)
	}
	// at least this much of long's TTL has gone by when it is read (50 ms of slack for
	// a backend's clock)
	passed := time.Since(longWritten) - 50*time.Millisecond
	if r := readOne(t, s, "long"); r.Expiry > time.Hour-passed || r.Expiry <= 0 {
		t.Fatalf("long, %s after it was written: Expiry %s, want the time left", passed, r.Expiry)
	}
}

func testExpiryInPast(e *env) {
	t := e.t
	s := e.store()
	past := time.Now().Add(-time.Minute)
	write(t, s, &store.Record{Key: "old", Value: []byte("v")})
	write(t, s, &store.Record{Key: "old", Value: []byte("v2")}, store.WriteExpiry(past))
	notFound(t, s, "old")
	write(t, s, &store.Record{Key: "new", Value: []byte("v")}, store.WriteExpiry(past))
	notFound(t, s, "new")
	write(t, s, &store.Record{Key: "kept", Value: []byte("v")})
	if got := list(t, s); !sameKeys(got, []string{"kept"}) {
		t.Fatalf("List: %q, want [kept]", got)
	}
	if got := readKeys(t, s, "", nil, store.ReadPrefix()); !sameKeys(got, []string{"kept"}) {
		t.Fatalf("prefix read: %q, want [kept]", got)
	}
}

func testScopes(e *env) {
	t := e.t
	s := e.store()
	db1, t1 := e.db, e.tb
	db2, t2 := e.name("d"), e.name("t")
	e.track(db1, t2)
	e.track(db2, t1)
	e.track(db2, t2)
	write(t, s, &store.Record{Key: "k", Value: []byte("1")}) // the store's: db1, t1
	write(t, s, &store.Record{Key: "k", Value: []byte("2")}, store.WriteTo(db1, t2))
	write(t, s, &store.Record{Key: "k", Value: []byte("3")}, store.WriteTo(db2, t1))
	write(t, s, &store.Record{Key: "k", Value: []byte("4")}, store.WriteTo(db2, t2))
	write(t, s, &store.Record{Key: "only2", Value: []byte("5")}, store.WriteTo(db1, t2))
	write(t, s, &store.Record{Key: "tableonly", Value: []byte("6")}, store.WriteTo("", t2)) // db1, t2

	check := func(when string, want map[[2]string]map[string]string) {
		t.Helper()
		for sc, kv := range want {
			var keys []string
			for k, v := range kv {
				if got := readValue(t, s, k, store.ReadFrom(sc[0], sc[1])); got != v {
					t.Fatalf("%s: %q in %s/%s: %q, want %q", when, k, sc[0], sc[1], got, v)
				}
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if got := list(t, s, store.ListFrom(sc[0], sc[1])); !sameKeys(got, keys) {
				t.Fatalf("%s: List of %s/%s: %q, want %q", when, sc[0], sc[1], got, keys)
			}
			if got := readKeys(t, s, "", func(k string) string { return kv[k] }, store.ReadFrom(sc[0], sc[1]), store.ReadPrefix()); !sameKeys(got, keys) {
				t.Fatalf("%s: prefix read of %s/%s: %q, want %q", when, sc[0], sc[1], got, keys)
			}
		}
	}
	check("after the writes", map[[2]string]map[string]string{
		{db1, t1}: {"k": "1"},
		{db1, t2}: {"k": "2", "only2": "5", "tableonly": "6"},
		{db2, t1}: {"k": "3"},
		{db2, t2}: {"k": "4"},
	})
	if got := readValue(t, s, "k"); got != "1" {
		t.Fatalf("the store's table: %q", got)
	}
	if got := readValue(t, s, "k", store.ReadFrom(db2, "")); got != "3" {
		t.Fatalf("ReadFrom(db2, \"\") is db2 and the store's table: %q", got)
	}
	if err := s.Delete("k", store.DeleteFrom(db1, t2)); err != nil {
		t.Fatal(err)
	}
	notFound(t, s, "k", store.ReadFrom(db1, t2))
	check("after deleting k from one table", map[[2]string]map[string]string{
		{db1, t1}: {"k": "1"},
		{db1, t2}: {"only2": "5", "tableonly": "6"},
		{db2, t1}: {"k": "3"},
		{db2, t2}: {"k": "4"},
	})

	// store.Scope over the store
	sc := store.Scope(s, db2, t1)
	if o := sc.Options(); o.Database != db2 || o.Table != t1 {
		t.Fatalf("Scope's Options: %q, %q", o.Database, o.Table)
	}
	if got := readValue(t, sc, "k"); got != "3" {
		t.Fatalf("Scope(db2, t1) reads %q", got)
	}
	write(t, sc, &store.Record{Key: "scoped", Value: []byte("7")})
	if got := readValue(t, s, "scoped", store.ReadFrom(db2, t1)); got != "7" {
		t.Fatalf("a write through Scope landed elsewhere: %q", got)
	}
	notFound(t, s, "scoped")
	if got := readValue(t, sc, "k", store.ReadFrom(db2, t2)); got != "4" {
		t.Fatalf("a call's ReadFrom through Scope: %q", got)
	}

	// Init changes the store's database, and keeps its table
	if err := s.Init(store.Database(db2)); err != nil {
		t.Fatal(err)
	}
	if o := s.Options(); o.Database != db2 || o.Table != t1 {
		t.Fatalf("after Init(Database(db2)): Options has %q, %q", o.Database, o.Table)
	}
	if got := readValue(t, s, "k"); got != "3" {
		t.Fatalf("after Init(Database(db2)): %q", got)
	}
}

func testConcurrent(e *env) {
	t := e.t
	stores := []store.Store{e.store()}
	if e.suite.Persistent {
		stores = append(stores, e.store())
	}
	const writers, perWriter = 8, 100
	value := func(w, i int) string { return fmt.Sprintf("v-%d-%03d", w, i) }
	errc := make(chan error, writers+2)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := range perWriter {
				if err := s.Write(&store.Record{Key: fmt.Sprintf("w%d/%03d", w, i), Value: []byte(value(w, i))}); err != nil {
					errc <- err
					return
				}
				if i%10 == 0 {
					if err := s.Write(&store.Record{Key: "shared", Value: []byte(value(w, i))}); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s := stores[r%len(stores)]
			for range 200 { // bounded; ends when the writers are done
				select {
				case <-done:
					return
				default:
				}
				keys, err := s.List(store.ListPrefix("w"))
				if err != nil {
					errc <- err
					return
				}
				if !slices.IsSorted(keys) {
					errc <- fmt.Errorf("List during writes is not sorted: %q", keys)
					return
				}
				recs, err := s.Read("w1/", store.ReadPrefix())
				if err != nil {
					errc <- err
					return
				}
				for _, rec := range recs {
					var i int
					if _, err := fmt.Sscanf(rec.Key, "w1/%03d", &i); err != nil || string(rec.Value) != value(1, i) {
						errc <- fmt.Errorf("read during writes: %q = %q", rec.Key, rec.Value)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	s := stores[0]
	keys := list(t, s, store.ListPrefix("w"))
	if len(keys) != writers*perWriter {
		t.Fatalf("%d keys after %d concurrent writes", len(keys), writers*perWriter)
	}
	for w := range writers {
		for i := range perWriter {
			if got := readValue(t, s, fmt.Sprintf("w%d/%03d", w, i)); got != value(w, i) {
				t.Fatalf("w%d/%03d: %q", w, i, got)
			}
		}
	}
	got := readValue(t, s, "shared")
	var w, i int
	if _, err := fmt.Sscanf(got, "v-%d-%03d", &w, &i); err != nil || got != value(w, i) || i%10 != 0 {
		t.Fatalf("shared: %q is none of the values written", got)
	}
}

// creator returns s as a store.Creator, failing the test if it is not one.
func creator(t *testing.T, s store.Store) store.Creator {
	under := s
	if tr, ok := s.(*tracked); ok {
		under = tr.Store
	}
	if _, ok := under.(store.Creator); !ok {
		t.Fatalf("the %s store is not a store.Creator (set Suite.NoCreate if it cannot be)", s.String())
	}
	c, ok := s.(store.Creator)
	if !ok {
		t.Fatalf("the %s store is not a store.Creator (set Suite.NoCreate if it cannot be)", s.String())
	}
	return c
}

func testCreate(e *env) {
	t := e.t
	s := e.store()
	c := creator(t, s)
	md := map[string]interface{}{"by": "first"}
	if err := c.Create(&store.Record{Key: "k", Value: []byte("first"), Metadata: md}, store.WriteTTL(time.Hour)); err != nil {
		t.Fatalf("Create of a new key: %v", err)
	}
	if err := c.Create(&store.Record{Key: "k", Value: []byte("second")}); err != store.ErrExists {
		t.Fatalf("Create of a key that has a record: %v, want store.ErrExists itself", err)
	}
	r := readOne(t, s, "k")
	if string(r.Value) != "first" || !reflect.DeepEqual(r.Metadata, md) || r.Expiry <= time.Hour-time.Minute || r.Expiry > time.Hour {
		t.Fatalf("after a refused Create: %q %v expiry %s, want the first record with about 1h left", r.Value, r.Metadata, r.Expiry)
	}
	// the past expiry of a refused Create removes nothing
	if err := c.Create(&store.Record{Key: "k", Value: []byte("x")}, store.WriteExpiry(time.Now().Add(-time.Minute))); err != store.ErrExists {
		t.Fatalf("Create with a past expiry over a record: %v, want store.ErrExists", err)
	}
	if got := readValue(t, s, "k"); got != "first" {
		t.Fatalf("after a refused Create with a past expiry: %q", got)
	}
	// a write replaces as ever; a delete makes room
	write(t, s, &store.Record{Key: "k", Value: []byte("written")})
	if err := c.Create(&store.Record{Key: "k", Value: []byte("x")}); err != store.ErrExists {
		t.Fatalf("Create after Write: %v, want store.ErrExists", err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(&store.Record{Key: "k", Value: []byte("after delete")}); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if got := readValue(t, s, "k"); got != "after delete" {
		t.Fatalf("after Create after Delete: %q", got)
	}
	// an empty value, and a past expiry where no record is: nothing stored, no error
	if err := c.Create(&store.Record{Key: "empty"}); err != nil {
		t.Fatalf("Create of an empty value: %v", err)
	}
	if r := readOne(t, s, "empty"); len(r.Value) != 0 {
		t.Fatalf("empty: %q", r.Value)
	}
	if err := c.Create(&store.Record{Key: "past", Value: []byte("v")}, store.WriteExpiry(time.Now().Add(-time.Minute))); err != nil {
		t.Fatalf("Create with a past expiry of a new key: %v", err)
	}
	notFound(t, s, "past")
	// tables are independent
	other := e.name("t")
	e.track(e.db, other)
	if err := c.Create(&store.Record{Key: "k", Value: []byte("other table")}, store.WriteTo(e.db, other)); err != nil {
		t.Fatalf("Create of the key in another table: %v", err)
	}
	if got := readValue(t, s, "k", store.ReadFrom(e.db, other)); got != "other table" {
		t.Fatalf("k in the other table: %q", got)
	}
	sc := creator(t, store.Scope(s, e.db, other))
	if err := sc.Create(&store.Record{Key: "k", Value: []byte("x")}); err != store.ErrExists {
		t.Fatalf("Create through store.Scope of a key that has a record: %v, want store.ErrExists", err)
	}
	if err := c.Create(nil); err == nil {
		t.Fatal("Create(nil): no error")
	}
	if err := c.Create(&store.Record{Value: []byte("v")}); err == nil {
		t.Fatal("Create of an empty key: no error")
	}

	// racing creators: exactly one wins each key, and its value is the one stored
	stores := []store.Creator{c}
	if e.suite.Persistent {
		stores = append(stores, creator(t, e.store()))
	}
	const racers, keys = 8, 20
	var wins [keys]atomic.Int32
	var winner [keys]atomic.Value
	errc := make(chan error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := stores[g%len(stores)]
			<-start
			for k := range keys {
				v := fmt.Sprintf("racer-%d", g)
				switch err := cs.Create(&store.Record{Key: fmt.Sprintf("race/%02d", k), Value: []byte(v)}); err {
				case nil:
					wins[k].Add(1)
					winner[k].Store(v)
				case store.ErrExists:
				default:
					errc <- err
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("a racing Create: %v", err)
	}
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Fatalf("race/%02d: %d of %d racing creators succeeded, want exactly 1", k, n, racers)
		}
		if got, want := readValue(t, s, fmt.Sprintf("race/%02d", k)), winner[k].Load().(string); got != want {
			t.Fatalf("race/%02d holds %q, but %q won", k, got, want)
		}
	}
}

func testReopen(e *env) {
	t := e.t
	s := e.store()
	other := e.name("t")
	e.track(e.db, other)
	md := map[string]interface{}{"kind": "persistent", "n": 3.0}
	write(t, s, &store.Record{Key: "p1", Value: []byte{0, 1, 2, 255}, Metadata: md})
	write(t, s, &store.Record{Key: "p2", Value: []byte("ttl")}, store.WriteTTL(time.Hour))
	write(t, s, &store.Record{Key: "p3", Value: []byte("other table")}, store.WriteTo(e.db, other))
	write(t, s, &store.Record{Key: "deleted", Value: []byte("x")})
	if err := s.Delete("deleted"); err != nil {
		t.Fatal(err)
	}
	if err := e.closeStore(s); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := e.store()
	r := readOne(t, s2, "p1")
	if !bytes.Equal(r.Value, []byte{0, 1, 2, 255}) || !reflect.DeepEqual(r.Metadata, md) {
		t.Fatalf("p1 after reopening: %v %v", r.Value, r.Metadata)
	}
	if r := readOne(t, s2, "p2"); string(r.Value) != "ttl" || r.Expiry <= time.Hour-time.Minute || r.Expiry > time.Hour {
		t.Fatalf("p2 after reopening: %q, Expiry %s", r.Value, r.Expiry)
	}
	if got := readValue(t, s2, "p3", store.ReadFrom(e.db, other)); got != "other table" {
		t.Fatalf("p3 after reopening: %q", got)
	}
	notFound(t, s2, "deleted")
	if got := list(t, s2); !sameKeys(got, []string{"p1", "p2"}) {
		t.Fatalf("List after reopening: %q", got)
	}
}

func testCloseTwice(e *env) {
	t := e.t
	s := e.store()
	write(t, s, &store.Record{Key: "k", Value: []byte("v")})
	tr := s.(*tracked)
	e.mu.Lock()
	tr.closed = true
	e.mu.Unlock()
	if err := tr.Store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Store.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// LostReply checks a store.Creator whose answer to a Create is lost on the way back, a
// fault the caller sets up: arm makes the connection lose the server's answer to the
// next request that names key, and lost reports how many answers it lost. The Create
// ran on the server, so the store, sending it again, finds the key holding its own
// record: the Create must succeed (not store.ErrExists), the record must read back, and
// a Create of another value must then get store.ErrExists.
func LostReply(t *testing.T, s store.Store, key string, arm func(), lost func() int) {
	t.Helper()
	c, ok := s.(store.Creator)
	if !ok {
		t.Fatalf("%T is not a store.Creator", s)
	}
	arm()
	err := c.Create(&store.Record{Key: key, Value: []byte("mine")})
	if n := lost(); n != 1 {
		t.Fatalf("%d answers lost, want 1 (the fault did not happen)", n)
	}
	if err != nil {
		t.Fatalf("Create whose first answer was lost = %v, want nil: the record it wrote is its own", err)
	}
	recs, err := s.Read(key)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "mine" {
		t.Fatalf("Read after Create = %v, %v", recs, err)
	}
	if err := c.Create(&store.Record{Key: key, Value: []byte("other")}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second Create of another value = %v, want ErrExists", err)
	}
}
