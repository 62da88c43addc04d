package etcd

import (
	"bytes"
	"encoding/json"
	"testing"
)

func tree(t testing.TB, l layout, kv ...string) string {
	t.Helper()
	var pairs []pair
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, pair{key: kv[i], value: []byte(kv[i+1])})
	}
	b, err := encodeTree(buildTree(l, pairs))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildTree covers the layout rules without etcd: order does not matter, deeper keys
// win, and only keys under the prefix count.
func TestBuildTree(t *testing.T) {
	l := newLayout("/p", true)
	for _, c := range []struct {
		name string
		kv   []string
		want string
	}{
		{"empty", nil, `{}`},
		{"leaf then subtree", []string{"/p/a", "1", "/p/a/b", "2"}, `{"a":{"b":2}}`},
		{"subtree then leaf", []string{"/p/a/b", "2", "/p/a", "1"}, `{"a":{"b":2}}`},
		{"object merges", []string{"/p/a/b", "3", "/p/a", `{"b":1,"c":2}`}, `{"a":{"b":3,"c":2}}`},
		{"objects merge deeply", []string{"/p/a", `{"b":{"c":1}}`, "/p/a/b", `{"d":2}`}, `{"a":{"b":{"c":1,"d":2}}}`},
		{"root object", []string{"/p", `{"x":1}`, "/p/y", "2"}, `{"x":1,"y":2}`},
		{"root leaf ignored", []string{"/p", `5`, "/p/y", "2"}, `{"y":2}`},
		{"slashes", []string{"/p//a///b/", "v"}, `{"a":{"b":"v"}}`},
		{"siblings ignored", []string{"/pp/a", "1", "/p/a", "2", "/", "3"}, `{"a":2}`},
		{"invalid utf-8 merges", []string{"/p/\xff", `{"a":1}`, "/p/\xfe", `{"b":2}`}, "{\"\uFFFD\":{\"a\":1,\"b\":2}}"},
	} {
		if got := tree(t, l, c.kv...); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	if got := tree(t, newLayout("", true), "a/b", "1", "/c", "2"); got != `{"a":{"b":1},"c":2}` {
		t.Errorf("empty prefix: %s", got)
	}
	if got := tree(t, newLayout("/", false), "a/b", "1", "/c", "2"); got != `{"c":2}` {
		t.Errorf("prefix /: %s", got)
	}
}

// FuzzKeysToTree: whatever the keys, values and prefix, the builder does not panic, its
// output is one JSON object that re-encodes to itself (no name twice), the order of the
// pairs does not change it, and where Write can store the document, reading back what it
// would store gives the same document.
func FuzzKeysToTree(f *testing.F) {
	f.Add("/micro/config", true, "/micro/config/a/b", "1", "/micro/config/a", `{"c":true}`, "/micro/config", `{"d":"x"}`)
	f.Add("/p", false, "/p/a", "1", "/p/a/b", "2", "/p//a//b", `"s"`)
	f.Add("", true, "a", "[1,{}]", "a/b", "null", "/", "{}")
	f.Add("/", true, "/x/\xff", "\xff", "/x", `{"\xff":1}`, "/x/y", "1e400")
	f.Fuzz(func(t *testing.T, prefix string, strip bool, k1, v1, k2, v2, k3, v3 string) {
		l := newLayout(prefix, strip)
		pairs := []pair{{k1, []byte(v1)}, {k2, []byte(v2)}, {k3, []byte(v3)}}
		out, err := encodeTree(buildTree(l, pairs))
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		var doc map[string]interface{}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("not an object: %q: %v", out, err)
		}
		again, err := encodeTree(doc)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("does not re-encode to itself:\n%q\n%q (%v)", out, again, err)
		}
		for _, order := range [][]int{{2, 1, 0}, {1, 0, 2}, {0, 2, 1}} {
			perm := []pair{pairs[order[0]], pairs[order[1]], pairs[order[2]]}
			if got, _ := encodeTree(buildTree(l, perm)); !bytes.Equal(got, out) {
				t.Fatalf("order changes the document:\n%q\n%q", out, got)
			}
		}
		stored, err := flatten(l, doc)
		if err != nil {
			return // keys Write refuses ("/" or "" in object names, ...)
		}
		var back []pair
		for k, v := range stored {
			back = append(back, pair{k, v})
		}
		if got, _ := encodeTree(buildTree(l, back)); !bytes.Equal(got, out) {
			t.Fatalf("written and read back:\n%q\n%q", out, got)
		}
	})
}
