package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

func TestDefaults(t *testing.T) {
	for _, s := range []store.Store{
		store.NewMemoryStore(), store.NewFileStore(store.DirOption(t.TempDir())), store.NewNoopStore(), store.NewStore(),
	} {
		o := s.Options()
		if o.Database != "micro" || o.Table != "micro" || o.Context == nil || o.Logger == nil {
			t.Errorf("%s: defaults %+v", s, o)
		}
		if err := s.Init(store.Database(""), store.Table("")); err != nil {
			t.Fatal(err)
		}
		if o := s.Options(); o.Database != "micro" || o.Table != "micro" {
			t.Errorf("%s: empty names after Init: %q, %q", s, o.Database, o.Table)
		}
		if err := s.Init(store.Nodes("a:1", "b:2")); err != nil || len(s.Options().Nodes) != 2 {
			t.Errorf("%s: Nodes: %v", s, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := store.NewStore().String(); got != "file" {
		t.Fatalf("NewStore is %q, want the file store", got)
	}
	if got := store.DefaultStore.String(); got != "file" {
		t.Fatalf("DefaultStore is %q, want the file store", got)
	}
}

func TestRecordEncodeDecode(t *testing.T) {
	type user struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	r := store.NewRecord("user/1", user{"alice", 30})
	if r.Key != "user/1" || string(r.Value) != `{"name":"alice","age":30}` {
		t.Fatalf("NewRecord: %q %s", r.Key, r.Value)
	}
	var u user
	if err := r.Decode(&u); err != nil || u != (user{"alice", 30}) {
		t.Fatalf("Decode: %+v %v", u, err)
	}
	if err := r.Encode(map[string]int{"n": 1}); err != nil || string(r.Value) != `{"n":1}` {
		t.Fatalf("Encode: %s %v", r.Value, err)
	}
	if err := r.Encode(make(chan int)); err == nil || !strings.Contains(err.Error(), "user/1") {
		t.Fatalf("Encode of a channel: %v", err)
	}
	if string(r.Value) != `{"n":1}` {
		t.Fatalf("a failed Encode changed the value: %s", r.Value)
	}
	if err := (&store.Record{Key: "k", Value: []byte("{")}).Decode(&u); err == nil {
		t.Fatal("Decode of bad JSON: no error")
	}
	s := store.NewMemoryStore()
	if err := s.Write(store.NewRecord("bad", func() {})); err == nil {
		t.Fatal("Write of a record NewRecord could not encode: no error")
	}
	if _, err := s.Read("bad"); err != store.ErrNotFound {
		t.Fatalf("the refused record was stored: %v", err)
	}
	if err := s.Write(store.NewRecord("good", 42)); err != nil {
		t.Fatal(err)
	}
}

// TestPackageFunctions: Read, Write, Delete and List use DefaultStore.
func TestPackageFunctions(t *testing.T) {
	old := store.DefaultStore
	store.DefaultStore = store.NewFileStore(store.DirOption(t.TempDir()))
	defer func() {
		if err := store.DefaultStore.Close(); err != nil {
			t.Error(err)
		}
		store.DefaultStore = old
	}()
	if err := store.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	recs, err := store.Read("k")
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "v" {
		t.Fatalf("Read: %v %v", recs, err)
	}
	if keys, err := store.List(); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("List: %v %v", keys, err)
	}
	if err := store.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Read("k"); err != store.ErrNotFound {
		t.Fatalf("after Delete: %v", err)
	}
}

func TestNoopStore(t *testing.T) {
	s := store.NewNoopStore(store.Table("t"))
	if s.String() != "noop" || s.Options().Table != "t" {
		t.Fatalf("%s %+v", s, s.Options())
	}
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&store.Record{}); err == nil {
		t.Fatal("noop Write of an empty key: no error")
	}
	if _, err := s.Read("k"); err != store.ErrNotFound {
		t.Fatalf("Read: %v", err)
	}
	if recs, err := s.Read("k", store.ReadPrefix()); err != nil || len(recs) != 0 {
		t.Fatalf("prefix Read: %v %v", recs, err)
	}
	if keys, err := s.List(); err != nil || len(keys) != 0 {
		t.Fatalf("List: %v %v", keys, err)
	}
	if err := s.(store.Creator).Create(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("noop Create: %v", err)
	}
	if err := s.(store.Creator).Create(&store.Record{}); err == nil {
		t.Fatal("noop Create of an empty key: no error")
	}
	if err := s.Delete("k"); err != nil || s.Close() != nil {
		t.Fatal(err)
	}
}

// plainStore is a Store of another package: not a Creator.
type plainStore struct{ store.Store }

// TestScopeCreate: a scope creates in its table, and says plainly when the store under
// it cannot create.
func TestScopeCreate(t *testing.T) {
	s := store.NewMemoryStore(store.Database("db"), store.Table("tb"))
	sc := store.Scope(s, "", "mine").(store.Creator)
	if err := sc.Create(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Create(&store.Record{Key: "k", Value: []byte("w")}); err != store.ErrExists {
		t.Fatalf("second Create through the scope: %v, want store.ErrExists", err)
	}
	if recs, err := s.Read("k", store.ReadFrom("db", "mine")); err != nil || string(recs[0].Value) != "v" {
		t.Fatalf("%v %v", recs, err)
	}
	if err := s.(store.Creator).Create(&store.Record{Key: "k", Value: []byte("x")}); err != nil {
		t.Fatalf("Create in the store's own table: %v", err)
	}
	err := store.Scope(plainStore{s}, "", "mine").(store.Creator).Create(&store.Record{Key: "n", Value: []byte("v")})
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("Create through a scope of a store that cannot: %v", err)
	}
	if _, err := s.Read("n", store.ReadFrom("db", "mine")); err != store.ErrNotFound {
		t.Fatalf("the unsupported Create wrote: %v", err)
	}
}

func TestScope(t *testing.T) {
	s := store.NewMemoryStore(store.Database("db"), store.Table("tb"))
	sc := store.Scope(s, "", "mine") // the store's database, table mine
	if o := sc.Options(); o.Database != "db" || o.Table != "mine" {
		t.Fatalf("Options %q %q", o.Database, o.Table)
	}
	if err := sc.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("k"); err != store.ErrNotFound {
		t.Fatalf("the scope wrote to the store's table: %v", err)
	}
	if recs, err := s.Read("k", store.ReadFrom("db", "mine")); err != nil || string(recs[0].Value) != "v" {
		t.Fatalf("%v %v", recs, err)
	}
	if _, err := sc.Read("missing"); err != store.ErrNotFound {
		t.Fatalf("ErrNotFound through Scope: %v", err)
	}
	if keys, err := sc.List(); err != nil || len(keys) != 1 {
		t.Fatalf("List %v %v", keys, err)
	}
	if err := sc.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := sc.List(); len(keys) != 0 {
		t.Fatalf("after Delete: %v", keys)
	}
	// the caller's option slice is not written to
	opts := make([]store.ReadOption, 1, 4)
	opts[0] = store.ReadPrefix()
	_, _ = sc.Read("", opts...)
	if len(opts) != 1 || cap(opts) != 4 {
		t.Fatal("Scope changed the caller's options")
	}
	if sc.String() != "memory" {
		t.Fatal(sc.String())
	}
	if err := sc.Init(store.Table("other")); err != nil || s.Options().Table != "other" {
		t.Fatalf("Init goes to the store: %v %q", err, s.Options().Table)
	}
	if o := sc.Options(); o.Table != "mine" {
		t.Fatalf("the scope's table after Init of the store: %q", o.Table)
	}
}

func TestErrorsAreSentinels(t *testing.T) {
	if store.ErrNotFound.Error() != "not found" {
		t.Fatal(store.ErrNotFound)
	}
	if errors.Is(store.ErrCorrupt, store.ErrNotFound) {
		t.Fatal("ErrCorrupt is ErrNotFound")
	}
	if errors.Is(store.ErrExists, store.ErrNotFound) || store.ErrExists.Error() != "record exists" {
		t.Fatal(store.ErrExists)
	}
}
