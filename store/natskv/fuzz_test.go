package natskv

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

// FuzzDecodeEntry: any bytes decode to a record or to an error matching store.ErrCorrupt,
// never a panic; what decodes encodes back to the same value and metadata, and a record
// encoded from the fuzzer's value and metadata decodes unchanged.
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte{}, []byte("value"), `{"a":"b"}`)
	f.Add([]byte{1, 0}, []byte{}, "")
	f.Add([]byte{1, 0, 'v'}, []byte{0, 0xff}, `{}`)
	f.Add([]byte{1, 2, '{', '}', 'v'}, []byte("v"), `{"n":1.5,"l":[true,null]}`)
	f.Add([]byte{1, 4, 'n', 'u', 'l', 'l'}, []byte(nil), `null`)
	f.Add([]byte{1, 0x80}, []byte("x"), `[]`)
	f.Add([]byte{2, 0}, []byte("x"), `"s"`)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte("x"), `{"deep":{"x":{"y":[1,2]}}}`)
	f.Add([]byte{1, 9, '{', '"', 'a', '"', ':', '1', '}'}, bytes.Repeat([]byte{7}, 1000), `{"a":1}`)
	f.Add([]byte{1, 3, '{', '"', '}'}, []byte("\x00"), `{"\u0000":"\u00ff"}`)
	f.Add([]byte("garbage"), []byte("garbage"), `garbage`)
	f.Fuzz(func(t *testing.T, data, value []byte, mdJSON string) {
		v, md, err := decodeEntry(data)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("decodeEntry(%q): %v does not match store.ErrCorrupt", data, err)
			}
		} else {
			mdb, err := encodeMetadata(md)
			if err != nil {
				t.Fatalf("decoded metadata does not encode: %v", err)
			}
			v2, md2, err := decodeEntry(encodeEntry(v, mdb))
			if err != nil || !bytes.Equal(v, v2) || len(md) != len(md2) {
				t.Fatalf("a decoded entry does not round-trip: %q %v → %q %v %v", v, md, v2, md2, err)
			}
		}
		var want map[string]interface{}
		if json.Unmarshal([]byte(mdJSON), &want) != nil || want == nil {
			want = map[string]interface{}{}
		}
		mdb, err := encodeMetadata(want)
		if err != nil {
			t.Fatalf("metadata decoded by encoding/json does not encode: %v", err)
		}
		v, md, err = decodeEntry(encodeEntry(value, mdb))
		if err != nil {
			t.Fatalf("an encoded record does not decode: %v", err)
		}
		if !bytes.Equal(v, value) {
			t.Fatalf("value %q read back as %q", value, v)
		}
		got, _ := json.Marshal(md)
		exp, _ := json.Marshal(want)
		if !bytes.Equal(got, exp) {
			t.Fatalf("metadata %s read back as %s", exp, got)
		}
	})
}

// FuzzDecodeKey: a key's subject decodes back to the key, and any subject decodes to a
// key whose subject is that subject (one subject per key) or to an error matching
// store.ErrCorrupt, never a panic.
func FuzzDecodeKey(f *testing.F) {
	prefix := tablePrefix(bucketName("fuzz"), "table")
	for _, k := range []string{"a", "a/b", "a.b", "\x00", "\xff\xfe", "ключ", "=", "a b", "2E", strings.Repeat("z", 300), ">", "*"} {
		f.Add(k, keySubject(prefix, k))
	}
	f.Add("x", prefix+"=")
	f.Add("y", prefix+"61.=")
	f.Add("z", prefix+"a..=")
	f.Add("w", "$KV.other.table.a.=")
	f.Fuzz(func(t *testing.T, key, subject string) {
		if key != "" {
			subj := keySubject(prefix, key)
			got, err := decodeKey(prefix, subj)
			if err != nil || got != key {
				t.Fatalf("key %q: subject %q decodes as %q, %v", key, subj, got, err)
			}
		}
		got, err := decodeKey(prefix, subject)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("decodeKey(%q): %v does not match store.ErrCorrupt", subject, err)
			}
			return
		}
		if got == "" || keySubject(prefix, got) != subject {
			t.Fatalf("subject %q decodes as %q, whose subject is %q", subject, got, keySubject(prefix, got))
		}
	})
}
