package logger

import (
	"fmt"
	"log/slog"
	"strings"
)

// Level is a logging level.
type Level int8

// The levels, with Go Micro's values.
const (
	TraceLevel Level = iota - 2
	DebugLevel
	InfoLevel
	WarnLevel
	ErrorLevel
	FatalLevel
)

// String returns the lower-case name of the level.
func (l Level) String() string {
	switch l {
	case TraceLevel:
		return "trace"
	case DebugLevel:
		return "debug"
	case InfoLevel:
		return "info"
	case WarnLevel:
		return "warn"
	case ErrorLevel:
		return "error"
	case FatalLevel:
		return "fatal"
	}
	return ""
}

// Enabled reports whether lvl is at or above l, i.e. whether a logger set to l writes a
// record of level lvl.
func (l Level) Enabled(lvl Level) bool { return lvl >= l }

// ToSlog returns the slog level that l maps to. Trace is below slog's Debug and Fatal
// above its Error.
func (l Level) ToSlog() slog.Level {
	switch l {
	case TraceLevel:
		return slog.LevelDebug - 4
	case DebugLevel:
		return slog.LevelDebug
	case InfoLevel:
		return slog.LevelInfo
	case WarnLevel:
		return slog.LevelWarn
	case ErrorLevel:
		return slog.LevelError
	case FatalLevel:
		return slog.LevelError + 4
	}
	return slog.LevelInfo
}

// GetLevel parses a level name (trace, debug, info, warn, error, fatal; case-insensitive).
// An unknown name returns InfoLevel and an error.
func GetLevel(levelStr string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(levelStr)) {
	case "trace":
		return TraceLevel, nil
	case "debug":
		return DebugLevel, nil
	case "info", "":
		return InfoLevel, nil
	case "warn", "warning":
		return WarnLevel, nil
	case "error":
		return ErrorLevel, nil
	case "fatal":
		return FatalLevel, nil
	}
	return InfoLevel, fmt.Errorf("unknown log level %q (trace, debug, info, warn, error, fatal)", levelStr)
}
