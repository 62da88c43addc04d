package codecs_test

import (
	"bytes"
	"testing"

	"github.com/seed-b3892490/micro/codec/proto"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/internal/testproto"
)

// a value encoding/json has to walk itself (a map: not a flat struct)
type nested struct {
	Tags map[string]int `json:"tags"`
}

// TestMarshalAppend: the built-in JSON and protobuf marshalers encode into the buffer
// they are given, to the same bytes Marshal returns, from its start whatever it held;
// other marshalers return their own bytes and leave the buffer alone.
func TestMarshalAppend(t *testing.T) {
	raw := proto.NewMessage([]byte{0x0a, 0x01, 'x'})
	cases := []struct {
		ct    string
		v     interface{}
		owned bool
	}{
		{"application/json", &msg{Name: "alice"}, true},
		{"application/json", &nested{Tags: map[string]int{"a": 1}}, true},
		{"application/json", &testproto.Request{Name: "alice"}, true},
		{"application/protobuf", &testproto.Request{Name: "alice"}, true},
		{"application/x-protobuf", raw, true},
		{"application/octet-stream", &[]byte{1, 2, 3}, false},
		{"text/plain", "hello", false},
	}
	for _, c := range cases {
		m, ok := codecs.Lookup(c.ct, nil, nil)
		if !ok {
			t.Fatalf("no codec for %s", c.ct)
		}
		want, err := m.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		dst := append(make([]byte, 0, 256), "left over from the last message"...)
		got, owned, err := codecs.MarshalAppend(m, dst, c.v)
		if err != nil {
			t.Fatalf("%s %T: %v", c.ct, c.v, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s %T: MarshalAppend %q, Marshal %q", c.ct, c.v, got, want)
		}
		if owned != c.owned {
			t.Errorf("%s %T: owned %v, want %v", c.ct, c.v, owned, c.owned)
		}
		if owned && &got[:1][0] != &dst[:1][0] {
			t.Errorf("%s %T: owned, but not encoded into the buffer given", c.ct, c.v)
		}
		if !owned && string(dst) != "left over from the last message" {
			t.Errorf("%s %T: a marshaler that does not append changed the buffer", c.ct, c.v)
		}
	}
	// the raw message is copied, not aliased: reusing the buffer leaves it alone
	m, _ := codecs.Lookup("application/protobuf", nil, nil)
	got, _, _ := codecs.MarshalAppend(m, nil, raw)
	got[0] = 0xff
	if raw.Data[0] != 0x0a {
		t.Fatal("MarshalAppend aliased a raw message's data")
	}
}

// TestMarshalAppendErrors: a value the codec cannot encode is an error, not an owned
// body.
func TestMarshalAppendErrors(t *testing.T) {
	for _, ct := range []string{"application/json", "application/protobuf"} {
		m, _ := codecs.Lookup(ct, nil, nil)
		body, owned, err := codecs.MarshalAppend(m, make([]byte, 0, 16), make(chan int))
		if err == nil || owned || body != nil {
			t.Errorf("%s: a channel encoded: %q %v %v", ct, body, owned, err)
		}
	}
}

// TestKeep: a buffer grown by a large message is not kept.
func TestKeep(t *testing.T) {
	if b := codecs.Keep(make([]byte, 10, 100)); b == nil || len(b) != 0 || cap(b) != 100 {
		t.Fatalf("small buffer: len %d cap %d", len(b), cap(b))
	}
	if b := codecs.Keep(make([]byte, 10, 1<<20)); b != nil {
		t.Fatalf("a 1 MiB buffer was kept")
	}
}

func BenchmarkMarshalAppend(b *testing.B) {
	for _, ct := range []string{"application/json", "application/protobuf"} {
		m, _ := codecs.Lookup(ct, nil, nil)
		v := &testproto.Request{Name: "alice"}
		var jv interface{} = &msg{Name: "alice"}
		if ct == "application/protobuf" {
			jv = v
		}
		b.Run(ct, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for i := 0; i < b.N; i++ {
				body, owned, err := codecs.MarshalAppend(m, buf, jv)
				if err != nil {
					b.Fatal(err)
				}
				if owned {
					buf = codecs.Keep(body)
				}
			}
		})
	}
}
