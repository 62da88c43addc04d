// Package source defines where configuration comes from. A Source reads a whole document
// (a ChangeSet of bytes in some format) and, where it can, watches for changes: each
// change is a new whole document, never a delta.
//
// The sources that ship with micro live in the sub-packages: env, file, flag, cli,
// memory and etcd.
package source

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/config/encoder"
	"github.com/seed-b3892490/micro/config/encoder/json"
)

// ErrWatcherStopped is returned by a Watcher's Next once Stop has been called.
var ErrWatcherStopped = errors.New("watcher stopped")

// Source is one origin of configuration.
type Source interface {
	// Read returns the whole current document.
	Read() (*ChangeSet, error)
	// Write replaces the document, where the source supports it.
	Write(*ChangeSet) error
	// Watch returns a watcher that yields each new version of the document.
	Watch() (Watcher, error)
	// String names the source ("file", "env", "etcd", ...).
	String() string
}

// ChangeSet is one version of a source's document.
type ChangeSet struct {
	Timestamp time.Time
	// Checksum is Sum() of Data, set by the source.
	Checksum string
	// Format names the encoding of Data: "json", "yaml", "toml", ...
	Format string
	// Source is the String() of the source that produced the change set.
	Source string
	Data   []byte
}

// Sum returns the hex MD5 of Data. It identifies a version; it is not a security measure.
func (c *ChangeSet) Sum() string {
	h := md5.Sum(c.Data)
	return hex.EncodeToString(h[:])
}

// Watcher yields new versions of a source's document.
type Watcher interface {
	// Next blocks until the document changes and returns its new version. After Stop it
	// returns ErrWatcherStopped. Other errors are transient: the watcher goes on, and the
	// next call may succeed.
	Next() (*ChangeSet, error)
	// Stop ends the watcher and releases what it holds; it unblocks a waiting Next.
	Stop() error
}

// Options configure a Source.
type Options struct {
	// Encoder encodes the data a source builds itself (env, flag, memory): JSON by default.
	Encoder encoder.Encoder
	// Context carries source-specific options.
	Context context.Context
	// Client is for sources that fetch their document from a service.
	Client client.Client
}

// Option sets a field of Options.
type Option func(o *Options)

// NewOptions returns Options with the defaults (JSON encoder, background context) and
// opts applied. Client stays nil unless set: a source that needs one uses
// client.DefaultClient when it is nil, so building options never makes a client.
func NewOptions(opts ...Option) Options {
	o := Options{Encoder: json.NewEncoder(), Context: context.Background()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Encoder == nil {
		o.Encoder = json.NewEncoder()
	}
	return o
}

// WithEncoder sets the encoder a source uses for the data it builds.
func WithEncoder(e encoder.Encoder) Option { return func(o *Options) { o.Encoder = e } }

// WithClient sets the client of sources that read from a service.
func WithClient(c client.Client) Option { return func(o *Options) { o.Client = c } }

// NewNoopWatcher returns a watcher that never yields a change: Next blocks until Stop,
// then returns ErrWatcherStopped. Sources whose data cannot change (env, flags) return it.
func NewNoopWatcher() (Watcher, error) {
	return &noopWatcher{done: make(chan struct{})}, nil
}

type noopWatcher struct {
	once sync.Once
	done chan struct{}
}

func (w *noopWatcher) Next() (*ChangeSet, error) {
	<-w.done
	return nil, ErrWatcherStopped
}

func (w *noopWatcher) Stop() error {
	w.once.Do(func() { close(w.done) })
	return nil
}
