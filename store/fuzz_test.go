package store_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seed-b3892490/micro/store"
)

// FuzzFileStoreRoundTrip is issue 7's acceptance 5: keys, values and metadata strings
// from the fuzzer round-trip unchanged through the file store (Read, a prefix Read, List),
// and Delete removes them. Keys the file store cannot hold (empty, longer than
// MaxFileKeySize) are refused with an error.
func FuzzFileStoreRoundTrip(f *testing.F) {
	s := store.NewFileStore(store.DirOption(f.TempDir()), store.Table("fuzz"))
	f.Cleanup(func() { _ = s.Close() })
	f.Add("key", []byte("value"), "meta")
	f.Add("", []byte("empty key"), "")
	f.Add("a/b/c", []byte{}, "")
	f.Add("nul\x00key", []byte{0, 0, 0}, "nul\x00meta")
	f.Add("\xff\xfe", []byte{0xff}, "\xff")
	f.Add("ключ 日本語 😀", []byte("unicode"), "ünïcödé")
	f.Add(" spaces ", []byte(" "), " ")
	f.Add("../../etc/passwd", []byte("path"), "..")
	f.Add(strings.Repeat("k", 1000), bytes.Repeat([]byte{1, 2, 3}, 5000), strings.Repeat("m", 500))
	f.Add("\n\r\t", []byte("\n"), "\"quote\"")
	f.Add("x", []byte(`{"json":true}`), `{"json":true}`)
	f.Fuzz(func(t *testing.T, key string, value []byte, meta string) {
		err := s.Write(&store.Record{Key: key, Value: value, Metadata: map[string]interface{}{"m": meta}})
		if key == "" || len(key) > store.MaxFileKeySize {
			if err == nil {
				t.Fatalf("key of %d bytes accepted", len(key))
			}
			return
		}
		if err != nil {
			t.Fatalf("Write %q: %v", key, err)
		}
		recs, err := s.Read(key)
		if err != nil || len(recs) != 1 {
			t.Fatalf("Read %q: %d records, %v", key, len(recs), err)
		}
		r := recs[0]
		if r.Key != key || !bytes.Equal(r.Value, value) {
			t.Fatalf("Read %q: key %q value %q, want %q", key, r.Key, r.Value, value)
		}
		if utf8.ValidString(meta) && r.Metadata["m"] != meta { // JSON replaces invalid UTF-8
			t.Fatalf("metadata %q read back as %q", meta, r.Metadata["m"])
		}
		// the key itself sorts first among the keys it is a prefix of
		if recs, err := s.Read(key, store.ReadPrefix(), store.ReadLimit(1)); err != nil || len(recs) != 1 || recs[0].Key != key || !bytes.Equal(recs[0].Value, value) {
			t.Fatalf("prefix Read %q: %v %v", key, recs, err)
		}
		if keys, err := s.List(store.ListPrefix(key), store.ListLimit(1)); err != nil || len(keys) != 1 || keys[0] != key {
			t.Fatalf("List prefix %q: %q %v", key, keys, err)
		}
		if err := s.Delete(key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(key); err != store.ErrNotFound {
			t.Fatalf("Read after Delete: %v", err)
		}
	})
}
