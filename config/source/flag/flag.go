// Package flag is a configuration source made from the standard library's command-line
// flags. A flag's name is split on '-' and '_' into a path, so -database-address=x sets
// {"database": {"address": "x"}}. Boolean, integer and float flags keep their types;
// durations and everything else are taken as their string form.
//
// By default only the flags given on the command line are read, so that a flag's default
// never overrides a value from a source loaded before it; IncludeUnset(true) reads every
// defined flag. The flags must have been parsed before the source is read.
package flag

import (
	"errors"
	"flag"
	"strings"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/tree"
)

type includeUnsetKey struct{}
type flagSetKey struct{}

// IncludeUnset makes the source read flags that were not given too, with their defaults.
func IncludeUnset(b bool) source.Option { return source.ContextOption(includeUnsetKey{}, b) }

// WithFlagSet reads fs instead of flag.CommandLine.
func WithFlagSet(fs *flag.FlagSet) source.Option { return source.ContextOption(flagSetKey{}, fs) }

type flagSource struct {
	opts  source.Options
	fs    *flag.FlagSet
	unset bool
}

// NewSource returns a flag source.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &flagSource{opts: o, fs: flag.CommandLine}
	if fs, ok := o.Context.Value(flagSetKey{}).(*flag.FlagSet); ok && fs != nil {
		s.fs = fs
	}
	s.unset, _ = o.Context.Value(includeUnsetKey{}).(bool)
	return s
}

func (s *flagSource) Read() (*source.ChangeSet, error) {
	if !s.fs.Parsed() {
		return nil, errors.New("config: flags have not been parsed yet (call flag.Parse first)")
	}
	root := map[string]interface{}{}
	add := func(f *flag.Flag) {
		path := split(f.Name)
		if len(path) == 0 {
			return
		}
		tree.Set(root, path, value(f))
	}
	if s.unset {
		s.fs.VisitAll(add)
	} else {
		s.fs.Visit(add)
	}
	return tree.ChangeSet(s.opts.Encoder, s.String(), root)
}

func split(name string) []string {
	var path []string
	for _, p := range strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' }) {
		path = append(path, p)
	}
	return path
}

func value(f *flag.Flag) interface{} {
	if g, ok := f.Value.(flag.Getter); ok {
		switch v := g.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return v
		case time.Duration:
			return v.String()
		}
	}
	return f.Value.String()
}

// Write is not supported: flags are read-only to a config source.
func (s *flagSource) Write(*source.ChangeSet) error {
	return errors.New("config: the flag source cannot be written")
}

// Watch returns a watcher that never fires: flags do not change after parsing.
func (s *flagSource) Watch() (source.Watcher, error) { return source.NewNoopWatcher() }

func (s *flagSource) String() string { return "flag" }
