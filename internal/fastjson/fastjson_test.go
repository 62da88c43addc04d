package fastjson

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type myString string

// plain has a field of every kind the package takes, tagged and untagged, with and
// without omitempty, and fields encoding/json leaves out.
type plain struct {
	Name   string   `json:"name"`
	Age    int      `json:"age,omitempty"`
	I8     int8     `json:"i8"`
	I16    int16    `json:",omitempty"`
	I32    int32    `json:"i32"`
	I64    int64    `json:"i64"`
	U      uint     `json:"u"`
	U8     uint8    `json:"u8,omitempty"`
	U16    uint16   `json:"u16"`
	U32    uint32   `json:"u32"`
	U64    uint64   `json:"u64"`
	F32    float32  `json:"f32"`
	F64    float64  `json:"f64,omitempty"`
	B      bool     `json:"b"`
	S2     myString `json:"s2,omitempty"`
	Untag  string
	Dash   int `json:"-"`
	hidden int
	Dur    time.Duration `json:"dur"`
}

// seed is what a decode starts from: a decline must leave every field as it was.
func seed() plain {
	return plain{Name: "seed", Age: 7, I8: -1, U64: 9, F32: 1.5, B: true, Untag: "u", Dash: 3, hidden: 4}
}

func TestDecodeTakesPlainObjects(t *testing.T) {
	for _, in := range []string{
		`{"name":"alice"}`,
		` { "name" : "alice" , "age" : 30 } `,
		"{\n\t\"name\":\"ünïcödé ✓\"\r\n}",
		`{}`,
		`{"i8":-128,"I16":32767,"i32":-2147483648,"i64":9223372036854775807}`,
		`{"u":0,"u8":255,"u16":65535,"u32":4294967295,"u64":18446744073709551615}`,
		`{"f32":3.4e38,"f64":-1.5e-300,"b":false}`,
		`{"f64":1,"f32":-0,"b":true,"s2":"x","Untag":"y","dur":1000}`,
		`{"name":"a","name":"b"}`,
		`{"f64":0.000001,"f32":1E+2}`,
	} {
		var got, want plain
		got, want = seed(), seed()
		if !Decode([]byte(in), &got) {
			t.Errorf("%s: declined", in)
			continue
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
}

func TestDecodeDeclines(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"name":"alice"`, `{"name":"alice"}x`, `{"name":"alice"} {}`,
		`{"NAME":"alice"}`,     // a case-insensitive match: encoding/json's to make
		`{"other":1}`,          // unknown keys are skipped by encoding/json's scanner
		`{"name":null}`,        // null leaves a field alone
		`{"name":"a\"b"}`,      // escapes
		`{"name":"a\u00e9"}`,   //
		"{\"name\":\"a\x01\"}", // control character (invalid JSON)
		"{\"name\":\"\xff\"}",  // invalid UTF-8 (replaced by encoding/json)
		`{"age":1.0}`, `{"age":1e3}`, `{"age":"1"}`, `{"age":01}`, `{"age":-}`, `{"age":1x}`,
		`{"i8":128}`, `{"u8":256}`, `{"u":-1}`, `{"u":-0}`, `{"u64":18446744073709551616}`,
		`{"f32":3.5e38}`, `{"f64":1e400}`, `{"f64":.5}`, `{"f64":1.}`, `{"f64":1e}`,
		`{"b":"true"}`, `{"b":tru}`, `{"b":truex}`, `{"b":1}`,
		`{"name":"a",}`, `{,"name":"a"}`, `{"name" "a"}`, `{name:"a"}`,
		`{"Dash":1}`, `{"hidden":1}`,
	} {
		got := seed()
		if Decode([]byte(in), &got) {
			t.Errorf("%q: taken, want declined", in)
		}
		if !reflect.DeepEqual(got, seed()) {
			t.Errorf("%q: a decline changed the value: %+v", in, got)
		}
	}
}

// Types the package leaves to encoding/json.
type (
	embedded struct {
		plain
		X int
	}
	withTime   struct{ T time.Time }
	withNumber struct{ N json.Number }
	withString struct {
		N int `json:"n,string"`
	}
	withOmitZero struct {
		N int `json:"n,omitzero"`
	}
	nested    struct{ P plain }
	withPtr   struct{ P *int }
	withSlice struct{ S []string }
	withMap   struct{ M map[string]int }
	withIface struct{ I any }
	oddName   struct {
		A int `json:"a b"`
	}
	custom1  struct{ A int }
	custom2  struct{ A int }
	textKey  string
	withText struct{ K textKey }
)

func (custom1) MarshalJSON() ([]byte, error)            { return []byte(`1`), nil }
func (*custom2) UnmarshalJSON(b []byte) error           { return nil }
func (textKey) MarshalText() ([]byte, error)            { return []byte("t"), nil }
func (*textKey) UnmarshalText(b []byte) error           { return nil }
func (*plainMarshalsSelf) MarshalJSON() ([]byte, error) { return []byte(`2`), nil }

type plainMarshalsSelf struct{ A int }

// duplicateNames returns a pointer to a struct with two fields named "x" (made at run
// time: go vet refuses such a declaration).
func duplicateNames() any {
	tag := reflect.StructTag(`json:"x"`)
	t := reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[int](), Tag: tag},
		{Name: "B", Type: reflect.TypeFor[int](), Tag: tag},
	})
	return reflect.New(t).Interface()
}

func TestDeclinedTypes(t *testing.T) {
	for _, v := range []any{
		&embedded{}, &withTime{}, &withNumber{}, &withString{}, &withOmitZero{}, &nested{},
		&withPtr{}, &withSlice{}, &withMap{}, &withIface{}, duplicateNames(), &oddName{},
		&custom1{}, &custom2{}, &withText{}, &plainMarshalsSelf{},
		plain{},            // not a pointer
		(*plain)(nil),      // nil
		new(int), "x", nil, // not a struct
	} {
		if b, ok := Append(nil, v); ok {
			t.Errorf("%T: Append took it: %s", v, b)
		}
		if Decode([]byte(`{}`), v) {
			t.Errorf("%T: Decode took it", v)
		}
	}
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, v := range []plain{
		{},
		{Name: "alice"},
		{Name: `quote " and \ backslash`, Untag: "ünïcödé ✓", S2: "s"},
		{Age: -5, I8: math.MinInt8, I16: math.MaxInt16, I32: math.MinInt32, I64: math.MaxInt64},
		{U: math.MaxUint, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64},
		{F32: 1e-7, F64: 1e21},
		{F32: 3.4e38, F64: 1e-7},
		{F32: -0.1, F64: 123456789.125},
		{F64: math.Copysign(0, -1)},
		{F64: 5e-324, F32: math.SmallestNonzeroFloat32},
		{B: true, Dur: time.Second, Dash: 1, hidden: 2},
	} {
		got, ok := Append([]byte("prefix"), &v)
		if !ok {
			t.Errorf("%+v: declined", v)
			continue
		}
		want, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("got  %s\nwant prefix%s", got, want)
		}
	}
}

