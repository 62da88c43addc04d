// Package store is micro's key-value storage: records of a key, a binary value, metadata
// and an expiry, kept in tables grouped in databases, behind the Store interface of Go
// Micro v5.
//
// Three implementations live here:
//
//   - NewFileStore (the default, NewStore and DefaultStore): an embedded store on disk,
//     one bbolt file per database in a data directory (DirOption, default ~/micro/store),
//     crash safe: a Write that returned nil survives a crash of the process or the host.
//   - NewMemoryStore: records in the process's memory, for tests and caches.
//   - NewNoopStore: stores nothing.
//
// Backends for servers live in subpackages named after the product, and all of them pass
// the conformance suite in store/storetest, which pins down the behaviour described here.
//
// # The contract every Store keeps
//
// Scoping: a record lives in a table of a database. The store's Options give the database
// and table of calls that name none (both "micro" unless set with Database and Table);
// ReadFrom, WriteTo, DeleteFrom and ListFrom name others for one call. The same key in two
// tables, or in two databases, names two independent records.
//
// Reading: Read(key) returns the one record of that key, or exactly ErrNotFound (the
// sentinel itself, never wrapped, so that err == store.ErrNotFound holds). With
// ReadPrefix, ReadSuffix or both, key is a pattern: Read returns every record whose key
// starts with it, ends with it, or both, possibly none (an empty result and a nil error).
// List returns keys the same way with ListPrefix and ListSuffix.
//
// Order, offset and limit: Read with a pattern and List return records and keys sorted by
// key, comparing the keys' bytes (Go's string order). The filters (prefix, suffix, expiry)
// are applied first, then the offset skips that many matches, then the limit keeps at
// most that many (0 means no limit). Reads of one exact key ignore offset and limit.
//
// Expiry: a record written with WriteTTL(d) expires d after the write; WriteExpiry(t)
// expires it at t; without either the Record's own Expiry is its TTL. WriteTTL wins over
// WriteExpiry, and both over Record.Expiry. A TTL that is not positive counts as none;
// an expiry time in the past makes the write remove the key. Expired records are never
// returned by Read or List, and a returned Record's Expiry is the time it has left (0: it
// never expires).
//
// Values are bytes and round-trip unchanged, empty or large. Metadata values must be
// JSON-encodable (Write returns an error naming the record otherwise) and read back as
// JSON decodes them: strings, float64 numbers, booleans, nil, []interface{} and
// map[string]interface{}. Records are copied in and out: changing a Record after Write,
// or one that Read returned, changes nothing stored.
//
// Delete of a key that does not exist is not an error. Keys must not be empty.
//
// Creating: every Store here is also a Creator. Create writes a record only if its key
// has none (an expired record counts as none), in one atomic step: of many goroutines or
// processes creating the same key at once, exactly one succeeds and the others get
// ErrExists. It takes Write's options. A Store of another package may not be a Creator;
// Scope's store returns an error wrapping errors.ErrUnsupported for such a one.
//
// Every Store here is safe for concurrent use by many goroutines.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The errors of the package. Compare with ==, or errors.Is; Read returns ErrNotFound
// itself, never wrapped.
var (
	// ErrNotFound is returned by Read for a key that has no record (or only an expired
	// one).
	ErrNotFound = errors.New("not found")
	// ErrCorrupt is wrapped by the errors of a record that cannot be decoded (a damaged
	// file); the error names the record.
	ErrCorrupt = errors.New("corrupt record")
	// ErrExists is returned by Create for a key that already has a record (one that has
	// not expired); like ErrNotFound it is returned itself, never wrapped.
	ErrExists = errors.New("record exists")
)

// Creator is a Store that can write a record only where its key has none, atomically:
// the building block for a value that many processes must agree on (a generated key, a
// leader's claim). Every Store of micro is one; see the package documentation.
type Creator interface {
	// Create writes r as Write does, unless its key has a record that has not expired,
	// in which case it writes nothing and returns ErrExists.
	Create(r *Record, opts ...WriteOption) error
}

// DefaultStore is the store of the package-level functions Read, Write, Delete and List:
// a file store in the default directory (see NewFileStore). It opens nothing until it is
// first used. A program may replace it before use.
var DefaultStore Store = NewStore()

// Store is a key-value store of records in tables of databases. See the package
// documentation for the behaviour every implementation keeps.
type Store interface {
	// Init applies options to the store.
	Init(...Option) error
	// Options returns the store's options.
	Options() Options
	// Read returns the record of key, or with ReadPrefix/ReadSuffix every record whose key
	// matches; ErrNotFound for an exact key that has no record.
	Read(key string, opts ...ReadOption) ([]*Record, error)
	// Write stores a record, replacing the one of the same key.
	Write(r *Record, opts ...WriteOption) error
	// Delete removes the record of key; a key that has none is not an error.
	Delete(key string, opts ...DeleteOption) error
	// List returns the keys of a table, sorted, filtered by ListPrefix/ListSuffix.
	List(opts ...ListOption) ([]string, error)
	// Close releases what the store holds (files, connections).
	Close() error
	// String names the implementation ("file", "memory", "noop", …).
	String() string
}

// Record is a record of a store. Metadata values must be JSON-encodable; they read back
// as JSON decodes them. Expiry is, on Write, a TTL used when the write options set none,
// and on Read the time the record has left (0: it never expires).
type Record struct {
	// Metadata is data about the record: JSON-encodable values.
	Metadata map[string]interface{} `json:"metadata"`
	// Key is the record's key, unique in its table; never empty.
	Key string `json:"key"`
	// Value is the record's value, any bytes.
	Value []byte `json:"value"`
	// Expiry is the record's time to live.
	Expiry time.Duration `json:"expiry,omitempty"`

	// encodeErr is NewRecord's error encoding the value, returned by Write.
	encodeErr error
}

// NewRecord returns a record of key whose Value is val encoded as JSON. A val that cannot
// be encoded gives a record that Write refuses with the encoding error (and Encode of the
// same value returns it).
func NewRecord(key string, val interface{}) *Record {
	r := &Record{Key: key}
	if err := r.Encode(val); err != nil {
		r.encodeErr = err
	}
	return r
}

// Encode sets the record's Value to v encoded as JSON.
func (r *Record) Encode(v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode the value of %q: %w", r.Key, err)
	}
	r.Value, r.encodeErr = b, nil
	return nil
}

// Decode decodes the record's Value, JSON, into v (a pointer).
func (r *Record) Decode(v interface{}) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("store: decode the value of %q: %w", r.Key, err)
	}
	return nil
}

// NewStore returns the default store: a file store (NewFileStore).
func NewStore(opts ...Option) Store { return NewFileStore(opts...) }

// Read reads from DefaultStore.
func Read(key string, opts ...ReadOption) ([]*Record, error) {
	return DefaultStore.Read(key, opts...)
}

// Write writes to DefaultStore.
func Write(r *Record, opts ...WriteOption) error { return DefaultStore.Write(r, opts...) }

// Delete deletes from DefaultStore.
func Delete(key string, opts ...DeleteOption) error { return DefaultStore.Delete(key, opts...) }

// List lists the keys of DefaultStore.
func List(opts ...ListOption) ([]string, error) { return DefaultStore.List(opts...) }
