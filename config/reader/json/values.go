package json

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/config/reader"
)

// document is one immutable version of a Values' tree, with its encoding made once.
type document struct {
	root map[string]interface{}
	data []byte
}

type jsonValues struct {
	mu  sync.Mutex // serialises Set and Del
	doc atomic.Pointer[document]
}

// NewValues reads a JSON document (an object) into Values.
func NewValues(data []byte) (reader.Values, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw interface{}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config: malformed json: %w", err)
	}
	tree, err := normalizeNoExpand(raw)
	if err != nil {
		return nil, err
	}
	root, ok := tree.(map[string]interface{})
	if !ok {
		if tree != nil {
			return nil, fmt.Errorf("config: the document must be a map of keys, not a %s", kind(tree))
		}
		root = map[string]interface{}{}
	}
	v := &jsonValues{}
	v.doc.Store(&document{root: root, data: append([]byte(nil), data...)})
	return v, nil
}

// normalizeNoExpand checks the nesting of a decoded JSON document; its values are
// already in the tree's types, and its strings were expanded when it was merged.
func normalizeNoExpand(v interface{}) (interface{}, error) {
	var check func(v interface{}, depth int) error
	check = func(v interface{}, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("config: the document nests deeper than %d levels", maxDepth)
		}
		switch t := v.(type) {
		case map[string]interface{}:
			for _, e := range t {
				if err := check(e, depth+1); err != nil {
					return err
				}
			}
		case []interface{}:
			for _, e := range t {
				if err := check(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return v, check(v, 0)
}

func (j *jsonValues) Bytes() []byte {
	return append([]byte(nil), j.doc.Load().data...)
}

func (j *jsonValues) Get(path ...string) (reader.Value, error) {
	v, ok := lookup(j.doc.Load().root, path)
	return &jsonValue{v: v, ok: ok}, nil
}

func (j *jsonValues) Set(val interface{}, path ...string) {
	if len(path) == 0 {
		return
	}
	n, err := toTree(val)
	if err != nil {
		return
	}
	j.replace(func(root map[string]interface{}) map[string]interface{} {
		return withValue(root, path, n, false)
	})
}

func (j *jsonValues) Del(path ...string) {
	if len(path) == 0 {
		return
	}
	j.replace(func(root map[string]interface{}) map[string]interface{} {
		return withValue(root, path, nil, true)
	})
}

func (j *jsonValues) replace(f func(map[string]interface{}) map[string]interface{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	root := f(j.doc.Load().root)
	data, err := json.Marshal(root)
	if err != nil {
		return
	}
	j.doc.Store(&document{root: root, data: data})
}

func (j *jsonValues) Map() map[string]interface{} {
	return deepCopy(j.doc.Load().root).(map[string]interface{})
}

func (j *jsonValues) Scan(v interface{}) error {
	return json.Unmarshal(j.doc.Load().data, v)
}

func (j *jsonValues) String() string { return "json" }

// toTree turns any Go value into the tree's types through its JSON encoding.
func toTree(val interface{}) (interface{}, error) {
	switch val.(type) {
	case nil, string, bool, json.Number, map[string]interface{}, []interface{}:
		return normalize(val, 0)
	}
	b, err := json.Marshal(val)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw interface{}
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	return raw, nil
}

type jsonValue struct {
	v  interface{}
	ok bool
}

func (j *jsonValue) Bool(def bool) bool {
	switch t := j.v.(type) {
	case bool:
		return t
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(t)); err == nil {
			return b
		}
	}
	return def
}

func (j *jsonValue) Int(def int) int {
	switch t := j.v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 0); err == nil {
			return int(i)
		}
		if f, err := t.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < math.MaxInt64 {
			return int(f)
		}
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(t), 0, 0); err == nil {
			return int(i)
		}
	}
	return def
}

func (j *jsonValue) String(def string) string {
	switch t := j.v.(type) {
	case string:
		return t
	case json.Number:
		return string(t)
	case bool:
		return strconv.FormatBool(t)
	}
	return def
}

func (j *jsonValue) Float64(def float64) float64 {
	switch t := j.v.(type) {
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return f
		}
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(t), 64); err == nil {
			return f
		}
	}
	return def
}

func (j *jsonValue) Duration(def time.Duration) time.Duration {
	switch t := j.v.(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(t)); err == nil {
			return d
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return time.Duration(i)
		}
	}
	return def
}

func (j *jsonValue) StringSlice(def []string) []string {
	switch t := j.v.(type) {
	case []interface{}:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := scalarString(e)
			if !ok {
				return def
			}
			out = append(out, s)
		}
		return out
	case string:
		parts := strings.Split(t, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	return def
}

func (j *jsonValue) StringMap(def map[string]string) map[string]string {
	m, ok := j.v.(map[string]interface{})
	if !ok {
		return def
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := scalarString(e)
		if !ok {
			b, err := json.Marshal(e)
			if err != nil {
				return def
			}
			s = string(b)
		}
		out[k] = s
	}
	return out
}

func scalarString(v interface{}) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return string(t), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

func (j *jsonValue) Scan(val interface{}) error {
	if !j.ok || j.v == nil {
		return nil
	}
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, val)
}

func (j *jsonValue) Bytes() []byte {
	if s, ok := j.v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(j.v)
	if err != nil {
		return nil
	}
	return b
}
