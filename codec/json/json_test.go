package json_test

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/json"
	"github.com/seed-b3892490/micro/internal/testproto"
)

type plain struct {
	Name string `json:"name"`
}

func TestMarshalerPicksProtojsonForMessages(t *testing.T) {
	m := json.Marshaler{}
	b, err := m.Marshal(&testproto.Echo{Seq: 5, Payload: []byte{1}})
	if err != nil || compact(b) != `{"seq":"5","payload":"AQ=="}` {
		t.Fatalf("proto: %s %v", b, err)
	}
	b, err = m.Marshal(&plain{Name: "a"})
	if err != nil || string(b) != `{"name":"a"}` {
		t.Fatalf("struct: %s %v", b, err)
	}
	var e testproto.Echo
	if err := m.Unmarshal([]byte(`{"seq":"7","unknown":1}`), &e); err != nil || e.Seq != 7 {
		t.Fatalf("unknown fields not discarded: %v", err)
	}
	var p plain
	if err := m.Unmarshal([]byte(`{"name":"b","other":2}`), &p); err != nil || p.Name != "b" {
		t.Fatal(err)
	}
	for _, bad := range []string{`{`, `[]`, `{"seq":"x"}`} {
		if err := m.Unmarshal([]byte(bad), &e); err == nil {
			t.Fatalf("%s decoded", bad)
		}
	}
	if m.String() != "json" {
		t.Fatal(m.String())
	}
}

type rwc struct{ *bytes.Buffer }

func (rwc) Close() error { return nil }

func TestCodecStream(t *testing.T) {
	buf := rwc{new(bytes.Buffer)}
	c := json.NewCodec(buf)
	if err := c.Write(&codec.Message{}, &plain{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&codec.Message{}, &testproto.Request{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if compact(buf.Bytes()) != "{\"name\":\"a\"}{\"name\":\"b\"}" || bytes.Count(buf.Bytes(), []byte("\n")) != 2 {
		t.Fatalf("%q", buf.String())
	}
	var p plain
	var r testproto.Request
	if err := c.ReadHeader(&codec.Message{}, codec.Response); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadBody(&p); err != nil || p.Name != "a" {
		t.Fatal(err)
	}
	if err := c.ReadBody(&r); err != nil || r.Name != "b" {
		t.Fatal(err)
	}
	if err := c.ReadBody(nil); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"seq":"1","payload":"AQ==","text":"x"}`, `{`, `null`, `[]`, `{"seq":1e400}`, `{"payload":"!!"}`, `"\ud800"`, `{"name":{"a":[1,2,3]}}`, strings(64)} {
		f.Add([]byte(s))
	}
	m := json.Marshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e testproto.Echo
		if err := m.Unmarshal(data, &e); err == nil {
			b, err := m.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			var again testproto.Echo
			if err := m.Unmarshal(b, &again); err != nil || again.Seq != e.Seq || !bytes.Equal(again.Payload, e.Payload) {
				t.Fatalf("round trip of %s: %v", b, err)
			}
		}
		var p plain
		_ = m.Unmarshal(data, &p)
	})
}

// compact removes the whitespace protojson adds at random.
func compact(b []byte) string {
	var out bytes.Buffer
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	for {
		var raw stdjson.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		_ = stdjson.Compact(&out, raw)
	}
	return out.String()
}

func strings(n int) string {
	s := ""
	for i := 0; i < n; i++ {
		s += "["
	}
	return s
}

func BenchmarkMarshal(b *testing.B) {
	m := json.Marshaler{}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = m.Marshal(&testproto.Response{Message: "Hello alice"})
		}
	})
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = m.Marshal(&plain{Name: "alice"})
		}
	})
}

func BenchmarkUnmarshal(b *testing.B) {
	m := json.Marshaler{}
	data := []byte(`{"name":"alice"}`)
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var r testproto.Request
			_ = m.Unmarshal(data, &r)
		}
	})
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var p plain
			_ = m.Unmarshal(data, &p)
		}
	})
}

func ExampleMarshaler() {
	b, _ := json.Marshaler{}.Marshal(map[string]string{"name": "alice"})
	fmt.Println(string(b))
	// Output: {"name":"alice"}
}
