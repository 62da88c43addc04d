package fastproto

import (
	"math"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-b3892490/micro/internal/testproto"
)

// taken are messages this package encodes and decodes itself.
func taken() []proto.Message {
	return []proto.Message{
		&testproto.Scalars{},
		&testproto.Scalars{
			S: "héllo", B: []byte{0, 1, 2}, Flag: true,
			I32: -1, I64: -1, U32: math.MaxUint32, U64: math.MaxUint64,
			S32: math.MinInt32, S64: math.MinInt64, F32: 1, F64: math.MaxUint64,
			Sf32: -2, Sf64: math.MinInt64, Fl: -0.5, Db: math.Inf(-1),
			Color: testproto.Color_COLOR_BLUE, Big: "the largest field number",
		},
		&testproto.Scalars{I32: math.MaxInt32, I64: math.MaxInt64, S32: math.MaxInt32, S64: math.MaxInt64, Sf32: math.MinInt32},
		&testproto.Scalars{Fl: float32(math.Copysign(0, -1)), Db: math.Copysign(0, -1)}, // negative zeros are sent
		&testproto.Scalars{Fl: float32(math.NaN()), Db: math.NaN()},
		&testproto.Scalars{B: []byte{}, Color: testproto.Color(99)}, // an empty slice is left out; an unknown enum value kept
		&testproto.Scalars{S: strings.Repeat("x", 300)},             // a length of two bytes
		wrapperspb.String("alice"), wrapperspb.Bytes([]byte("b")), wrapperspb.Bool(true),
		wrapperspb.Int32(-7), wrapperspb.Int64(-7), wrapperspb.UInt32(7), wrapperspb.UInt64(7),
		wrapperspb.Float(1.5), wrapperspb.Double(-2.5),
		durationpb.New(-1500000000), timestamppb.New(timestamppb.Now().AsTime()),
		&anypb.Any{TypeUrl: "type.googleapis.com/x", Value: []byte{1}},
		&testproto.Request{Name: "alice"}, &testproto.Echo{Seq: 3, Payload: []byte("p"), Text: "t"},
	}
}

func TestAppendMatchesProto(t *testing.T) {
	for _, m := range taken() {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("prefix")
		got, ok := Append(prefix, m)
		if !ok {
			t.Fatalf("Append(%T %v) declined", m, m)
		}
		if string(got[:len(prefix)]) != "prefix" || string(got[len(prefix):]) != string(want) {
			t.Fatalf("Append(%T %v) = %x, want %x after the prefix", m, m, got, want)
		}
	}
}

func TestDecodeMatchesProto(t *testing.T) {
	for _, m := range taken() {
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// encoded twice: the last value of a field wins, as in proto
		data = append(data, data...)
		want := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(data, want); err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if _, ok := got.(*testproto.Scalars); ok {
			// Decode replaces what was there: every field set, and unknown fields
			got = proto.Clone(taken()[1])
			got.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
		}
		if !Decode(data, got) {
			t.Fatalf("Decode(%T) declined %x", m, data)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("Decode(%T) = %v, want %v", m, got, want)
		}
		if s, ok := got.(*testproto.Scalars); ok && (s.B == nil) != (want.(*testproto.Scalars).B == nil) {
			t.Fatalf("Decode: bytes field %#v, proto's %#v", s.B, want.(*testproto.Scalars).B)
		}
	}
}

func TestDeclines(t *testing.T) {
	one := int32(1)
	for _, m := range []proto.Message{
		&testproto.WithOptional{S: "x", N: &one},
		&testproto.WithOneof{Choice: &testproto.WithOneof_A{A: "a"}},
		&testproto.WithRepeated{Names: []string{"a"}},
		&testproto.WithNested{Inner: &testproto.Scalars{S: "x"}},
		&testproto.WithMap{Labels: map[string]string{"a": "b"}},
		&structpb.Struct{},
		dynamicpb.NewMessage((&testproto.Scalars{}).ProtoReflect().Descriptor()),
		(*testproto.Scalars)(nil),
	} {
		if _, ok := Append(nil, m); ok {
			t.Errorf("Append(%T) took a message it should leave to proto", m)
		}
		if Decode(nil, m) {
			t.Errorf("Decode(%T) took a message it should leave to proto", m)
		}
	}
}

