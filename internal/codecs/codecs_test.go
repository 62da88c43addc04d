package codecs_test

import (
	"testing"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/json"
	"github.com/seed-b3892490/micro/internal/codecs"
)

type msg struct {
	Name string `json:"name"`
}

func TestMediaType(t *testing.T) {
	for in, want := range map[string]string{
		"application/json":                 "application/json",
		"Application/JSON; charset=utf-8":  "application/json",
		"text/plain;charset=us-ascii":      "text/plain",
		"":                                 "",
		"not a media type; =":              "",
		"application/x-protobuf":           "application/x-protobuf",
		"application/octet-stream; a=b; c": "",
	} {
		if got := codecs.MediaType(in); got != want {
			t.Errorf("MediaType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupOrder(t *testing.T) {
	custom := map[string]codec.NewCodec{"application/json": json.NewCodec, "application/x-custom": json.NewCodec}
	extra := map[string]codec.NewCodec{"application/x-extra": json.NewCodec}
	if m, ok := codecs.Lookup("application/json", nil, nil); !ok || m.String() != "json" {
		t.Fatal("built-in json")
	}
	for _, ct := range []string{"application/x-custom", "application/x-extra"} {
		m, ok := codecs.Lookup(ct, custom, extra)
		if !ok {
			t.Fatalf("%s not found", ct)
		}
		b, err := m.Marshal(&msg{Name: "a"})
		if err != nil || string(b) != "{\"name\":\"a\"}\n" {
			t.Fatalf("%s: %q %v", ct, b, err)
		}
		var out msg
		if err := m.Unmarshal(b, &out); err != nil || out.Name != "a" {
			t.Fatalf("%s: %v", ct, err)
		}
	}
	if _, ok := codecs.Lookup("application/xml", custom, extra); ok {
		t.Fatal("found an unknown type")
	}
	if got := codecs.Supported(custom, extra); len(got) != 7 {
		t.Fatalf("supported %v", got)
	}
}

func TestJSONWireEndsWithNewline(t *testing.T) {
	m, _ := codecs.Lookup("application/json", nil, nil)
	b, _ := m.Marshal(&msg{Name: "x"})
	if string(b) != "{\"name\":\"x\"}\n" {
		t.Fatalf("%q", b)
	}
}
