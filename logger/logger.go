// Package logger is micro's logging interface, with Go Micro's API, backed by log/slog.
//
// A Logger writes records at a Level; NewLogger returns the log/slog text implementation
// and NewLoggerFromHandler wraps any slog.Handler. DefaultLogger is the logger used by
// the package-level functions (Info, Logf, …) and by components given no logger. A
// Helper adds leveled methods and fields to a Logger and travels in a context with
// Inject and Extract.
//
// Records name the code that called the package (a Log or Logf method, a package-level
// function or a Helper method) as their source. Everything here is safe for concurrent
// use. The package reads no environment variable and never exits the process, except in
// the Fatal functions and methods, which exist for applications; micro never calls them.
package logger

import (
	"os"
	"slices"
)

// Logger is the logging interface of Go Micro. The default implementation writes through
// log/slog; every method is safe for concurrent use.
type Logger interface {
	// Init applies options to the logger.
	Init(options ...Option) error
	// Options returns the logger's options.
	Options() Options
	// Fields returns a logger that adds fields to every record.
	Fields(fields map[string]interface{}) Logger
	// Log writes a record at level made of v, as fmt.Sprint does.
	Log(level Level, v ...interface{})
	// Logf writes a record at level formatted as fmt.Sprintf does.
	Logf(level Level, format string, v ...interface{})
	// String names the implementation.
	String() string
}

// Init applies opts to DefaultLogger.
func Init(opts ...Option) error { return DefaultLogger.Init(opts...) }

// Fields returns a logger that writes DefaultLogger's records with fields added.
func Fields(fields map[string]interface{}) Logger { return DefaultLogger.Fields(fields) }

// String names DefaultLogger's implementation ("default" unless it was replaced).
func String() string { return DefaultLogger.String() }

// LoggerOrDefault returns l, or DefaultLogger if l is nil.
func LoggerOrDefault(l Logger) Logger {
	if l == nil {
		return DefaultLogger
	}
	return l
}

// V reports whether log, or DefaultLogger if log is nil, writes records at lvl. Use it to
// skip building an expensive record.
func V(lvl Level, log Logger) bool { return levelOf(LoggerOrDefault(log)).Enabled(lvl) }

// levelOf returns l's level, without copying its options when l is this package's.
func levelOf(l Logger) Level {
	for range maxUnwrap {
		switch x := l.(type) {
		case *defaultLogger:
			return x.level()
		case *Helper:
			l = x.logger()
		default:
			return l.Options().Level
		}
	}
	return l.Options().Level
}

// maxUnwrap bounds how many Helpers are looked through to find the Logger underneath.
const maxUnwrap = 8

// emit writes a record through l when l is this package's Logger (possibly under
// Helpers), naming as source the caller of the exported function that called emit, and
// reports whether it did. For other implementations it reports false and the exported
// function calls their Log or Logf itself, so their own caller-skip logic sees the same
// frames as with Go Micro.
func emit(l Logger, level Level, format string, formatted bool, v []interface{}) bool {
	for range maxUnwrap {
		switch x := l.(type) {
		case *defaultLogger:
			x.write(2, level, format, formatted, v)
			return true
		case *Helper:
			l = x.logger()
		default:
			return false
		}
	}
	return false
}

// Log writes a record at level to DefaultLogger, made of v as fmt.Sprint does.
func Log(level Level, v ...interface{}) {
	if l := DefaultLogger; !emit(l, level, "", false, v) {
		l.Log(level, slices.Clone(v)...)
	}
}

// Logf writes a record at level to DefaultLogger, formatted as fmt.Sprintf does.
func Logf(level Level, format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, level, format, true, v) {
		l.Logf(level, format, slices.Clone(v)...)
	}
}

// The copies made by slices.Clone above and below keep v from escaping, so that a
// disabled record costs no allocation; only other Logger implementations pay for them.

// Trace writes a record at TraceLevel to DefaultLogger, made of v as fmt.Sprint does.
func Trace(v ...interface{}) {
	if l := DefaultLogger; !emit(l, TraceLevel, "", false, v) {
		l.Log(TraceLevel, slices.Clone(v)...)
	}
}

// Tracef writes a record at TraceLevel to DefaultLogger, formatted as fmt.Sprintf does.
func Tracef(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, TraceLevel, format, true, v) {
		l.Logf(TraceLevel, format, slices.Clone(v)...)
	}
}

// Debug writes a record at DebugLevel to DefaultLogger, made of v as fmt.Sprint does.
func Debug(v ...interface{}) {
	if l := DefaultLogger; !emit(l, DebugLevel, "", false, v) {
		l.Log(DebugLevel, slices.Clone(v)...)
	}
}

// Debugf writes a record at DebugLevel to DefaultLogger, formatted as fmt.Sprintf does.
func Debugf(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, DebugLevel, format, true, v) {
		l.Logf(DebugLevel, format, slices.Clone(v)...)
	}
}

// Info writes a record at InfoLevel to DefaultLogger, made of v as fmt.Sprint does.
func Info(v ...interface{}) {
	if l := DefaultLogger; !emit(l, InfoLevel, "", false, v) {
		l.Log(InfoLevel, slices.Clone(v)...)
	}
}

// Infof writes a record at InfoLevel to DefaultLogger, formatted as fmt.Sprintf does.
func Infof(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, InfoLevel, format, true, v) {
		l.Logf(InfoLevel, format, slices.Clone(v)...)
	}
}

// Warn writes a record at WarnLevel to DefaultLogger, made of v as fmt.Sprint does.
func Warn(v ...interface{}) {
	if l := DefaultLogger; !emit(l, WarnLevel, "", false, v) {
		l.Log(WarnLevel, slices.Clone(v)...)
	}
}

// Warnf writes a record at WarnLevel to DefaultLogger, formatted as fmt.Sprintf does.
func Warnf(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, WarnLevel, format, true, v) {
		l.Logf(WarnLevel, format, slices.Clone(v)...)
	}
}

// Error writes a record at ErrorLevel to DefaultLogger, made of v as fmt.Sprint does.
func Error(v ...interface{}) {
	if l := DefaultLogger; !emit(l, ErrorLevel, "", false, v) {
		l.Log(ErrorLevel, slices.Clone(v)...)
	}
}

// Errorf writes a record at ErrorLevel to DefaultLogger, formatted as fmt.Sprintf does.
func Errorf(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, ErrorLevel, format, true, v) {
		l.Logf(ErrorLevel, format, slices.Clone(v)...)
	}
}

// Fatal writes a record at FatalLevel to DefaultLogger, made of v as fmt.Sprint does,
// then ends the process with os.Exit(1): deferred functions do not run. It is meant for
// an application's main; micro itself never calls it.
func Fatal(v ...interface{}) {
	if l := DefaultLogger; !emit(l, FatalLevel, "", false, v) {
		l.Log(FatalLevel, slices.Clone(v)...)
	}
	os.Exit(1)
}

// Fatalf writes a record at FatalLevel to DefaultLogger, formatted as fmt.Sprintf does,
// then ends the process with os.Exit(1): deferred functions do not run. It is meant for
// an application's main; micro itself never calls it.
func Fatalf(format string, v ...interface{}) {
	if l := DefaultLogger; !emit(l, FatalLevel, format, true, v) {
		l.Logf(FatalLevel, format, slices.Clone(v)...)
	}
	os.Exit(1)
}
