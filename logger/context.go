package logger

import "context"

// contextKey is the context key of the Logger stored by NewContext.
type contextKey struct{}

// FromContext returns the Logger stored in ctx by NewContext (or Helper.Inject) and
// whether there was one.
func FromContext(ctx context.Context) (Logger, bool) {
	l, ok := ctx.Value(contextKey{}).(Logger)
	return l, ok && l != nil
}

// NewContext returns a copy of ctx that carries l.
func NewContext(ctx context.Context, l Logger) context.Context {
	return context.WithValue(ctx, contextKey{}, l)
}
