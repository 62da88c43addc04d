package etcd

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// layout maps etcd keys to document paths and back, for one prefix.
type layout struct {
	// prefix is the prefix as given; base is it without trailing slashes.
	prefix, base string
	strip        bool
}

func newLayout(prefix string, strip bool) layout {
	return layout{prefix: prefix, base: strings.TrimRight(prefix, "/"), strip: strip}
}

// rangeKey is the key whose prefix range holds the tree: the base, "/" for a prefix of
// only slashes, and "" (every key) for an empty prefix.
func (l layout) rangeKey() string {
	if l.base == "" && l.prefix != "" {
		return "/"
	}
	return l.base
}

// belongs reports whether key is part of the tree: the base itself or a key below it,
// not a sibling that merely starts with the same characters (/micro/configuration is not
// under /micro/config).
func (l layout) belongs(key string) bool {
	switch {
	case l.base != "":
		return key == l.base || strings.HasPrefix(key, l.base+"/")
	case l.prefix != "":
		return strings.HasPrefix(key, "/")
	default:
		return true
	}
}

// path returns the document path of a key that belongs to the tree: its segments split
// on "/", empty ones left out, the prefix's own left out when stripping.
func (l layout) path(key string) []string {
	if l.strip {
		key = key[len(l.base):]
	}
	return segments(key)
}

// key returns the etcd key of a path relative to the prefix.
func (l layout) key(path []string) string {
	return l.base + "/" + strings.Join(path, "/")
}

func segments(s string) []string {
	var out []string
	for _, seg := range strings.Split(s, "/") {
		if seg != "" {
			// Invalid UTF-8 would be replaced when encoding, so that distinct keys could
			// become one name twice in an object: replace it here, where they merge.
			out = append(out, strings.ToValidUTF8(seg, "\uFFFD"))
		}
	}
	return out
}

// pair is one etcd key and its value.
type pair struct {
	key   string
	value []byte
}

// buildTree turns the pairs that belong to the tree into the document (pairs that do not
// belong are left out). The pairs are applied from the shallowest key to the deepest
// (ties in key order), each value at its path: an object merges into an object already
// there (its own entries winning), anything else replaces what is there. So a deeper key
// wins over a shallower one whatever the order of the pairs. A value at the root (a key
// that is exactly the prefix, when stripping) is used only if it is an object.
func buildTree(l layout, pairs []pair) map[string]interface{} {
	type entry struct {
		key  string
		path []string
		raw  []byte
		val  interface{}
	}
	entries := make([]entry, 0, len(pairs))
	for _, p := range pairs {
		if !l.belongs(p.key) {
			continue
		}
		entries = append(entries, entry{key: p.key, path: l.path(p.key), raw: p.value, val: decodeValue(p.value)})
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(len(a.path), len(b.path)); c != 0 {
			return c
		}
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return bytes.Compare(a.raw, b.raw) // etcd keys are unique; this keeps any input's order out
	})
	root := map[string]interface{}{}
	for _, e := range entries {
		set(root, e.path, e.val)
	}
	return root
}

// set puts v at path under root, replacing leaves in the way by objects.
func set(root map[string]interface{}, path []string, v interface{}) {
	if len(path) == 0 {
		if obj, ok := v.(map[string]interface{}); ok {
			merge(root, obj)
		}
		return
	}
	node := root
	for _, seg := range path[:len(path)-1] {
		child, ok := node[seg].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			node[seg] = child
		}
		node = child
	}
	last := path[len(path)-1]
	if obj, ok := v.(map[string]interface{}); ok {
		if dst, ok := node[last].(map[string]interface{}); ok {
			merge(dst, obj)
			return
		}
	}
	node[last] = v
}

// merge merges src into dst, src winning: objects merge, anything else replaces.
func merge(dst, src map[string]interface{}) {
	for k, sv := range src {
		if so, ok := sv.(map[string]interface{}); ok {
			if do, ok := dst[k].(map[string]interface{}); ok {
				merge(do, so)
				continue
			}
		}
		dst[k] = sv
	}
}

// decodeValue returns the JSON value b holds (numbers as json.Number), or b as a string
// (invalid UTF-8 replaced, as encoding would) when it is not one JSON value.
func decodeValue(b []byte) interface{} {
	if !json.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return v
}

// encodeTree encodes the document as JSON, keys sorted, without HTML escaping.
func encodeTree(tree map[string]interface{}) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// flatten turns a document into the keys and values Write stores: one key per leaf
// (strings as they are, unless they would read back as another JSON value, when they
// are stored quoted; other values as JSON), and an empty object as "{}" so that it reads
// back. The document is relative to the prefix, or holds the prefix's path when the
// prefix is not stripped.
func flatten(l layout, doc map[string]interface{}) (map[string][]byte, error) {
	if !l.strip {
		for _, seg := range segments(l.base) {
			switch len(doc) {
			case 0:
				return map[string][]byte{}, nil
			case 1:
			default:
				return nil, fmt.Errorf("the document has keys outside the prefix %q", l.prefix)
			}
			sub, ok := doc[seg].(map[string]interface{})
			if !ok {
				return nil, fmt.Errorf("the document has keys outside the prefix %q, or no object at it", l.prefix)
			}
			doc = sub
		}
		if len(doc) == 0 && l.base != "" {
			// {"micro":{"config":{}}}: the prefix's path reads back only if a key is there.
			return map[string][]byte{l.base: []byte("{}")}, nil
		}
	}
	out := map[string][]byte{}
	if err := flattenInto(l, nil, doc, out); err != nil {
		return nil, err
	}
	return out, nil
}

func flattenInto(l layout, path []string, obj map[string]interface{}, out map[string][]byte) error {
	for k, v := range obj {
		if k == "" || strings.Contains(k, "/") || !utf8.ValidString(k) {
			return fmt.Errorf("key %q at %q cannot be stored: it is empty, holds a \"/\" or is not UTF-8", k, strings.Join(path, "/"))
		}
		p := append(path[:len(path):len(path)], k)
		if sub, ok := v.(map[string]interface{}); ok && len(sub) > 0 {
			if err := flattenInto(l, p, sub, out); err != nil {
				return err
			}
			continue
		}
		b, err := encodeLeaf(v)
		if err != nil {
			return fmt.Errorf("value at %q: %w", strings.Join(p, "/"), err)
		}
		out[l.key(p)] = b
	}
	return nil
}

func encodeLeaf(v interface{}) ([]byte, error) {
	if s, ok := v.(string); ok && !json.Valid([]byte(s)) {
		return []byte(s), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// errNotObject is returned by Write for a document that is not a JSON object.
var errNotObject = errors.New("the document is not a JSON object")
