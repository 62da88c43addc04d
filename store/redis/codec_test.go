package redis

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"micro":    "micro",
		"a:b":      "a%3Ab",
		"a%3Ab":    "a%253Ab",
		"%":        "%25",
		"::":       "%3A%3A",
		"*?[]\\ é": "*?[]\\ é",
	} {
		got := escapeName(in)
		if got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, ":") {
			t.Errorf("escapeName(%q) = %q holds a ':'", in, got)
		}
		if back, ok := unescapeName(got); !ok || back != in {
			t.Errorf("unescapeName(%q) = %q, %v; want %q", got, back, ok, in)
		}
	}
	for _, bad := range []string{"a:b", "%", "%3", "%3B", "%zz", "a%2"} {
		if got, ok := unescapeName(bad); ok {
			t.Errorf("unescapeName(%q) = %q, want a refusal", bad, got)
		}
	}
}

// TestKeyLayoutSplits: the Redis key of every (database, table, key) of a set of tricky
// names splits back into the same three, and no two give the same Redis key.
func TestKeyLayoutSplits(t *testing.T) {
	names := []string{"a", "b", "a:b", "b:c", "a%3Ab", "%", "%25", ":", "", "a*", "t?", "[x]", `\`}
	keys := []string{"x", "c:x", "b:c:x", ":", "::", "%3A", "", "\x00", "*"}
	seen := map[string][3]string{}
	for _, db := range names {
		for _, tb := range names {
			for _, k := range keys {
				rk := tablePrefix(db, tb) + k
				d2, t2, k2, ok := splitKey(rk)
				if !ok || d2 != db || t2 != tb || k2 != k {
					t.Fatalf("splitKey(%q) = %q, %q, %q, %v; want %q, %q, %q", rk, d2, t2, k2, ok, db, tb, k)
				}
				if prev, dup := seen[rk]; dup {
					t.Fatalf("%q and %q give the same Redis key %q", prev, [3]string{db, tb, k}, rk)
				}
				seen[rk] = [3]string{db, tb, k}
			}
		}
	}
}

func TestGlobEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":   "plain",
		"a*b":     `a\*b`,
		"?[]":     `\?\[\]`,
		`back\sl`: `back\\sl`,
		"^-":      "^-",
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestKeyLayoutOnServer is the layout's proof against Redis itself: records in tables and
// databases whose names hold ':' , '%' and glob metacharacters, and keys that look like
// other tables' Redis keys, are read, listed and prefix-read only in their own table.
func TestKeyLayoutOnServer(t *testing.T) {
	s := newStore(t)
	run := "lay" + unique()
	type scope struct{ db, table, key string }
	scopes := []scope{
		{run + "a", "b", "c:x"},       // a:b:c:x
		{run + "a", "b:c", "x"},       // looks like the one above
		{run + "a:b", "c", "x"},       // and like it again
		{run + "a%3Ab", "c", "x"},     // the escaped form of the one above, literally
		{run + "a", "b%3Ac", "x"},     // the escaped table name, literally
		{run + "a", "b*", "x"},        // a glob of the tables starting with b
		{run + "a", "b?", "x"},        // a glob of the tables b and one more byte
		{run + "a", "[b]", "x"},       // a glob class of b
		{run + "a", `b\`, "x"},        // an escape at the end of the name
		{run + "a", "bx", "x"},        // matched by b* and b? if they were not escaped
		{run + "a", "b", "c%3Ax"},     // a key holding the escape of ':'
		{run + "a", "b", "*"},         // a key that is a glob
		{run + "a", "b", "c:x:b:c:x"}, // a key that holds whole Redis keys
	}
	for _, sc := range scopes {
		cleanupScope(t, sc.db, sc.table)
	}
	value := func(sc scope) string { return sc.db + "|" + sc.table + "|" + sc.key }
	for _, sc := range scopes {
		if err := s.Write(&store.Record{Key: sc.key, Value: []byte(value(sc))}, store.WriteTo(sc.db, sc.table)); err != nil {
			t.Fatal(err)
		}
	}
	rdb := rawClient(t)
	distinct := map[string]bool{}
	for _, sc := range scopes {
		distinct[tablePrefix(sc.db, sc.table)+sc.key] = true
	}
	if len(distinct) != len(scopes) {
		t.Fatalf("%d Redis keys for %d records", len(distinct), len(scopes))
	}
	for rk := range distinct {
		if n, err := rdb.Exists(context.Background(), rk).Result(); err != nil || n != 1 {
			t.Fatalf("Redis key %q: exists %d, %v", rk, n, err)
		}
	}
	for _, sc := range scopes {
		var want []string
		for _, o := range scopes {
			if o.db == sc.db && o.table == sc.table {
				want = append(want, o.key)
			}
		}
		slices.Sort(want)
		got, err := s.List(store.ListFrom(sc.db, sc.table))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("List of %q/%q: %q, %v; want %q", sc.db, sc.table, got, err, want)
		}
		recs, err := s.Read(sc.key, store.ReadFrom(sc.db, sc.table))
		if err != nil || len(recs) != 1 || string(recs[0].Value) != value(sc) {
			t.Fatalf("Read %q from %q/%q: %v", sc.key, sc.db, sc.table, err)
		}
		recs, err = s.Read("", store.ReadFrom(sc.db, sc.table), store.ReadPrefix())
		if err != nil || len(recs) != len(want) {
			t.Fatalf("prefix read of %q/%q: %d records, %v; want %d", sc.db, sc.table, len(recs), err, len(want))
		}
		for _, r := range recs {
			if string(r.Value) != value(scope{sc.db, sc.table, r.Key}) {
				t.Fatalf("prefix read of %q/%q: %q = %q, a record of another table", sc.db, sc.table, r.Key, r.Value)
			}
		}
	}
	// a prefix with glob metacharacters is literal
	for _, prefix := range []string{"*", "c", "c:", "c%", "?"} {
		var want []string
		for _, o := range scopes {
			if o.db == run+"a" && o.table == "b" && strings.HasPrefix(o.key, prefix) {
				want = append(want, o.key)
			}
		}
		slices.Sort(want)
		got, err := s.List(store.ListFrom(run+"a", "b"), store.ListPrefix(prefix))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("List prefix %q: %q, %v; want %q", prefix, got, err, want)
		}
	}
}

// TestCorruptRecord: a Redis string in a table's key space that this package did not
// write reads as an error that wraps store.ErrCorrupt and names the record.
func TestCorruptRecord(t *testing.T) {
	s := newStore(t)
	db := s.Options().Database
	cleanupScope(t, db, store.DefaultTable)
	rdb := rawClient(t)
	for key, raw := range map[string]string{"plain": "not a record", "empty": "", "short": "\x01\x05{}"} {
		if err := rdb.Set(context.Background(), tablePrefix(db, store.DefaultTable)+key, raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Read(key)
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "store/redis") {
			t.Fatalf("Read of %q holding %q: %v, want an error wrapping store.ErrCorrupt naming the record", key, raw, err)
		}
		if _, err := s.Read(key, store.ReadPrefix()); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("prefix read over %q: %v, want store.ErrCorrupt", key, err)
		}
		if err := s.Delete(key); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordCodec(t *testing.T) {
	md := map[string]interface{}{"a": "b", "n": 1.5, "l": []interface{}{true, nil}}
	mdJSON, err := encodeMetadata("k", md)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]byte{nil, {}, {0}, []byte("value"), bytes.Repeat([]byte{0xff}, 1000)} {
		for _, m := range [][]byte{nil, mdJSON} {
			gotV, gotMD, err := decodeRecord(encodeRecord(v, m))
			if err != nil || !bytes.Equal(gotV, v) {
				t.Fatalf("value %q with metadata %s: %q, %v", v, m, gotV, err)
			}
			want := map[string]interface{}{}
			if m != nil {
				want = md
			}
			if !reflect.DeepEqual(gotMD, want) {
				t.Fatalf("metadata %s read back as %#v", m, gotMD)
			}
		}
	}
	for _, bad := range []string{"", "\x00", "\x02abc", "\x01", "\x01\x80", "\x01\x05{}", "\x01\x04null", "\x01\x02[]", "\x01\x03{x}", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if _, _, err := decodeRecord([]byte(bad)); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("decodeRecord(%q): %v, want store.ErrCorrupt", bad, err)
		}
	}
}

// TestBinaryPrefixes: prefixes with NUL, invalid UTF-8 and a backslash select exactly the
// keys that start with them (the MATCH pattern is binary-safe and escaped).
func TestBinaryPrefixes(t *testing.T) {
	s := newStore(t)
	cleanupScope(t, s.Options().Database, store.DefaultTable)
	keys := []string{"a\x00b", "a\x00c", "a\x01", "a", "\xff\xfe", "\xff", `a\b`, `a\\b`, "a*b", "a?b", "a[b]"}
	for _, k := range keys {
		if err := s.Write(&store.Record{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, prefix := range []string{"a\x00", "a\x00b", "\xff", "\xff\xfe", `a\`, `a\\`, "a*", "a?", "a[", "a[b"} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		got, err := s.List(store.ListPrefix(prefix))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("List prefix %q: %q, %v; want %q", prefix, got, err, want)
		}
		recs, err := s.Read(prefix, store.ReadPrefix())
		if err != nil || len(recs) != len(want) {
			t.Fatalf("Read prefix %q: %d records, %v; want %d", prefix, len(recs), err, len(want))
		}
	}
}
