package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

// FuzzDecodeRecord: decodeRecord takes any bytes without panicking, refuses what it
// cannot decode with store.ErrCorrupt, and what it decodes encodes back to a record that
// decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	md, _ := json.Marshal(map[string]interface{}{"a": "b", "n": 1.0})
	for _, seed := range [][]byte{
		nil,
		{},
		{formatV1},
		{formatV1, 0},
		encodeRecord([]byte("value"), nil),
		encodeRecord(nil, md),
		encodeRecord([]byte{0, 1, 2, 0xff}, md),
		{formatV1, 0x80},
		{formatV1, 0x05, '{', '}'},
		{formatV1, 0x04, 'n', 'u', 'l', 'l'},
		{2, 0},
		append([]byte{formatV1, 0x02}, "{}tail"...),
		{formatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		value, md, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("decodeRecord(%q): %v does not wrap store.ErrCorrupt", b, err)
			}
			return
		}
		if md == nil {
			t.Fatalf("decodeRecord(%q): nil metadata", b)
		}
		mdJSON, err := encodeMetadata("k", md)
		if err != nil {
			t.Fatalf("decoded metadata does not encode: %v", err)
		}
		v2, md2, err := decodeRecord(encodeRecord(value, mdJSON))
		if err != nil || !bytes.Equal(v2, value) || !reflect.DeepEqual(md2, md) {
			t.Fatalf("decodeRecord(%q) = %q, %v; encoded again it reads %q, %v, %v", b, value, md, v2, md2, err)
		}
	})
}

// FuzzKeyLayout: the Redis key of any database, table and key splits back into them,
// so no two records of different tables share a Redis key; and the table's prefix holds
// no ':' but its two separators.
func FuzzKeyLayout(f *testing.F) {
	for _, seed := range [][3]string{
		{"micro", "micro", "k"}, {"a", "b:c", "x"}, {"a:b", "c", "x"}, {"a%3Ab", "c", "x"},
		{"%", "%25", "%3A"}, {":", "::", ":::"}, {"", "", ""}, {"d\x00", "t\xff", "k\x00"},
		{"*", "?", "[]"}, {`\`, `\\`, `\*`}, {"日本", "é", "😀"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, db, table, key string) {
		p := tablePrefix(db, table)
		if n := bytes.Count([]byte(p), []byte(":")); n != 2 {
			t.Fatalf("tablePrefix(%q, %q) = %q holds %d ':'", db, table, p, n)
		}
		d, tb, k, ok := splitKey(p + key)
		if !ok || d != db || tb != table || k != key {
			t.Fatalf("splitKey(%q) = %q, %q, %q, %v; want %q, %q, %q", p+key, d, tb, k, ok, db, table, key)
		}
	})
}
