package logger

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"sync"
	"time"
)

// DefaultLogger is the logger used by the package-level functions and by every component
// that is given no logger. It writes text records to os.Stderr at InfoLevel.
var DefaultLogger Logger = NewLogger()

type defaultLogger struct {
	mu     sync.RWMutex
	opts   Options
	h      slog.Handler
	fields map[string]interface{}
}

// NewLogger returns a Logger writing through a log/slog text handler: records go to
// Options.Out (default os.Stderr) at or above Options.Level (default InfoLevel).
func NewLogger(opts ...Option) Logger {
	l := &defaultLogger{opts: Options{
		Out:             os.Stderr,
		Context:         context.Background(),
		CallerSkipCount: 2,
		Level:           InfoLevel,
	}}
	_ = l.Init(opts...)
	return l
}

func (l *defaultLogger) Init(opts ...Option) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range opts {
		o(&l.opts)
	}
	if l.opts.Out == nil {
		l.opts.Out = os.Stderr
	}
	l.fields = maps.Clone(l.opts.Fields)
	lvl := l.opts.Level
	l.h = slog.NewTextHandler(l.opts.Out, &slog.HandlerOptions{
		AddSource: true,
		Level:     lvl.ToSlog(),
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey {
				if lv, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(levelName(lv))
				}
			}
			return a
		},
	})
	return nil
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

func (l *defaultLogger) Options() Options {
	l.mu.RLock()
	defer l.mu.RUnlock()
	o := l.opts
	o.Fields = maps.Clone(l.fields)
	return o
}

func (l *defaultLogger) Fields(fields map[string]interface{}) Logger {
	l.mu.RLock()
	nl := &defaultLogger{opts: l.opts, h: l.h, fields: maps.Clone(l.fields)}
	l.mu.RUnlock()
	if nl.fields == nil {
		nl.fields = make(map[string]interface{}, len(fields))
	}
	maps.Copy(nl.fields, fields)
	nl.opts.Fields = nl.fields
	return nl
}

func (l *defaultLogger) Log(level Level, v ...interface{}) {
	l.write(level, func() string { return fmt.Sprint(v...) })
}

func (l *defaultLogger) Logf(level Level, format string, v ...interface{}) {
	l.write(level, func() string { return fmt.Sprintf(format, v...) })
}

func (l *defaultLogger) write(level Level, msg func() string) {
	l.mu.RLock()
	h, skip := l.h, l.opts.CallerSkipCount
	fields := l.fields
	l.mu.RUnlock()
	ctx := context.Background()
	if !h.Enabled(ctx, level.ToSlog()) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(skip+1, pcs[:])
	r := slog.NewRecord(time.Now(), level.ToSlog(), msg(), pcs[0])
	for k, v := range fields {
		r.AddAttrs(slog.Any(k, v))
	}
	_ = h.Handle(ctx, r)
}

func (l *defaultLogger) String() string { return "default" }
