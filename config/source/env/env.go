// Package env is a configuration source made from environment variables. Each variable
// A_B_C=v becomes the path a.b.c: names are lower-cased and split on underscores, so
// DATABASE_ADDRESS=x sets {"database": {"address": "x"}} and merges with a file's
// "database" map. Values that parse as integers become numbers, then true/false
// booleans, and anything else stays a string.
//
// With WithPrefix or WithStrippedPrefix only variables with one of the prefixes are
// read; stripped prefixes are removed from the path. Where one variable names a path and
// another a path below it (APP=1 and APP_PORT=2), the deeper one wins, whatever the order
// of the environment. The source reads the environment each time it is read; its
// watcher never fires.
package env

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

// DefaultPrefixes are the prefixes read when no option names any: none, so every
// variable is read.
var DefaultPrefixes []string

type prefixKey struct{}
type strippedPrefixKey struct{}

// WithPrefix reads only variables whose names start with one of prefixes, keeping the
// prefix in the path (WithPrefix("MICRO"): MICRO_REGISTRY → micro.registry).
func WithPrefix(p ...string) source.Option {
	return func(o *source.Options) {
		cur, _ := o.Context.Value(prefixKey{}).([]string)
		source.ContextOption(prefixKey{}, append(append([]string(nil), cur...), p...))(o)
	}
}

// WithStrippedPrefix reads only variables whose names start with one of prefixes followed
// by an underscore, and removes both from the path (WithStrippedPrefix("APP"):
// APP_DATABASE_ADDRESS → database.address).
func WithStrippedPrefix(p ...string) source.Option {
	return func(o *source.Options) {
		cur, _ := o.Context.Value(strippedPrefixKey{}).([]string)
		next := append([]string(nil), cur...)
		for _, s := range p {
			next = append(next, strings.TrimSuffix(s, "_")+"_")
		}
		source.ContextOption(strippedPrefixKey{}, next)(o)
	}
}

type envSource struct {
	opts     source.Options
	prefixes []string
	stripped []string
	environ  func() []string
}

// NewSource returns an environment source.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &envSource{opts: o, environ: osEnviron}
	s.prefixes, _ = o.Context.Value(prefixKey{}).([]string)
	s.stripped, _ = o.Context.Value(strippedPrefixKey{}).([]string)
	if len(s.prefixes) == 0 && len(s.stripped) == 0 {
		s.prefixes = DefaultPrefixes
	}
	return s
}

func (e *envSource) Read() (*source.ChangeSet, error) {
	vars := e.environ()
	sort.Strings(vars)
	root := map[string]interface{}{}
	// Shallow paths first, so a deeper variable replaces a leaf in its way.
	type kv struct {
		path []string
		val  interface{}
	}
	var all []kv
	for _, kvs := range vars {
		name, value, ok := strings.Cut(kvs, "=")
		if !ok || name == "" {
			continue
		}
		name, ok = e.match(name)
		if !ok {
			continue
		}
		var path []string
		for _, p := range strings.Split(strings.ToLower(name), "_") {
			if p != "" {
				path = append(path, p)
			}
		}
		if len(path) == 0 {
			continue
		}
		all = append(all, kv{path, parse(value)})
	}
	sort.SliceStable(all, func(i, j int) bool { return len(all[i].path) < len(all[j].path) })
	for _, e := range all {
		set(root, e.path, e.val)
	}
	data, err := e.opts.Encoder.Encode(root)
	if err != nil {
		return nil, err
	}
	cs := &source.ChangeSet{Timestamp: time.Now(), Format: e.opts.Encoder.String(), Source: e.String(), Data: data}
	cs.Checksum = cs.Sum()
	return cs, nil
}

// match reports whether name is read, and the name to build the path from.
func (e *envSource) match(name string) (string, bool) {
	if len(e.prefixes) == 0 && len(e.stripped) == 0 {
		return name, true
	}
	for _, p := range e.stripped {
		if strings.HasPrefix(name, p) {
			return name[len(p):], true
		}
	}
	for _, p := range e.prefixes {
		if strings.HasPrefix(name, p) {
			return name, true
		}
	}
	return "", false
}

func parse(v string) interface{} {
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return v
}

func set(m map[string]interface{}, path []string, v interface{}) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, isMap := m[last].(map[string]interface{}); isMap {
		return // a deeper variable already made a map here
	}
	m[last] = v
}

// Write is not supported: the environment is read-only to a config source.
func (e *envSource) Write(*source.ChangeSet) error { return errReadOnly }

// Watch returns a watcher that never fires: the environment of a process does not change
// from outside.
func (e *envSource) Watch() (source.Watcher, error) { return source.NewNoopWatcher() }

func (e *envSource) String() string { return "env" }
