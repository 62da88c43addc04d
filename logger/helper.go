package logger

import (
	"context"
	"os"
	"slices"
)

// DefaultHelper is a Helper over DefaultLogger. It looks DefaultLogger up at each call,
// so it follows Init on DefaultLogger and a later assignment of another Logger to it.
var DefaultHelper *Helper = NewHelper(nil)

// Helper adds leveled methods (Info, Debugf, …) and fields to a Logger. It is a Logger
// itself, so it can be stored in a context with Inject and passed where a Logger is
// expected. The zero Helper, a nil *Helper and NewHelper(nil) all log through whatever
// DefaultLogger is at the time of each call. A Helper is immutable and safe for
// concurrent use; WithFields and WithError return new Helpers.
type Helper struct {
	l Logger // nil: DefaultLogger at call time
}

// NewHelper returns a Helper logging through log, or through DefaultLogger at each call
// if log is nil.
func NewHelper(log Logger) *Helper { return &Helper{l: log} }

// HelperOrDefault returns h, or DefaultHelper if h is nil.
func HelperOrDefault(h *Helper) *Helper {
	if h == nil {
		return DefaultHelper
	}
	return h
}

// Extract returns the Logger stored in ctx as a Helper: the Helper itself if one was
// stored with Inject, a new Helper over any other Logger, and DefaultHelper if ctx holds
// no Logger.
func Extract(ctx context.Context) *Helper {
	l, ok := FromContext(ctx)
	if !ok {
		return DefaultHelper
	}
	if h, ok := l.(*Helper); ok {
		return h
	}
	return NewHelper(l)
}

// Inject returns a copy of ctx carrying h, for Extract or FromContext to find.
func (h *Helper) Inject(ctx context.Context) context.Context { return NewContext(ctx, h) }

// logger returns the Logger h writes to.
func (h *Helper) logger() Logger {
	if h == nil || h.l == nil {
		return DefaultLogger
	}
	return h.l
}

// WithFields returns a Helper whose records carry h's fields plus these, which win on
// equal keys. The new Helper is bound to h's Logger as it is now: for DefaultHelper, the
// DefaultLogger of the moment (whose later Init calls it still follows).
func (h *Helper) WithFields(fields map[string]interface{}) *Helper {
	return &Helper{l: h.logger().Fields(fields)}
}

// WithError returns a Helper whose records carry err in the field "error".
func (h *Helper) WithError(err error) *Helper {
	return h.WithFields(map[string]interface{}{"error": err})
}

// Init applies opts to the Logger underneath h.
func (h *Helper) Init(opts ...Option) error { return h.logger().Init(opts...) }

// Options returns the options of the Logger underneath h, fields included.
func (h *Helper) Options() Options { return h.logger().Options() }

// Fields returns a Helper, as a Logger, with fields added; see WithFields.
func (h *Helper) Fields(fields map[string]interface{}) Logger { return h.WithFields(fields) }

// String names the implementation of the Logger underneath h.
func (h *Helper) String() string { return h.logger().String() }

// Log writes a record at level, made of v as fmt.Sprint does.
func (h *Helper) Log(level Level, v ...interface{}) {
	if l := h.logger(); !emit(l, level, "", false, v) {
		l.Log(level, slices.Clone(v)...)
	}
}

// Logf writes a record at level, formatted as fmt.Sprintf does.
func (h *Helper) Logf(level Level, format string, v ...interface{}) {
	if l := h.logger(); !emit(l, level, format, true, v) {
		l.Logf(level, format, slices.Clone(v)...)
	}
}

// Trace writes a record at TraceLevel, made of v as fmt.Sprint does.
func (h *Helper) Trace(v ...interface{}) {
	if l := h.logger(); !emit(l, TraceLevel, "", false, v) {
		l.Log(TraceLevel, slices.Clone(v)...)
	}
}

// Tracef writes a record at TraceLevel, formatted as fmt.Sprintf does.
func (h *Helper) Tracef(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, TraceLevel, format, true, v) {
		l.Logf(TraceLevel, format, slices.Clone(v)...)
	}
}

// Debug writes a record at DebugLevel, made of v as fmt.Sprint does.
func (h *Helper) Debug(v ...interface{}) {
	if l := h.logger(); !emit(l, DebugLevel, "", false, v) {
		l.Log(DebugLevel, slices.Clone(v)...)
	}
}

// Debugf writes a record at DebugLevel, formatted as fmt.Sprintf does.
func (h *Helper) Debugf(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, DebugLevel, format, true, v) {
		l.Logf(DebugLevel, format, slices.Clone(v)...)
	}
}

// Info writes a record at InfoLevel, made of v as fmt.Sprint does.
func (h *Helper) Info(v ...interface{}) {
	if l := h.logger(); !emit(l, InfoLevel, "", false, v) {
		l.Log(InfoLevel, slices.Clone(v)...)
	}
}

// Infof writes a record at InfoLevel, formatted as fmt.Sprintf does.
func (h *Helper) Infof(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, InfoLevel, format, true, v) {
		l.Logf(InfoLevel, format, slices.Clone(v)...)
	}
}

// Warn writes a record at WarnLevel, made of v as fmt.Sprint does.
func (h *Helper) Warn(v ...interface{}) {
	if l := h.logger(); !emit(l, WarnLevel, "", false, v) {
		l.Log(WarnLevel, slices.Clone(v)...)
	}
}

// Warnf writes a record at WarnLevel, formatted as fmt.Sprintf does.
func (h *Helper) Warnf(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, WarnLevel, format, true, v) {
		l.Logf(WarnLevel, format, slices.Clone(v)...)
	}
}

// Error writes a record at ErrorLevel, made of v as fmt.Sprint does.
func (h *Helper) Error(v ...interface{}) {
	if l := h.logger(); !emit(l, ErrorLevel, "", false, v) {
		l.Log(ErrorLevel, slices.Clone(v)...)
	}
}

// Errorf writes a record at ErrorLevel, formatted as fmt.Sprintf does.
func (h *Helper) Errorf(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, ErrorLevel, format, true, v) {
		l.Logf(ErrorLevel, format, slices.Clone(v)...)
	}
}

// Fatal writes a record at FatalLevel, made of v as fmt.Sprint does, then ends the
// process with os.Exit(1): deferred functions do not run. It is meant for an
// application's main; micro itself never calls it.
func (h *Helper) Fatal(v ...interface{}) {
	if l := h.logger(); !emit(l, FatalLevel, "", false, v) {
		l.Log(FatalLevel, slices.Clone(v)...)
	}
	os.Exit(1)
}

// Fatalf writes a record at FatalLevel, formatted as fmt.Sprintf does, then ends the
// process with os.Exit(1): deferred functions do not run. It is meant for an
// application's main; micro itself never calls it.
func (h *Helper) Fatalf(format string, v ...interface{}) {
	if l := h.logger(); !emit(l, FatalLevel, format, true, v) {
		l.Logf(FatalLevel, format, slices.Clone(v)...)
	}
	os.Exit(1)
}
