package bytes_test

import (
	"fmt"
	"testing"

	mbytes "github.com/seed-b3892490/micro/codec/bytes"
)

func TestMarshaler(t *testing.T) {
	m := mbytes.Marshaler{}
	raw := []byte("abc")
	for _, v := range []interface{}{&mbytes.Frame{Data: raw}, mbytes.Frame{Data: raw}, &raw, raw} {
		b, err := m.Marshal(v)
		if err != nil || string(b) != "abc" {
			t.Fatalf("%T: %s %v", v, b, err)
		}
	}
	if _, err := m.Marshal(42); err == nil {
		t.Fatal("an int was encoded")
	}
	var f mbytes.Frame
	src := []byte("xyz")
	if err := m.Unmarshal(src, &f); err != nil || string(f.Data) != "xyz" {
		t.Fatal(err)
	}
	src[0] = 'q'
	if string(f.Data) != "xyz" {
		t.Fatal("Unmarshal kept the caller's buffer")
	}
	var b []byte
	if err := m.Unmarshal(src, &b); err != nil || string(b) != "qyz" {
		t.Fatal(err)
	}
	var s string
	if err := m.Unmarshal(src, &s); err == nil {
		t.Fatal("decoded into a string")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\xff\xfe", "hello", "{}", "[]", "\n", "  ", "1234567890"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr mbytes.Frame
		if err := (mbytes.Marshaler{}).Unmarshal(data, &fr); err != nil || string(fr.Data) != string(data) {
			t.Fatal("round trip")
		}
	})
}

func ExampleMarshaler() {
	var f mbytes.Frame
	_ = mbytes.Marshaler{}.Unmarshal([]byte("raw"), &f)
	fmt.Println(string(f.Data))
	// Output: raw
}
