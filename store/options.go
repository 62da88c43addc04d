package store

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/logger"
)

// The database and table of a store given none.
const (
	// DefaultDatabase is the database of a store whose options name none: "micro".
	DefaultDatabase = "micro"
	// DefaultTable is the table of a store whose options name none: "micro".
	DefaultTable = "micro"
)

// Options configure a store. Options only set fields; the store applies them.
type Options struct {
	// Context carries backend-specific settings.
	Context context.Context
	// Client is a client for stores that call a service.
	Client client.Client
	// Logger receives the store's rare reports (a failed background sweep). Default
	// logger.DefaultLogger.
	Logger logger.Logger
	// Database is the database of calls that name none. Default "micro".
	Database string
	// Table is the table of calls that name none. Default "micro".
	Table string
	// Nodes are the addresses of the backend's servers, for backends that have some.
	Nodes []string

	// dir is the file store's data directory (DirOption).
	dir string
}

// Option sets a field of Options.
type Option func(o *Options)

// Nodes sets the addresses of the backend's servers.
func Nodes(a ...string) Option { return func(o *Options) { o.Nodes = a } }

// Database sets the database of calls that name none.
func Database(db string) Option { return func(o *Options) { o.Database = db } }

// Table sets the table of calls that name none.
func Table(t string) Option { return func(o *Options) { o.Table = t } }

// WithContext sets the options' context.
func WithContext(c context.Context) Option { return func(o *Options) { o.Context = c } }

// WithClient sets the client of stores that call a service.
func WithClient(c client.Client) Option { return func(o *Options) { o.Client = c } }

// WithLogger sets the store's logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// DirOption sets the file store's data directory, where it keeps one file per database
// (<dir>/<database>.db). Default: DefaultDir when set, else ~/micro/store. Other stores
// ignore it.
func DirOption(dir string) Option { return func(o *Options) { o.dir = dir } }

// withDefaults returns o with the default database and table filled in.
func (o Options) withDefaults() Options {
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Logger == nil {
		o.Logger = logger.DefaultLogger
	}
	return o
}

// ReadOptions configure one Read.
type ReadOptions struct {
	// Database and Table name where to read; empty means the store's.
	Database, Table string
	// Prefix makes the key a prefix: every record whose key starts with it.
	Prefix bool
	// Suffix makes the key a suffix: every record whose key ends with it.
	Suffix bool
	// Limit keeps at most this many records of a Prefix or Suffix read (0: no limit).
	Limit uint
	// Offset skips this many records of a Prefix or Suffix read.
	Offset uint
}

// ReadOption sets a field of ReadOptions.
type ReadOption func(r *ReadOptions)

// ReadFrom reads from table of database.
func ReadFrom(database, table string) ReadOption {
	return func(r *ReadOptions) { r.Database, r.Table = database, table }
}

// ReadPrefix reads every record whose key starts with the key given to Read.
func ReadPrefix() ReadOption { return func(r *ReadOptions) { r.Prefix = true } }

// ReadSuffix reads every record whose key ends with the key given to Read.
func ReadSuffix() ReadOption { return func(r *ReadOptions) { r.Suffix = true } }

// ReadLimit keeps at most l records of a prefix or suffix read.
func ReadLimit(l uint) ReadOption { return func(r *ReadOptions) { r.Limit = l } }

// ReadOffset skips the first o matching records of a prefix or suffix read.
func ReadOffset(o uint) ReadOption { return func(r *ReadOptions) { r.Offset = o } }

// WriteOptions configure one Write.
type WriteOptions struct {
	// Expiry is when the record expires (zero: see TTL).
	Expiry time.Time
	// Database and Table name where to write; empty means the store's.
	Database, Table string
	// TTL is how long the record lives; it wins over Expiry.
	TTL time.Duration
}

// WriteOption sets a field of WriteOptions.
type WriteOption func(w *WriteOptions)

// WriteTo writes to table of database.
func WriteTo(database, table string) WriteOption {
	return func(w *WriteOptions) { w.Database, w.Table = database, table }
}

// WriteExpiry makes the record expire at t (a time in the past removes the key).
func WriteExpiry(t time.Time) WriteOption { return func(w *WriteOptions) { w.Expiry = t } }

// WriteTTL makes the record expire d after the write; it wins over WriteExpiry.
func WriteTTL(d time.Duration) WriteOption { return func(w *WriteOptions) { w.TTL = d } }

// DeleteOptions configure one Delete.
type DeleteOptions struct {
	// Database and Table name where to delete; empty means the store's.
	Database, Table string
}

// DeleteOption sets a field of DeleteOptions.
type DeleteOption func(d *DeleteOptions)

// DeleteFrom deletes from table of database.
func DeleteFrom(database, table string) DeleteOption {
	return func(d *DeleteOptions) { d.Database, d.Table = database, table }
}

// ListOptions configure one List.
type ListOptions struct {
	// Database and Table name what to list; empty means the store's.
	Database, Table string
	// Prefix keeps the keys that start with it.
	Prefix string
	// Suffix keeps the keys that end with it.
	Suffix string
	// Limit keeps at most this many keys (0: no limit).
	Limit uint
	// Offset skips this many matching keys.
	Offset uint
}

// ListOption sets a field of ListOptions.
type ListOption func(l *ListOptions)

// ListFrom lists table of database.
func ListFrom(database, table string) ListOption {
	return func(l *ListOptions) { l.Database, l.Table = database, table }
}

// ListPrefix keeps the keys that start with p.
func ListPrefix(p string) ListOption { return func(l *ListOptions) { l.Prefix = p } }

// ListSuffix keeps the keys that end with s.
func ListSuffix(s string) ListOption { return func(l *ListOptions) { l.Suffix = s } }

// ListLimit keeps at most l keys.
func ListLimit(l uint) ListOption { return func(o *ListOptions) { o.Limit = l } }

// ListOffset skips the first o matching keys.
func ListOffset(o uint) ListOption { return func(l *ListOptions) { l.Offset = o } }
