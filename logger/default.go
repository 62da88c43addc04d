package logger

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogger is the Logger used by the package-level functions, by DefaultHelper and
// by every micro component that is given no logger. It is the logger NewLogger returns
// without options: text records with their source position, written to os.Stderr, at
// InfoLevel.
//
// Change its settings with Init, which is safe while other goroutines log. Assigning
// another Logger to the variable is not synchronised: do it before logging starts. The
// package never reads the environment; the cmd package applies MICRO_LOG_LEVEL.
var DefaultLogger Logger = NewLogger()

// NewLogger returns a Logger that writes through a log/slog text handler. Records at or
// above Options.Level (default InfoLevel) are written to Options.Out (default os.Stderr)
// as one line each, with time, level (TRACE, DEBUG, INFO, WARN, ERROR or FATAL), the
// source position "dir/file.go:line" of the code that logged, the message and the fields
// sorted by key. Each record is a single Write call to Out, made under a lock shared by
// the logger and every logger derived from it, so Out need not be safe for concurrent
// use by itself.
//
// The returned Logger is safe for concurrent use, including Init while other goroutines
// log. Its String method returns "default".
func NewLogger(opts ...Option) Logger { return newLogger(nil, opts) }

// NewLoggerFromHandler returns a Logger that passes its records to h, a log/slog handler
// of the caller's choice. Records below Options.Level (default InfoLevel) are dropped
// before reaching h, and h may drop more through its own Enabled method. Records carry
// Level.ToSlog levels, the caller's program counter (used when h adds the source) and
// the logger's fields as attributes sorted by key. Options.Out is not used: h decides
// where records go. The Logger behaves like NewLogger's in every other respect and is
// safe for concurrent use if h is. A nil h gives NewLogger's text handler.
func NewLoggerFromHandler(h slog.Handler, opts ...Option) Logger { return newLogger(h, opts) }

// defaultLogger implements Logger. Its settings live in an immutable config reached
// through an atomic pointer, so logging takes no lock. A logger returned by Fields has
// no config of its own: it uses its parent's at each call, and so follows Init on the
// parent, until Init is called on it.
type defaultLogger struct {
	mu sync.Mutex // serialises Init
	st atomic.Pointer[state]
}

// state is one logger's immutable view: its own config or the parent whose config it
// follows, and its fields.
type state struct {
	cfg    *config
	parent *defaultLogger
	fields map[string]interface{}
	attrs  []slog.Attr // fields, sorted by key
}

type config struct {
	opts    Options // Fields is kept in state
	handler slog.Handler
	custom  bool        // handler was given by the user
	skip    int         // extra frames to skip: CallerSkipCount-2, at least 0
	wmu     *sync.Mutex // serialises writes to opts.Out for a family of loggers
}

func newLogger(h slog.Handler, opts []Option) *defaultLogger {
	defaults := &config{
		opts: Options{
			Out:             os.Stderr,
			Context:         context.Background(),
			CallerSkipCount: 2,
			Level:           InfoLevel,
		},
		handler: h,
		custom:  h != nil,
		wmu:     new(sync.Mutex),
	}
	l := &defaultLogger{}
	l.st.Store(&state{cfg: defaults})
	_ = l.Init(opts...)
	return l
}

// resolve returns the logger's state and the config in effect for it.
func (l *defaultLogger) resolve() (*state, *config) {
	st := l.st.Load()
	s := st
	for s.cfg == nil {
		s = s.parent.st.Load()
	}
	return st, s.cfg
}

// Init applies opts on top of the logger's current options and returns nil. Options not
// given keep their values; WithFields replaces the logger's fields. Init on a logger
// returned by Fields gives it settings of its own: it stops following its parent.
func (l *defaultLogger) Init(opts ...Option) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, old := l.resolve()
	o := old.opts
	o.Fields = maps.Clone(st.fields)
	for _, opt := range opts {
		opt(&o)
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	cfg := &config{
		opts:    o,
		handler: old.handler,
		custom:  old.custom,
		skip:    max(o.CallerSkipCount-2, 0),
		wmu:     old.wmu,
	}
	cfg.opts.Fields = nil
	if !cfg.custom {
		cfg.handler = newTextHandler(&lockedWriter{mu: old.wmu, w: o.Out})
	}
	l.st.Store(newState(cfg, nil, o.Fields))
	return nil
}

