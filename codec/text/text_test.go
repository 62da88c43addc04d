package text_test

import (
	"fmt"
	"testing"

	"github.com/seed-b3892490/micro/codec/text"
)

func TestMarshaler(t *testing.T) {
	m := text.Marshaler{}
	s := "hi"
	raw := []byte("hi")
	for _, v := range []interface{}{&s, s, &text.Frame{Data: raw}, text.Frame{Data: raw}, &raw, raw} {
		b, err := m.Marshal(v)
		if err != nil || string(b) != "hi" {
			t.Fatalf("%T: %s %v", v, b, err)
		}
	}
	if _, err := m.Marshal(1.5); err == nil {
		t.Fatal("a float was encoded")
	}
	var out string
	if err := m.Unmarshal([]byte("yo"), &out); err != nil || out != "yo" {
		t.Fatal(err)
	}
	if err := m.Unmarshal([]byte("yo"), new(int)); err == nil {
		t.Fatal("decoded into an int")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\xff", "hello world", "ünïcode", "\r\n", "{}", "<a/>", "1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s string
		if err := (text.Marshaler{}).Unmarshal(data, &s); err != nil || s != string(data) {
			t.Fatal("round trip")
		}
	})
}

func ExampleMarshaler() {
	var s string
	_ = text.Marshaler{}.Unmarshal([]byte("plain text"), &s)
	fmt.Println(s)
	// Output: plain text
}
