package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRecordCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		value, md []byte
		at        int64
	}{
		{nil, nil, 0},
		{[]byte("v"), nil, 0},
		{[]byte("v"), []byte(`{"a":1}`), 0},
		{[]byte("v"), nil, 1},
		{bytes.Repeat([]byte{0, 255}, 1000), bytes.Repeat([]byte(" "), 200), 1 << 62},
	} {
		b := encodeRecord(tc.value, tc.md, tc.at)
		r, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if !bytes.Equal(r.value, tc.value) || !bytes.Equal(r.metadata, tc.md) || r.expiresAt != tc.at {
			t.Fatalf("%+v decoded as %+v", tc, r)
		}
		if at, err := decodeExpiry(b); err != nil || at != tc.at {
			t.Fatalf("decodeExpiry: %d, %v", at, err)
		}
	}
}

func TestRecordCodecRefusesCorruptRecords(t *testing.T) {
	good := encodeRecord([]byte("value"), []byte(`{"k":"v"}`), 12345)
	for name, b := range map[string][]byte{
		"empty":             {},
		"one byte":          {1},
		"version 0":         {0, 0},
		"version 2":         {2, 0, 'v'},
		"unknown flag":      {1, 4},
		"truncated expiry":  {1, flagExpires, 0, 0, 0},
		"zero expiry":       {1, flagExpires, 0, 0, 0, 0, 0, 0, 0, 0},
		"negative expiry":   {1, flagExpires, 0x80, 0, 0, 0, 0, 0, 0, 1},
		"no metadata size":  {1, flagMetadata},
		"metadata too long": {1, flagMetadata, 10, '{', '}'},
		"metadata size 0":   {1, flagMetadata, 0},
		"long-form size":    {1, flagMetadata, 0x82, 0x00, '{', '}'},
		"varint overflow":   {1, flagMetadata, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"truncated good":    good[:12],
	} {
		_, err := decodeRecord(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeRecord: the decoder of the file store's record format never panics, refuses
// with ErrCorrupt, and whatever it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, nil, 0))
	f.Add(encodeRecord([]byte("value"), nil, 0))
	f.Add(encodeRecord([]byte("value"), nil, 1_700_000_000_000_000_000))
	f.Add(encodeRecord([]byte("value"), []byte(`{"a":"b"}`), 0))
	f.Add(encodeRecord([]byte{0, 1, 2, 255}, []byte(`{"n":1.5,"l":[1,null]}`), 42))
	f.Add(encodeRecord(bytes.Repeat([]byte("x"), 300), bytes.Repeat([]byte("y"), 200), 7))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 3})
	f.Add([]byte{2, 0})
	f.Add([]byte{1, flagMetadata, 0x80, 0x01})
	f.Add([]byte{1, flagMetadata, 3, 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if at, err := decodeExpiry(b); err != nil || at != r.expiresAt {
			t.Fatalf("decodeExpiry %d, %v; decodeRecord %d", at, err, r.expiresAt)
		}
		if again := encodeRecord(r.value, r.metadata, r.expiresAt); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, read %x", again, b)
		}
		// the metadata, when there is some, decodes to an object or gives a clear error
		if md, err := (fileRecord{metadata: r.metadata}).record("k", time.Time{}); err == nil {
			if md.Metadata == nil {
				t.Fatal("nil metadata map")
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("metadata error %v does not wrap ErrCorrupt", err)
		}
	})
}

func TestDecodeMetadataRefusesNonObjects(t *testing.T) {
	for _, b := range []string{"null", "[]", `"s"`, "1", "{", `{"a":1} {}`, "{\"a\":\x00}"} {
		if md, err := decodeMetadata([]byte(b)); err == nil {
			t.Errorf("%q decoded as %v", b, md)
		}
	}
	md, err := decodeMetadata([]byte(`{"a":[1,"x",null,{"b":true}]}`))
	want := map[string]interface{}{"a": []interface{}{1.0, "x", nil, map[string]interface{}{"b": true}}}
	if err != nil || !reflect.DeepEqual(md, want) {
		t.Fatalf("%v %v", md, err)
	}
}
