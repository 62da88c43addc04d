package postgres

import (
	"bytes"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

// FuzzRoundTrip writes records of any key and value and reads them back: exactly, by a
// prefix of the key, and by a suffix; List finds the key with its own prefix.
func FuzzRoundTrip(f *testing.F) {
	for _, seed := range []struct{ key, value string }{
		{"k", "v"}, {"a/b/c", ""}, {"\x00", "\x00"}, {"\xff\xff", "\xff"}, {"tail\xc3", "bin\x00ary"},
		{"ключ", "значение"}, {"with space ", "'quoted'"}, {`back\slash`, `"json"`}, {"%_", "like"},
		{"a\xff\x00", strings.Repeat("v", 4096)}, {strings.Repeat("k", MaxKeySize), "long key"},
	} {
		f.Add([]byte(seed.key), []byte(seed.value))
	}
	s, _ := newStore(f)
	f.Fuzz(func(t *testing.T, key, value []byte) {
		k := string(key)
		err := s.Write(&store.Record{Key: k, Value: value, Metadata: map[string]interface{}{"n": float64(len(value))}})
		switch {
		case len(key) == 0 || len(key) > MaxKeySize:
			if err == nil {
				t.Fatalf("Write of a key of %d bytes: no error", len(key))
			}
			return
		case err != nil:
			t.Fatalf("Write %q: %v", k, err)
		}
		defer func() {
			if err := s.Delete(k); err != nil {
				t.Fatalf("Delete %q: %v", k, err)
			}
		}()
		recs, err := s.Read(k)
		if err != nil || len(recs) != 1 || recs[0].Key != k || !bytes.Equal(recs[0].Value, value) || recs[0].Metadata["n"] != float64(len(value)) {
			t.Fatalf("Read %q: %v, %v", k, recs, err)
		}
		for _, opt := range []store.ReadOption{store.ReadPrefix(), store.ReadSuffix()} {
			recs, err := s.Read(k, opt)
			if err != nil || len(recs) != 1 || recs[0].Key != k || !bytes.Equal(recs[0].Value, value) {
				t.Fatalf("Read %q with a pattern: %d records, %v", k, len(recs), err)
			}
		}
		keys, err := s.List(store.ListPrefix(k))
		if err != nil || len(keys) != 1 || keys[0] != k {
			t.Fatalf("List prefix %q: %q, %v", k, keys, err)
		}
	})
}