func newState(cfg *config, parent *defaultLogger, fields map[string]interface{}) *state {
	st := &state{cfg: cfg, parent: parent}
	if len(fields) == 0 {
		return st
	}
	st.fields = maps.Clone(fields)
	st.attrs = make([]slog.Attr, 0, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		st.attrs = append(st.attrs, slog.Any(k, fields[k]))
	}
	return st
}

// Options returns a copy of the options in effect, Fields included.
func (l *defaultLogger) Options() Options {
	st, cfg := l.resolve()
	o := cfg.opts
	o.Fields = maps.Clone(st.fields)
	return o
}

// level returns the lowest level written, without copying the options.
func (l *defaultLogger) level() Level {
	_, cfg := l.resolve()
	return cfg.opts.Level
}

// Fields returns a logger that writes l's fields plus these (which win on equal keys) to
// l's output. It follows later Init calls on l until Init is called on it.
func (l *defaultLogger) Fields(fields map[string]interface{}) Logger {
	st := l.st.Load()
	f := make(map[string]interface{}, len(st.fields)+len(fields))
	maps.Copy(f, st.fields)
	maps.Copy(f, fields)
	nl := &defaultLogger{}
	nl.st.Store(newState(nil, l, f))
	return nl
}

// Log writes a record at level whose message is fmt.Sprint(v...).
func (l *defaultLogger) Log(level Level, v ...interface{}) {
	l.write(1, level, "", false, v)
}

// Logf writes a record at level whose message is fmt.Sprintf(format, v...).
func (l *defaultLogger) Logf(level Level, format string, v ...interface{}) {
	l.write(1, level, format, true, v)
}

// String returns "default".
func (l *defaultLogger) String() string { return "default" }

// write formats and writes one record if level is enabled. depth is the number of this
// package's frames between write and the code that called the package's API, so that the
// record's source is that code when CallerSkipCount is 2. v does not escape: a disabled
// record costs no allocation.
func (l *defaultLogger) write(depth int, level Level, format string, formatted bool, v []interface{}) {
	st, cfg := l.resolve()
	if !cfg.opts.Level.Enabled(level) {
		return
	}
	ctx := context.Background()
	sl := level.ToSlog()
	if cfg.custom && !cfg.handler.Enabled(ctx, sl) {
		return
	}
	var pcs [1]uintptr
	// Skip runtime.Callers, write and the package's own frames.
	runtime.Callers(2+depth+cfg.skip, pcs[:])
	var msg string
	switch s, ok := singleString(v); {
	case formatted:
		msg = fmt.Sprintf(format, v...)
	case ok:
		msg = s // what fmt.Sprint returns, without the copy
	default:
		msg = fmt.Sprint(v...)
	}
	r := slog.NewRecord(time.Now(), sl, msg, pcs[0])
	r.AddAttrs(st.attrs...)
	_ = cfg.handler.Handle(ctx, r)
}

func singleString(v []interface{}) (string, bool) {
	if len(v) != 1 {
		return "", false
	}
	s, ok := v[0].(string)
	return s, ok
}

func newTextHandler(w io.Writer) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{
		AddSource:   true,
		Level:       slog.Level(math.MinInt), // the logger filters by Options.Level
		ReplaceAttr: replaceAttr,
	})
}

// replaceAttr names micro's levels and shortens the source to dir/file.go:line.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		if lv, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(levelName(lv))
		}
	case slog.SourceKey:
		if s, ok := a.Value.Any().(*slog.Source); ok && s != nil && s.File != "" {
			dir, file := filepath.Split(s.File)
			a.Value = slog.StringValue(filepath.Base(dir) + "/" + file + ":" + strconv.Itoa(s.Line))
		}
	}
	return a
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l > slog.LevelError:
		return "FATAL"
	}
	return l.String()
}

// lockedWriter makes each Write exclusive under a mutex shared by a logger family, so
// handlers replaced by Init never write to Out at the same time as their successors.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
