package logger

import (
	"context"
	"io"
)

// Options configure a Logger. Init applies Options on top of the current ones.
type Options struct {
	// Out is where records are written. Default os.Stderr. Unused by a logger from
	// NewLoggerFromHandler.
	Out io.Writer
	// Context holds implementation-specific options set with SetOption. Default
	// context.Background().
	Context context.Context
	// Fields are added to every record. Default none.
	Fields map[string]interface{}
	// CallerSkipCount selects the stack frame a record names as its source. The default,
	// 2, names the code that called Log, Logf, a package-level function or a Helper
	// method; add one for each function of your own that wraps those calls. Values
	// below 2 count as 2.
	CallerSkipCount int
	// Level is the lowest level written. Default InfoLevel. A level above FatalLevel
	// turns the logger off.
	Level Level
}

// Option sets a field of Options. Options only set fields: the order they are given in
// does not matter.
type Option func(*Options)

// WithFields sets the fields added to every record, replacing the logger's fields.
func WithFields(fields map[string]interface{}) Option {
	return func(o *Options) { o.Fields = fields }
}

// WithLevel sets the lowest level written (Options.Level).
func WithLevel(level Level) Option { return func(o *Options) { o.Level = level } }

// WithOutput sets where records are written (Options.Out).
func WithOutput(out io.Writer) Option { return func(o *Options) { o.Out = out } }

// WithCallerSkipCount sets Options.CallerSkipCount: 2 (the default) plus the number of
// wrapper functions between the logging code and this package.
func WithCallerSkipCount(c int) Option { return func(o *Options) { o.CallerSkipCount = c } }

// SetOption stores an implementation-specific option under k in Options.Context, where
// the implementation reads it with Options.Context.Value(k). Like any context key, k
// should be a value of an unexported type of the package that defines the option.
func SetOption(k, v interface{}) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, k, v)
	}
}
