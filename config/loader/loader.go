// Package loader reads configuration sources, merges them with a reader, and keeps the
// merged snapshot up to date as sources change. The memory sub-package is the
// implementation micro uses.
package loader

import (
	"context"

	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source"
)

// Loader loads sources and tracks their changes.
type Loader interface {
	// Close stops watching sources and ends every watcher.
	Close() error
	// Load reads the sources, adds them after those loaded before, and watches them.
	Load(...source.Source) error
	// Snapshot returns the current merged configuration.
	Snapshot() (*Snapshot, error)
	// Sync reads every source again and merges the results.
	Sync() error
	// Watch returns a watcher for the value at path.
	Watch(...string) (Watcher, error)
	String() string
}

// Watcher yields a snapshot each time the watched value changes.
type Watcher interface {
	// Next blocks until the watched value changes and returns the snapshot holding it.
	// A source that produced a document the reader cannot read is reported as an error
	// from Next; the watcher goes on and the configuration keeps its last good version.
	// After Stop, or once the loader is closed, Next returns source.ErrWatcherStopped.
	Next() (*Snapshot, error)
	Stop() error
}

// Snapshot is one merged version of the configuration.
type Snapshot struct {
	// ChangeSet is the merged document.
	ChangeSet *source.ChangeSet
	// Version increases with every new snapshot of one loader. It is a decimal number
	// (Unix nanoseconds, raised where needed to stay increasing); compare versions with
	// strconv.ParseUint, not as strings.
	Version string
}

// Options configure a Loader.
type Options struct {
	Reader  reader.Reader
	Context context.Context
	// Source lists sources the loader loads when it is made.
	Source []source.Source
	// WithWatcherDisabled turns off watching sources: the configuration changes only on
	// Load and Sync.
	WithWatcherDisabled bool
}

// Option sets a field of Options.
type Option func(o *Options)

// Copy returns a copy of s that shares nothing with it.
func Copy(s *Snapshot) *Snapshot {
	if s == nil {
		return nil
	}
	out := &Snapshot{Version: s.Version}
	if s.ChangeSet != nil {
		cs := *s.ChangeSet
		cs.Data = append([]byte(nil), s.ChangeSet.Data...)
		out.ChangeSet = &cs
	}
	return out
}
