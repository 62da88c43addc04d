package proto_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	gproto "google.golang.org/protobuf/proto"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/json"
	"github.com/seed-b3892490/micro/codec/proto"
	"github.com/seed-b3892490/micro/internal/testproto"
)

func TestMarshaler(t *testing.T) {
	m := proto.Marshaler{}
	b, err := m.Marshal(&testproto.Request{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var r testproto.Request
	if err := m.Unmarshal(b, &r); err != nil || r.Name != "alice" {
		t.Fatal(err)
	}
	type notProto struct{ A int }
	if _, err := m.Marshal(&notProto{}); err == nil || !strings.Contains(err.Error(), "notProto") {
		t.Fatalf("got %v", err)
	}
	if err := m.Unmarshal(b, &notProto{}); err == nil || !strings.Contains(err.Error(), "notProto") {
		t.Fatalf("got %v", err)
	}
	if err := m.Unmarshal([]byte{0xff, 0xff}, &r); err == nil {
		t.Fatal("garbage decoded")
	}
}

// Decoding replaces what the message held: a field the new data leaves out is cleared,
// as proto.Unmarshal does, not merged.
func TestUnmarshalReplaces(t *testing.T) {
	m := proto.Marshaler{}
	b, _ := m.Marshal(&testproto.Echo{Seq: 2})
	got := &testproto.Echo{Seq: 1, Text: "old"}
	if err := m.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 2 || got.Text != "" {
		t.Fatalf("got seq %d text %q, want 2 and empty", got.Seq, got.Text)
	}
	if err := m.Unmarshal(nil, got); err != nil || got.Seq != 0 {
		t.Fatalf("empty body: seq %d, %v", got.Seq, err)
	}
}

func TestRawMessagePassesThrough(t *testing.T) {
	raw := proto.NewMessage([]byte{1, 2, 3})
	b, _ := proto.Marshaler{}.Marshal(raw)
	if !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatal(b)
	}
	var got proto.Message
	src := []byte{4, 5}
	_ = proto.Marshaler{}.Unmarshal(src, &got)
	src[0] = 9
	if got.Data[0] != 4 {
		t.Fatal("Unmarshal kept the caller's buffer")
	}
	js, _ := json.Marshaler{}.Marshal(proto.NewMessage([]byte(`{"a":1}`)))
	if string(js) != `{"a":1}` {
		t.Fatalf("json: %s", js)
	}
}

type rwc struct{ *bytes.Buffer }

func (rwc) Close() error { return nil }

func TestCodec(t *testing.T) {
	buf := rwc{new(bytes.Buffer)}
	c := proto.NewCodec(buf)
	if err := c.Write(&codec.Message{}, &testproto.Request{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	var r testproto.Request
	if err := c.ReadBody(&r); err != nil || r.Name != "x" || c.String() != "proto" {
		t.Fatal(err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	seed, _ := gproto.Marshal(&testproto.Echo{Seq: 1, Payload: []byte("p"), Text: "t"})
	for _, s := range [][]byte{seed, {}, {0xff}, {0x08}, {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0x0a, 0x05, 'a'}, {0x1a, 0x02, 0xc3, 0x28}, {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, {0x7a, 0x00}, bytes.Repeat([]byte{0x0a, 0x00}, 100)} {
		f.Add(s)
	}
	m := proto.Marshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e testproto.Echo
		if err := m.Unmarshal(data, &e); err != nil {
			return
		}
		b, err := m.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var again testproto.Echo
		if err := m.Unmarshal(b, &again); err != nil || !gproto.Equal(&e, &again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = proto.Marshaler{}.Marshal(&testproto.Response{Message: "Hello alice"})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	data, _ := proto.Marshaler{}.Marshal(&testproto.Request{Name: "alice"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var r testproto.Request
		_ = proto.Marshaler{}.Unmarshal(data, &r)
	}
}

func ExampleMarshaler() {
	m := proto.Marshaler{}
	b, _ := m.Marshal(&testproto.Request{Name: "alice"})
	var r testproto.Request
	_ = m.Unmarshal(b, &r)
	fmt.Println(len(b), r.Name)
	// Output: 7 alice
}

// TestSameAsProto: the Marshaler gives proto's bytes and proto's message whether its fast
// path for scalar messages takes a message or leaves it to proto: unknown fields are
// kept, a string that is not UTF-8 is refused both ways, an empty message encodes as
// an empty, non-nil body.
func TestSameAsProto(t *testing.T) {
	m := proto.Marshaler{}
	for _, msg := range []gproto.Message{
		&testproto.Scalars{S: "s", B: []byte{1}, I32: -3, Fl: -0.25, Color: testproto.Color_COLOR_RED, Big: "b"},
		&testproto.WithNested{Inner: &testproto.Scalars{S: "inner"}}, // left to proto
		&testproto.Echo{},
	} {
		got, err := m.Marshal(msg)
		want, werr := gproto.Marshal(msg)
		if err != nil || werr != nil || !bytes.Equal(got, want) || got == nil {
			t.Fatalf("Marshal(%T) = %x, %v; proto's %x, %v", msg, got, err, want, werr)
		}
		into := msg.ProtoReflect().New().Interface()
		if err := m.Unmarshal(got, into); err != nil || !gproto.Equal(into, msg) {
			t.Fatalf("Unmarshal(%T) = %v, %v; want %v", msg, into, err, msg)
		}
	}
	// an unknown field (number 99) survives a decode and the encode after it
	withUnknown := append([]byte{0x1a, 0x01, 'x'}, 0x98, 0x06, 0x01)
	var s testproto.Scalars
	if err := m.Unmarshal(withUnknown, &s); err != nil || s.S != "x" {
		t.Fatalf("Unmarshal with an unknown field: %v, %v", &s, err)
	}
	if b, err := m.Marshal(&s); err != nil || !bytes.Equal(b, withUnknown) {
		t.Fatalf("Marshal after it = %x, %v; want %x", b, err, withUnknown)
	}
	bad := &testproto.Scalars{S: "\xff"}
	if _, err := m.Marshal(bad); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Marshal of a string that is not UTF-8: %v", err)
	}
	if err := m.Unmarshal([]byte{0x1a, 0x01, 0xff}, &s); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Unmarshal of a string that is not UTF-8: %v", err)
	}
}
