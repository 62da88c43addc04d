package logger

import (
	"context"
	"io"
)

// Options configure a Logger.
type Options struct {
	// Out is where records are written. Default os.Stderr.
	Out io.Writer
	// Context holds implementation-specific options.
	Context context.Context
	// Fields are added to every record.
	Fields map[string]interface{}
	// CallerSkipCount is how many stack frames to skip to find the caller. Default 2.
	CallerSkipCount int
	// Level is the lowest level written. Default InfoLevel.
	Level Level
}

// Option sets a field of Options.
type Option func(*Options)

type optionsKey struct{ k interface{} }

// WithFields sets fields added to every record.
func WithFields(fields map[string]interface{}) Option {
	return func(o *Options) { o.Fields = fields }
}

// WithLevel sets the lowest level written.
func WithLevel(level Level) Option { return func(o *Options) { o.Level = level } }

// WithOutput sets where records are written.
func WithOutput(out io.Writer) Option { return func(o *Options) { o.Out = out } }

// WithCallerSkipCount sets how many frames to skip to find the caller.
func WithCallerSkipCount(c int) Option { return func(o *Options) { o.CallerSkipCount = c } }

// SetOption stores an implementation-specific option in Options.Context.
func SetOption(k, v interface{}) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, optionsKey{k}, v)
	}
}
