package micro_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/store"
)

// useDataDir points the file stores made without DirOption at a directory of the test.
func useDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	old := store.DefaultDir
	store.DefaultDir = dir
	t.Cleanup(func() { store.DefaultDir = old })
	return dir
}

// fileFree reports whether no store of this process has the file open: bbolt locks a
// file per open, so an open here succeeds only then.
func fileFree(t *testing.T, path string) bool {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		return false
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestServiceStore: a service given no store makes a file store whose table is its name
// (following a rename by Init), and closes it when it stops; two services share the file
// and not their records.
func TestServiceStore(t *testing.T) {
	dir := useDataDir(t)
	users := micro.NewService(micro.Name("users"), micro.HandleSignal(false))
	orders := micro.NewService(micro.Name("orders-draft"), micro.HandleSignal(false))
	orders.Init(micro.Name("orders"))
	us, os := users.Options().Store, orders.Options().Store
	if us == nil || us.String() != "file" || us.Options().Table != "users" || os.Options().Table != "orders" || us == os {
		t.Fatalf("stores %v (%q) and %v (%q)", us, us.Options().Table, os, os.Options().Table)
	}
	if err := us.Write(&store.Record{Key: "k", Value: []byte("user")}); err != nil {
		t.Fatal(err)
	}
	if err := os.Write(&store.Record{Key: "k", Value: []byte("order")}); err != nil {
		t.Fatal(err)
	}
	recs, err := us.Read("k")
	if err != nil || string(recs[0].Value) != "user" {
		t.Fatalf("users read %v %v", recs, err)
	}
	recs, err = us.Read("k", store.ReadFrom("", "orders"))
	if err != nil || string(recs[0].Value) != "order" {
		t.Fatalf("the orders table of the same file: %v %v", recs, err)
	}
	path := filepath.Join(dir, "micro.db")
	if fileFree(t, path) {
		t.Fatal("the file is not open while the services use it")
	}
	if err := users.Stop(); err != nil {
		t.Fatal(err)
	}
	if fileFree(t, path) {
		t.Fatal("the file was closed while orders still uses it")
	}
	if err := orders.Stop(); err != nil {
		t.Fatal(err)
	}
	if !fileFree(t, path) {
		t.Fatal("the file is still open after both services stopped")
	}
}

// TestServiceStoreOption: a store given with micro.Store is used as it is: its table is
// not changed, and stopping the service does not close it.
func TestServiceStoreOption(t *testing.T) {
	mine := store.NewMemoryStore()
	svc := micro.NewService(micro.Name("greeter"), micro.Store(mine), micro.HandleSignal(false))
	svc.Init(micro.Name("renamed"))
	if svc.Options().Store != mine || mine.Options().Table != "micro" {
		t.Fatalf("store %v, table %q", svc.Options().Store, mine.Options().Table)
	}
	if err := mine.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Read("k"); err != nil {
		t.Fatalf("the service closed the store it was given: %v", err)
	}
}

// TestServiceStoreFlags: --store replaces the store in the service's table; --store_table
// sets another table, which renames of the service leave alone.
func TestServiceStoreFlags(t *testing.T) {
	useDataDir(t)
	for _, tc := range []struct {
		args               []string
		kind               string
		table, afterRename string
	}{
		{nil, "file", "greeter", "renamed"},
		{[]string{"--store", "memory"}, "memory", "greeter", "renamed"},
		{[]string{"--store", "memory", "--store_table", "shared"}, "memory", "shared", "shared"},
		{[]string{"--store_table", "shared", "--store_database", "db2"}, "file", "shared", "shared"},
		{[]string{"--server_name", "flagged"}, "file", "flagged", "renamed"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := cmd.NewCmd(cmd.Args(append([]string{"svc"}, tc.args...)...))
			svc := micro.NewService(micro.Name("greeter"), micro.Cmd(c), micro.HandleSignal(false))
			svc.Init()
			st := svc.Options().Store
			if st.String() != tc.kind || st.Options().Table != tc.table {
				t.Fatalf("store %s in table %q, want %s in %q", st, st.Options().Table, tc.kind, tc.table)
			}
			svc.Init(micro.Name("renamed"))
			if got := svc.Options().Store.Options().Table; got != tc.afterRename {
				t.Fatalf("after a rename, table %q, want %q", got, tc.afterRename)
			}
			if err := st.Write(&store.Record{Key: "k"}); err != nil {
				t.Fatal(err)
			}
			if err := svc.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