func TestDeclinesInput(t *testing.T) {
	valid, _ := proto.Marshal(&testproto.Scalars{S: "x", I32: 5})
	cases := map[string][]byte{
		"unknown field":    protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), valid...), 99, protowire.VarintType), 1),
		"wrong wire type":  protowire.AppendFixed32(protowire.AppendTag(nil, 4, protowire.Fixed32Type), 1),
		"field number 0":   {0x00, 0x01},
		"cut-off varint":   {0x20, 0x80},
		"cut-off length":   {0x1a, 0x05, 'a'},
		"cut-off fixed64":  {0x59, 1, 2, 3},
		"invalid UTF-8":    protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), "\xff"),
		"group start":      protowire.AppendTag(nil, 3, protowire.StartGroupType),
		"overlong varint":  {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"cut-off tag":      {0x80},
		"cut-off fixed32 ": {0x55, 1},
	}
	for name, data := range cases {
		if Decode(data, &testproto.Scalars{}) {
			t.Errorf("%s: Decode took %x", name, data)
		}
	}
	// a message holding unknown fields from an earlier decode: proto keeps them on encode
	var m testproto.Scalars
	if err := proto.Unmarshal(cases["unknown field"], &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := Append(nil, &m); ok {
		t.Error("Append took a message with unknown fields")
	}
	// a string that is not UTF-8: proto refuses it with its own error
	if _, ok := Append(nil, &testproto.Scalars{Big: "\xff"}); ok {
		t.Error("Append took a string that is not UTF-8")
	}
	if _, err := proto.Marshal(&testproto.Scalars{Big: "\xff"}); err == nil {
		t.Error("proto encodes a string that is not UTF-8: the test's premise is wrong")
	}
}

// TestConcurrent: goroutines plan the same types at once and encode and decode side by
// side (run with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				for _, m := range taken() {
					b, ok := Append(nil, m)
					if !ok {
						t.Errorf("Append(%T) declined", m)
						return
					}
					got := m.ProtoReflect().New().Interface()
					if !Decode(b, got) || !proto.Equal(got, m) {
						t.Errorf("round trip of %T: %v, want %v", m, got, m)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	for _, m := range taken() {
		if s, ok := m.(*testproto.Scalars); ok {
			b, _ := proto.Marshal(s)
			f.Add(b)
		}
	}
	f.Add([]byte{0x20, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast testproto.Scalars
		if !Decode(data, &fast) {
			return
		}
		var std testproto.Scalars
		if err := proto.Unmarshal(data, &std); err != nil {
			t.Fatalf("Decode took %x, which proto refuses: %v", data, err)
		}
		if !proto.Equal(&fast, &std) || (fast.B == nil) != (std.B == nil) {
			t.Fatalf("Decode(%x) = %v, proto's %v", data, &fast, &std)
		}
		want, err := proto.Marshal(&std)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := Append(nil, &fast)
		if !ok || string(got) != string(want) {
			t.Fatalf("Append of what Decode took = %x, %v; proto's %x", got, ok, want)
		}
	})
}

func FuzzAppend(f *testing.F) {
	f.Add("alice", []byte("b"), true, int32(-1), int64(-1), uint32(1), uint64(1), uint32(1), uint64(1), float32(-0.5), 1.5, int32(2), "")
	f.Fuzz(func(t *testing.T, s string, b []byte, flag bool, i32 int32, i64 int64, u32 uint32, u64 uint64, f32 uint32, f64 uint64, fl float32, db float64, color int32, big string) {
		m := &testproto.Scalars{S: s, B: b, Flag: flag, I32: i32, I64: i64, U32: u32, U64: u64,
			S32: i32, S64: i64, F32: f32, F64: f64, Sf32: i32, Sf64: i64, Fl: fl, Db: db,
			Color: testproto.Color(color), Big: big}
		got, ok := Append(nil, m)
		want, err := proto.Marshal(m)
		if err != nil {
			if ok {
				t.Fatalf("Append took %v, which proto refuses: %v", m, err)
			}
			return
		}
		if !ok {
			t.Fatalf("Append declined %v, which proto encodes", m)
		}
		if string(got) != string(want) {
			t.Fatalf("Append(%v) = %x, proto's %x", m, got, want)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		m    proto.Message
	}{
		{"StringValue", wrapperspb.String("Hello alice")},
		{"Scalars", taken()[1]},
	} {
		buf := make([]byte, 0, 256)
		b.Run(c.name+"/fastproto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = Append(buf[:0], c.m)
			}
		})
		b.Run(c.name+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], c.m)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		m    proto.Message
	}{
		{"StringValue", wrapperspb.String("Hello alice")},
		{"Scalars", taken()[1]},
	} {
		data, _ := proto.Marshal(c.m)
		into := c.m.ProtoReflect().New().Interface()
		b.Run(c.name+"/fastproto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Decode(data, into)
			}
		})
		b.Run(c.name+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proto.Reset(into)
				_ = proto.UnmarshalOptions{Merge: true}.Unmarshal(data, into)
			}
		})
	}
}
