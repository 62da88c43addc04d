package cmd_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/store"
)

// TestStoreFlags: --store and MICRO_STORE choose a store by name (file, memory, or one a
// main adds), in the database and table of the store it replaces unless --store_database
// and --store_table name others; --store_address gives the backend its nodes. Without
// --store the other flags configure the store in place.
func TestStoreFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args, env  []string // env: name=value pairs
		want       string   // String of the store after Init
		db, table  string
		nodes      []string
		sameObject bool
	}{
		{name: "none", want: "file", db: "micro", table: "svc", sameObject: true},
		{name: "memory", args: []string{"--store", "memory"}, want: "memory", db: "micro", table: "svc"},
		{name: "memory by env", env: []string{"MICRO_STORE=memory", "MICRO_STORE_TABLE=envtable"}, want: "memory", db: "micro", table: "envtable"},
		{name: "file with everything", args: []string{"--store", "file", "--store_address", "a:1, b:2", "--store_database", "db1", "--store_table", "t1"},
			want: "file", db: "db1", table: "t1", nodes: []string{"a:1", "b:2"}},
		{name: "table only", args: []string{"--store_table", "t2"}, want: "file", db: "micro", table: "t2", sameObject: true},
		{name: "database by env", env: []string{"MICRO_STORE_DATABASE=envdb", "MICRO_STORE_ADDRESS=x:1"}, want: "file", db: "envdb", table: "svc", nodes: []string{"x:1"}, sameObject: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			orig := store.NewFileStore(store.DirOption(t.TempDir()), store.Table("svc"))
			st := orig
			if err := cmd.NewCmd().Init(cmd.Args(append([]string{"svc"}, tc.args...)...), cmd.Store(&st)); err != nil {
				t.Fatal(err)
			}
			o := st.Options()
			if st.String() != tc.want || o.Database != tc.db || o.Table != tc.table || !slices.Equal(o.Nodes, tc.nodes) {
				t.Fatalf("store %s %q/%q nodes %q; want %s %q/%q %q", st, o.Database, o.Table, o.Nodes, tc.want, tc.db, tc.table, tc.nodes)
			}
			if (st == orig) != tc.sameObject {
				t.Fatalf("the store was replaced: %v, want %v", st != orig, !tc.sameObject)
			}
		})
	}
}

func TestStoreByNameErrorsAndTable(t *testing.T) {
	var st store.Store = store.NewMemoryStore()
	err := cmd.NewCmd().Init(cmd.Args("svc", "--store", "postgres"), cmd.Store(&st))
	if err == nil || !strings.Contains(err.Error(), `unknown store "postgres"`) || !strings.Contains(err.Error(), "file, memory") {
		t.Fatalf("got %v", err)
	}
	mine := store.NewNoopStore()
	c := cmd.NewCmd(cmd.NewStore("mine", func(opts ...store.Option) store.Store { _ = mine.Init(opts...); return mine }))
	if err := c.Init(cmd.Args("svc", "--store", "mine", "--store_table", "x"), cmd.Store(&st)); err != nil || st != mine || st.Options().Table != "x" {
		t.Fatalf("a store added by name: %v %v", err, st)
	}
	if _, ok := cmd.DefaultStores["file"]; !ok {
		t.Fatal("file is not in the default table")
	}
	if len(cmd.DefaultStores) != 2 {
		t.Fatalf("the default table links other stores: %v", len(cmd.DefaultStores))
	}
	// without a store to point at, the flags change nothing and fail nothing
	if err := cmd.NewCmd().Init(cmd.Args("svc", "--store", "memory")); err != nil {
		t.Fatal(err)
	}
}
