// Package cli is a configuration source made from urfave/cli (v2) flags, the flags micro's
// cmd package and micro.Flags define. A flag's name is split on '-' and '_' into a path,
// so --database-address=x sets {"database": {"address": "x"}}.
//
// Only flags that were given, on the command line or through their environment
// variables, are read by default, so that a flag's default never overrides a value from
// a source loaded before it; IncludeUnset(true) reads every flag. Slices keep their
// elements, numbers and booleans their types; durations are taken in their string form.
//
// Pass the context of the running action with Context or WithContext. Without one, the
// source parses the process's arguments against the flags of cmd.App() when it is read,
// up to the first argument cmd does not define.
package cli

import (
	"flag"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/tree"
)

type contextKey struct{}
type includeUnsetKey struct{}

// Context reads the flags of c.
func Context(c *cli.Context) source.Option { return source.ContextOption(contextKey{}, c) }

// IncludeUnset makes the source read flags that were not given too, with their defaults.
func IncludeUnset(b bool) source.Option { return source.ContextOption(includeUnsetKey{}, b) }

// WithContext returns a source reading the flags of c.
func WithContext(c *cli.Context, opts ...source.Option) source.Source {
	return NewSource(append(opts, Context(c))...)
}

type cliSource struct {
	opts  source.Options
	ctx   *cli.Context
	unset bool
}

// NewSource returns a cli source.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &cliSource{opts: o}
	s.ctx, _ = o.Context.Value(contextKey{}).(*cli.Context)
	s.unset, _ = o.Context.Value(includeUnsetKey{}).(bool)
	return s
}

// processContext parses os.Args against cmd.App()'s flags.
func processContext() (*cli.Context, error) {
	app := cmd.App()
	set := flag.NewFlagSet(app.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range app.Flags {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
	}
	// Arguments cmd does not define (a test binary's -test.* flags, say) end parsing
	// without failing the read: cmd itself reports them when it parses.
	_ = set.Parse(os.Args[1:])
	return cli.NewContext(app, set, nil), nil
}

func (s *cliSource) Read() (*source.ChangeSet, error) {
	ctx := s.ctx
	if ctx == nil {
		c, err := processContext()
		if err != nil {
			return nil, err
		}
		ctx = c
	}
	var flags []cli.Flag
	if ctx.Command != nil {
		flags = append(flags, ctx.Command.Flags...)
	}
	if ctx.App != nil {
		flags = append(flags, ctx.App.Flags...)
	}
	root := map[string]interface{}{}
	seen := map[string]bool{}
	for _, f := range flags {
		names := f.Names()
		if len(names) == 0 || seen[names[0]] {
			continue
		}
		name := names[0]
		seen[name] = true
		if !s.unset && !ctx.IsSet(name) {
			continue
		}
		path := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' })
		if len(path) == 0 {
			continue
		}
		tree.Set(root, path, value(ctx, f, name))
	}
	return tree.ChangeSet(s.opts.Encoder, s.String(), root)
}

func value(ctx *cli.Context, f cli.Flag, name string) interface{} {
	switch f.(type) {
	case *cli.StringSliceFlag:
		return ctx.StringSlice(name)
	case *cli.IntSliceFlag:
		return ctx.IntSlice(name)
	case *cli.Int64SliceFlag:
		return ctx.Int64Slice(name)
	case *cli.Float64SliceFlag:
		return ctx.Float64Slice(name)
	case *cli.DurationFlag:
		return ctx.Duration(name).String()
	}
	switch v := ctx.Value(name).(type) {
	case bool, int, int64, uint, uint64, float64, string:
		return v
	case nil:
		return nil
	default:
		if g, ok := f.(interface{ GetValue() string }); ok {
			return g.GetValue()
		}
		return ctx.String(name)
	}
}

// Write is not supported: flags are read-only to a config source.
func (s *cliSource) Write(*source.ChangeSet) error { return errReadOnly }

// Watch returns a watcher that never fires: flags do not change after parsing.
func (s *cliSource) Watch() (source.Watcher, error) { return source.NewNoopWatcher() }

func (s *cliSource) String() string { return "cli" }
