// Package config loads application configuration from any number of sources (the
// environment, files, flags, memory, etcd), merges them, and keeps the result up to date
// while the sources change, without a restart.
//
// Sources merge in the order they are loaded: a later source overrides an earlier one
// key by key, and maps merge all the way down. Get returns the value at a path with
// typed accessors that take a default:
//
//	conf, _ := config.NewConfig()
//	_ = conf.Load(file.NewSource(file.WithPath("config.yaml")), env.NewSource())
//	v, _ := conf.Get("database", "address")
//	addr := v.String("localhost:5432")
//
// Reads are safe from any number of goroutines while the configuration reloads. Every
// Get, Scan, Map or Bytes reads one whole version: it never sees half an update. To read
// several keys from one version, Scan them together (conf.Get("database") then Scan into
// a struct).
//
// A source change that cannot be read (malformed JSON, YAML or TOML) is refused: the
// configuration keeps its last good version, the error is logged, and every Watcher's
// Next returns it once. The next good change is taken as usual.
//
// String values may reference environment variables: "${DB_PASSWORD}" is replaced with
// the variable's value when the source is loaded, and "${PORT:-8080}" falls back to
// 8080 when PORT is unset (see reader.ExpandEnv).
package config

import (
	"context"

	"github.com/seed-b3892490/micro/config/loader"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/file"
	"github.com/seed-b3892490/micro/logger"
)

// Config is a merged, hot-reloading view of configuration sources.
type Config interface {
	// Values reads the current version: Bytes, Get, Set, Del, Map, Scan. Set and Del
	// change only this copy; the next change from a source replaces it.
	reader.Values
	// Init applies options.
	Init(opts ...Option) error
	// Options returns the current options.
	Options() Options
	// Close stops watching sources, ends every Watcher, and waits for the goroutines the
	// config started. The last values stay readable.
	Close() error
	// Load reads sources, adds them after those loaded before, and watches them for
	// changes. A source that fails to read is still watched, so that it is taken when it
	// becomes readable; Load returns the error.
	Load(source ...source.Source) error
	// Sync reads every source again.
	Sync() error
	// Watch returns a Watcher for the value at path.
	Watch(path ...string) (Watcher, error)
}

// Watcher yields the value at a path each time it changes.
type Watcher interface {
	// Next blocks until the watched value changes and returns it. It returns an error
	// when a source produced a change that could not be read; the watcher goes on after
	// that. After Stop or Close it returns source.ErrWatcherStopped.
	Next() (reader.Value, error)
	// Stop ends the watcher and unblocks Next.
	Stop() error
}

// Options configure a Config.
type Options struct {
	Loader  loader.Loader
	Reader  reader.Reader
	Context context.Context
	// Source lists the sources NewConfig loads.
	Source []source.Source
	// WithWatcherDisabled turns off hot reload: values change only on Load and Sync.
	WithWatcherDisabled bool
	// Logger receives source errors (malformed updates, failed watches). Default
	// logger.DefaultLogger.
	Logger logger.Logger
}

// Option sets a field of Options.
type Option func(o *Options)

// WithLoader sets the loader (default loader/memory).
func WithLoader(l loader.Loader) Option { return func(o *Options) { o.Loader = l } }

// WithSource adds a source NewConfig loads.
func WithSource(s source.Source) Option {
	return func(o *Options) { o.Source = append(o.Source, s) }
}

// WithReader sets the reader (default reader/json, which decodes JSON, YAML and TOML).
func WithReader(r reader.Reader) Option { return func(o *Options) { o.Reader = r } }

// WithWatcherDisabled turns off hot reload.
func WithWatcherDisabled() Option { return func(o *Options) { o.WithWatcherDisabled = true } }

// WithLogger sets the logger that receives source errors.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// DefaultConfig is the config the package-level functions use. Making it starts nothing:
// goroutines start only once a source is loaded.
var DefaultConfig, _ = NewConfig()

// Bytes returns DefaultConfig's whole document.
func Bytes() []byte { return DefaultConfig.Bytes() }

// Map returns a copy of DefaultConfig's document.
func Map() map[string]interface{} { return DefaultConfig.Map() }

// Scan decodes DefaultConfig's document into v.
func Scan(v interface{}) error { return DefaultConfig.Scan(v) }

// Sync reads DefaultConfig's sources again.
func Sync() error { return DefaultConfig.Sync() }

// Get returns the value at path in DefaultConfig.
func Get(path ...string) (reader.Value, error) { return DefaultConfig.Get(path...) }

// Load adds sources to DefaultConfig.
func Load(source ...source.Source) error { return DefaultConfig.Load(source...) }

// Watch watches a path of DefaultConfig.
func Watch(path ...string) (Watcher, error) { return DefaultConfig.Watch(path...) }

// LoadFile adds the file at path to DefaultConfig (its format taken from its extension).
func LoadFile(path string) error {
	return Load(file.NewSource(file.WithPath(path)))
}
