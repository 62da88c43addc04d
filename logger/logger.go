// Package logger is micro's logging interface, with Go Micro's API, backed by log/slog.
package logger

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