func TestAppendDeclinesEscapes(t *testing.T) {
	for _, s := range []string{"<", ">", "&", "\n", "\x00", "\x7f\x1f", "\xff", "a\u2028b", "\u2029"} {
		v := plain{Name: s}
		if b, ok := Append([]byte("keep"), &v); ok || string(b) != "keep" {
			t.Errorf("%q: got %q %v, want declined with dst unchanged", s, b, ok)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		v := plain{F64: f}
		if _, ok := Append(nil, &v); ok {
			t.Errorf("%v: taken", f)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"name":"alice"}`, `{"age":30,"b":true}`, `{"f32":1.5e3,"f64":-0.25}`, `{"u64":1}`,
		`{"i8":-1}`, `{"NAME":"x"}`, `{"name":"\u00e9"}`, `{}`, ` {"s2":"x" } `, `{"dur":-9}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := seed(), seed()
		ok := Decode(data, &got)
		err := json.Unmarshal(data, &want)
		if !ok {
			if !reflect.DeepEqual(got, seed()) {
				t.Fatalf("%q: a decline changed the value", data)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: taken, but encoding/json fails: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

func FuzzAppend(f *testing.F) {
	f.Add("alice", int64(1), uint64(2), 1.5, float32(2.5), true)
	f.Add("", int64(0), uint64(0), 0.0, float32(0), false)
	f.Add("ü\"\\", int64(-1), uint64(math.MaxUint64), 1e21, float32(1e-7), true)
	f.Fuzz(func(t *testing.T, s string, i int64, u uint64, f64 float64, f32 float32, b bool) {
		v := plain{Name: s, Age: int(i), I8: int8(i), I16: int16(i), I32: int32(i), I64: i,
			U: uint(u), U8: uint8(u), U16: uint16(u), U32: uint32(u), U64: u,
			F32: f32, F64: f64, B: b, S2: myString(s), Untag: s, Dur: time.Duration(i)}
		got, ok := Append(nil, &v)
		want, err := json.Marshal(&v)
		if !ok {
			plainText := !strings.ContainsAny(s, "<>&\u2028\u2029") && strings.ToValidUTF8(s, "") == s
			for _, c := range []byte(s) {
				plainText = plainText && c >= 0x20
			}
			finite := !math.IsNaN(f64) && !math.IsInf(f64, 0) && !math.IsNaN(float64(f32)) && !math.IsInf(float64(f32), 0)
			if plainText && finite {
				t.Fatalf("%+v: declined", v)
			}
			return
		}
		if err != nil {
			t.Fatalf("%+v: taken, but encoding/json fails: %v", v, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

type hello struct {
	Name string `json:"name"`
}

type helloReply struct {
	Message string `json:"message"`
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(`{"name":"alice"}`)
	b.Run("fastjson", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var r hello
			if !Decode(in, &r) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var r hello
			if err := json.Unmarshal(in, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	v := &helloReply{Message: "Hello alice"}
	b.Run("fastjson", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for range b.N {
			var ok bool
			if buf, ok = Append(buf[:0], v); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
