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

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/tree"
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
	for _, v := range all {
		tree.Set(root, v.path, v.val)
	}
	return tree.ChangeSet(e.opts.Encoder, e.String(), root)
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

// Write is not supported: the environment is read-only to a config source.
func (e *envSource) Write(*source.ChangeSet) error { return errReadOnly }

// Watch returns a watcher that never fires: the environment of a process does not change
// from outside.
func (e *envSource) Watch() (source.Watcher, error) { return source.NewNoopWatcher() }

func (e *envSource) String() string { return "env" }
