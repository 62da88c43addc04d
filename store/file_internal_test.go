package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openCount(path string) (int, bool) {
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	d := openFiles.m[path]
	if d == nil {
		return 0, false
	}
	return d.refs, true
}

func mustWrite(t *testing.T, s Store, key, value string, opts ...WriteOption) {
	t.Helper()
	if err := s.Write(&Record{Key: key, Value: []byte(value)}, opts...); err != nil {
		t.Fatalf("Write %q: %v", key, err)
	}
}

func mustRead(t *testing.T, s Store, key string, opts ...ReadOption) string {
	t.Helper()
	recs, err := s.Read(key, opts...)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Read %q: %d records, %v", key, len(recs), err)
	}
	return string(recs[0].Value)
}

// boltOf returns the open bbolt database of a file store's database.
func boltOf(t *testing.T, s Store, database string) *bolt.DB {
	t.Helper()
	fs := s.(*fileStore)
	fs.dbMu.Lock()
	defer fs.dbMu.Unlock()
	d := fs.dbs[database]
	if d == nil {
		t.Fatalf("database %q is not open", database)
	}
	return d.db
}

// TestFileStoresShareOpenFiles: several file stores of one process on one directory,
// however it is spelled, share one open file, used concurrently without deadlock; the
// last Close closes it.
func TestFileStoresShareOpenFiles(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	a := NewFileStore(DirOption(dir))
	b := NewFileStore(DirOption(link + "/"))
	c := NewFileStore(DirOption(dir), Table("other"))
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for i, s := range []Store{a, b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if err := s.Write(&Record{Key: fmt.Sprintf("s%d/%02d", i, j), Value: []byte("v")}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	path := filepath.Join(real, "micro.db")
	if n, ok := openCount(path); !ok || n != 3 {
		t.Fatalf("%s open by %d stores (open: %v), want 3", path, n, ok)
	}
	// a and b share the table micro, c has its own
	if keys, err := b.List(); err != nil || len(keys) != 100 {
		t.Fatalf("b lists %d keys, %v", len(keys), err)
	}
	if keys, err := a.List(ListFrom("", "other")); err != nil || len(keys) != 50 {
		t.Fatalf("a lists %d keys of c's table, %v", len(keys), err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, b, "s0/00"); got != "v" {
		t.Fatal(got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := openCount(path); ok {
		t.Fatal("the file is still open after every store closed")
	}
	// a store used after Close opens its file again
	mustWrite(t, a, "again", "v")
	if got := mustRead(t, a, "s1/49"); got != "v" {
		t.Fatal(got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestFileStoreOpensNothingUntilWritten: reads, lists and deletes of a database without a
// file create no directory and no file; the first write creates both.
func TestFileStoreOpensNothingUntilWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "store")
	s := NewFileStore(DirOption(dir))
	defer s.Close()
	if _, err := s.Read("k"); err != ErrNotFound {
		t.Fatalf("Read: %v", err)
	}
	if recs, err := s.Read("k", ReadPrefix()); err != nil || len(recs) != 0 {
		t.Fatalf("prefix Read: %v %v", recs, err)
	}
	if keys, err := s.List(); err != nil || len(keys) != 0 {
		t.Fatalf("List: %v %v", keys, err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Write(&Record{Key: "k"}, WriteExpiry(time.Now().Add(-time.Second))); err != nil {
		t.Fatalf("expired Write: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the directory was created before a write: %v", err)
	}
	mustWrite(t, s, "k", "v")
	if fi, err := os.Stat(filepath.Join(dir, "micro.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the database file: %v %v", fi, err)
	}
	mustWrite(t, s, "k", "v", WriteTo("second", ""))
	if _, err := os.Stat(filepath.Join(dir, "second.db")); err != nil {
		t.Fatalf("one file per database: %v", err)
	}
}

// TestFileStoreDefaultDirectory: without DirOption the data lives in DefaultDir when set,
// else in micro/store under the home directory, else under the temporary directory.
func TestFileStoreDefaultDirectory(t *testing.T) {
	home, tmp, def := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("TMPDIR", tmp)
	check := func(want string) {
		t.Helper()
		s := NewFileStore()
		mustWrite(t, s, "k", "v")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(want, "micro.db")); err != nil {
			t.Fatalf("no file in %s: %v", want, err)
		}
	}
	check(filepath.Join(home, "micro", "store"))
	DefaultDir = def
	check(def)
	DefaultDir = ""
	t.Setenv("HOME", "")
	check(filepath.Join(tmp, "micro", "store"))
}

// TestFileStoreRefusesBadNames: database names that are not file names and keys bbolt
// cannot hold give clear errors, and nothing is written.
func TestFileStoreRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	s := NewFileStore(DirOption(dir))
	defer s.Close()
	for _, db := range []string{"a/b", "..", ".", `a\b`, "nul\x00", strings.Repeat("d", 201)} {
		err := s.Write(&Record{Key: "k"}, WriteTo(db, ""))
		if err == nil || !strings.Contains(err.Error(), "database name") {
			t.Errorf("database %q: %v", db, err)
		}
		if _, err := s.Read("k", ReadFrom(db, "")); err == nil || err == ErrNotFound {
			t.Errorf("Read from database %q: %v", db, err)
		}
	}
	err := s.Write(&Record{Key: strings.Repeat("k", MaxFileKeySize+1)})
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("a key too long: %v", err)
	}
	mustWrite(t, s, strings.Repeat("k", MaxFileKeySize), "longest")
	if got := mustRead(t, s, strings.Repeat("k", MaxFileKeySize)); got != "longest" {
		t.Fatal(got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "micro.db" {
		t.Fatalf("files in the directory: %v", entries)
	}
	if err := NewRecord("k", make(chan int)).encodeErr; err == nil {
		t.Fatal("NewRecord of a channel: no error")
	}
	if err := s.Write(NewRecord("k", func() {})); err == nil || !strings.Contains(err.Error(), "encode") {
		t.Fatalf("Write of a NewRecord that could not be encoded: %v", err)
	}
}

// TestFileStoreCorruptRecord: a damaged record gives an error naming it and wrapping
// ErrCorrupt, from Read, a pattern Read and List, never a panic; writing or deleting the
// key repairs the table.
func TestFileStoreCorruptRecord(t *testing.T) {
	s := NewFileStore(DirOption(t.TempDir()))
	defer s.Close()
	mustWrite(t, s, "good", "v")
	mustWrite(t, s, "bad", "v")
	for _, damage := range [][]byte{{9, 9, 9}, {1, flagMetadata, 5, '{', 'x', 'y', 'z', '}'}, {1, flagExpires, 1}} {
		if err := boltOf(t, s, "micro").Update(func(tx *bolt.Tx) error {
			return tx.Bucket(dataBucket("micro")).Put([]byte("bad"), damage)
		}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Read("bad")
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"bad"`) {
			t.Fatalf("Read of %x: %v", damage, err)
		}
		if _, err := s.Read("", ReadPrefix()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix Read: %v", err)
		}
		if damage[1]&flagMetadata == 0 { // List reads the expiry only
			if _, err := s.List(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("List: %v", err)
			}
		}
		if got := mustRead(t, s, "good"); got != "v" {
			t.Fatal(got)
		}
	}
	mustWrite(t, s, "bad", "repaired")
	if keys, err := s.List(); err != nil || len(keys) != 2 {
		t.Fatalf("List after the repair: %v %v", keys, err)
	}
	if err := boltOf(t, s, "micro").Update(func(tx *bolt.Tx) error {
		return tx.Bucket(dataBucket("micro")).Put([]byte("bad"), []byte{7})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("bad"); err != nil {
		t.Fatalf("Delete of a corrupt record: %v", err)
	}
	if keys, err := s.List(); err != nil || len(keys) != 1 {
		t.Fatalf("List after the delete: %v %v", keys, err)
	}
}

// indexLen returns how many entries a table's expiry index has.
func indexLen(t *testing.T, db *bolt.DB, table string) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(indexBucket(table)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFileStoreSweep: the sweep deletes the records that expired and their index
// entries, keeps the others, skips index entries of records written again since, and
// stops at its bound.
func TestFileStoreSweep(t *testing.T) {
	s := NewFileStore(DirOption(t.TempDir()))
	defer s.Close()
	for i := range 600 { // more than one transaction's worth (sweepChunk)
		mustWrite(t, s, fmt.Sprintf("min/%04d", i), "v", WriteTTL(time.Minute))
	}
	for i := range 10 {
		mustWrite(t, s, fmt.Sprintf("perm/%d", i), "v")
		mustWrite(t, s, fmt.Sprintf("hours/%d", i), "v", WriteTTL(2*time.Hour))
		mustWrite(t, s, fmt.Sprintf("min/%04d", i), "rewritten") // no expiry now
	}
	mustWrite(t, s, "t2", "v", WriteTTL(time.Minute), WriteTo("", "table2"))
	db := boltOf(t, s, "micro")
	// rewriting a record without expiry removed its index entry
	if n := indexLen(t, db, "micro"); n != 600 {
		t.Fatalf("index of %d entries, want 590 + 10", n)
	}
	later := time.Now().Add(time.Hour)
	n, err := sweep(db, later, 100, nil)
	if err != nil || n != 100 {
		t.Fatalf("bounded sweep deleted %d, %v; want 100", n, err)
	}
	// an index entry that is not the record's expiry (the record was written again in a
	// way that left it) is dropped without deleting the record
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(indexBucket("micro")).Put(indexKey(time.Now().Add(-time.Minute).UnixNano(), []byte("perm/0")), nil)
	}); err != nil {
		t.Fatal(err)
	}
	n, err = sweep(db, later, 10000, nil)
	if err != nil || n != 490+1 {
		t.Fatalf("sweep deleted %d, %v; want 490 + 1 of table2", n, err)
	}
	if n := indexLen(t, db, "micro"); n != 10 {
		t.Fatalf("index of %d entries after the sweep, want the 10 of 2 h", n)
	}
	if n := indexLen(t, db, "table2"); n != 0 {
		t.Fatalf("table2's index has %d entries", n)
	}
	keys, err := s.List()
	if err != nil || len(keys) != 30 {
		t.Fatalf("%d keys after the sweep (%v), want 30", len(keys), err)
	}
	if got := mustRead(t, s, "min/0003"); got != "rewritten" {
		t.Fatal(got)
	}
	stop := make(chan struct{})
	close(stop)
	if n, err := sweep(db, later.Add(3*time.Hour), 10000, stop); n != 0 || err != nil {
		t.Fatalf("a stopped sweep deleted %d, %v", n, err)
	}
}

// TestFileStoreReadDeletesExpired: a read that meets expired records deletes them and
// their index entries.
func TestFileStoreReadDeletesExpired(t *testing.T) {
	s := NewFileStore(DirOption(t.TempDir()))
	defer s.Close()
	start := time.Now()
	for _, k := range []string{"a", "b", "c"} {
		mustWrite(t, s, k, "v", WriteTTL(time.Nanosecond)) // expired by the time it is read
	}
	if time.Since(start) <= 0 {
		t.Fatal("clock")
	}
	mustWrite(t, s, "d", "v", WriteTTL(time.Hour))
	db := boltOf(t, s, "micro")
	if _, err := s.Read("a"); err != ErrNotFound {
		t.Fatalf("Read of an expired record: %v", err)
	}
	count := func() int {
		n := 0
		_ = db.View(func(tx *bolt.Tx) error { n = tx.Bucket(dataBucket("micro")).Stats().KeyN; return nil })
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d records after the read of a, want 3", n)
	}
	if keys, err := s.List(); err != nil || len(keys) != 1 || keys[0] != "d" {
		t.Fatalf("List: %v %v", keys, err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d records after List met the expired ones, want 1", n)
	}
	if n := indexLen(t, db, "micro"); n != 1 {
		t.Fatalf("index of %d entries, want 1", n)
	}
}

// TestFileStoreInitMovesDirectory: Init with another directory releases the files of the
// old one.
func TestFileStoreInitMovesDirectory(t *testing.T) {
	one, two := t.TempDir(), t.TempDir()
	s := NewFileStore(DirOption(one))
	mustWrite(t, s, "k", "one")
	if err := s.Init(DirOption(two)); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(one)
	if _, ok := openCount(filepath.Join(real, "micro.db")); ok {
		t.Fatal("the old file is still open")
	}
	if _, err := s.Read("k"); err != ErrNotFound {
		t.Fatalf("the new directory has k: %v", err)
	}
	mustWrite(t, s, "k", "two")
	if err := s.Init(Table("t2")); err != nil { // the same directory: files stay open
		t.Fatal(err)
	}
	if got := mustRead(t, s, "k", ReadFrom("", "micro")); got != "two" {
		t.Fatal(got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommit: concurrent writes are committed together, and a write that fails
// leaves no trace and fails alone: the others of its group are committed all the same.
func TestGroupCommit(t *testing.T) {
	s := NewFileStore(DirOption(t.TempDir()))
	defer s.Close()
	mustWrite(t, s, "open", "v")
	fs := s.(*fileStore)
	fs.mu.RLock()
	d, err := fs.db(DefaultDatabase, true)
	fs.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	failure := errors.New("refused")
	const writers = 40
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("group"))
				if err != nil {
					return err
				}
				if err := b.Put([]byte(fmt.Sprint(i)), []byte("v")); err != nil {
					return err
				}
				if i%3 == 0 {
					return failure
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := d.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("group"))
		for i := range writers {
			present := b.Get([]byte(fmt.Sprint(i))) != nil
			switch {
			case i%3 == 0 && (errs[i] != failure || present):
				t.Errorf("writer %d: error %v, its write present: %v", i, errs[i], present)
			case i%3 != 0 && (errs[i] != nil || !present):
				t.Errorf("writer %d: error %v, its write present: %v", i, errs[i], present)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d.qmu.Lock()
	defer d.qmu.Unlock()
	if d.leading || len(d.queue) != 0 {
		t.Fatalf("after the writes: leading %v, %d queued", d.leading, len(d.queue))
	}
}
