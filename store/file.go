package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-b3892490/micro/logger"
)

// DefaultDir is the data directory of file stores made without DirOption, read when such
// a store first opens a file. Empty, the default, means the directory micro/store in the
// user's home directory (os.UserHomeDir), or in os.TempDir() when the user has none. Set
// it, if at all, before the first use of a store.
var DefaultDir string

// The limits of the file store, bbolt's: a key of at most MaxFileKeySize bytes (the
// expiry index adds 8 to bbolt's 32 KiB), a record of at most 2 GiB.
const (
	// MaxFileKeySize is the longest key the file store takes, in bytes.
	MaxFileKeySize = bolt.MaxKeySize - 8
	// maxFileName is the longest database name, in bytes.
	maxFileName = 200
)

// NewFileStore returns the default store, kept on disk: one file per database,
// <dir>/<database>.db, in the data directory (DirOption, else DefaultDir, else
// ~/micro/store), each a bbolt database with the records of every table of the database.
// It opens nothing until it is used: the first write to a database creates its directory
// and file; reads of a database that has no file find nothing and create nothing.
//
// Durability: every Write and Delete is a transaction committed to disk (fsync) before it
// returns, so a call that returned nil survives a crash of the process or of the machine.
//
// Limits: keys of at most MaxFileKeySize bytes; database names that are file names (not
// empty, no '/', '\', NUL, not "." or "..", at most 200 bytes); records of at most 2 GiB.
//
// Files are shared: every file store of the process that uses the same file uses one open
// bbolt database (bbolt allows one process per file: another process waits a second for
// it, then gets an error). Expired records are deleted when a read meets them and by a
// sweep of each open file every minute (at most 10,000 per pass). Close releases the
// store's files (the last user closes a file and stops its sweep); a store used after
// Close opens them again. Safe for concurrent use.
func NewFileStore(opts ...Option) Store {
	s := &fileStore{dbs: map[string]*sharedDB{}}
	for _, f := range opts {
		f(&s.opts)
	}
	s.opts = s.opts.withDefaults()
	return s
}

type fileStore struct {
	mu   sync.RWMutex // held shared by each call, exclusively by Init and Close
	opts Options

	dbMu sync.Mutex
	dbs  map[string]*sharedDB // the files this store uses, by database
}

func (s *fileStore) String() string { return "file" }

func (s *fileStore) Init(opts ...Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := s.opts.dir
	for _, f := range opts {
		f(&s.opts)
	}
	s.opts = s.opts.withDefaults()
	if s.opts.dir != dir {
		return s.releaseAll()
	}
	return nil
}

func (s *fileStore) Options() Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

func (s *fileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.releaseAll()
}

// releaseAll releases every file of the store. Called with mu held exclusively.
func (s *fileStore) releaseAll() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	var errs []error
	for name, d := range s.dbs {
		errs = append(errs, d.release())
		delete(s.dbs, name)
	}
	return errors.Join(errs...)
}

// dir returns the data directory.
func (s *fileStore) dir() (string, error) {
	dir := s.opts.dir
	if dir == "" {
		dir = DefaultDir
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			home = os.TempDir()
		}
		dir = filepath.Join(home, "micro", "store")
	}
	return filepath.Abs(dir)
}

// db returns the open file of database. When create is false and the file does not
// exist, it returns nil. Called with mu held shared.
func (s *fileStore) db(database string, create bool) (*sharedDB, error) {
	if err := checkDatabase(database); err != nil {
		return nil, err
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if d := s.dbs[database]; d != nil {
		return d, nil
	}
	dir, err := s.dir()
	if err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data directory: %w", err)
		}
	}
	// one path per file, however the directory was named
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if !create && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	d, err := acquireDB(filepath.Join(real, database+".db"), create, s.opts.Logger)
	if err != nil || d == nil {
		return nil, err
	}
	s.dbs[database] = d
	return d, nil
}

// checkDatabase returns the error of a database name that cannot be a file name.
func checkDatabase(name string) error {
	switch {
	case name == "." || name == "..":
	case len(name) > maxFileName:
		return fmt.Errorf("store: database name of %d bytes: the file store takes at most %d", len(name), maxFileName)
	case strings.ContainsAny(name, "/\\\x00"):
	default:
		return nil
	}
	return fmt.Errorf("store: database name %q is not a file name (no '/', '\\', NUL, \".\" or \"..\")", name)
}

// checkKey returns the error of a key the file store cannot hold.
func checkKey(key string) error {
	switch {
	case key == "":
		return errEmptyKey
	case len(key) > MaxFileKeySize:
		return fmt.Errorf("store: key of %d bytes: the file store takes at most %d", len(key), MaxFileKeySize)
	}
	return nil
}

// corrupt returns the error of a record that cannot be decoded.
func corrupt(database, table string, key []byte, err error) error {
	return fmt.Errorf("store: record %q in table %q of database %q: %w", key, table, database, err)
}

func (s *fileStore) Write(r *Record, opts ...WriteOption) error { return s.write(r, opts, false) }

// Create writes r unless its key has a live record (ErrExists), in one transaction of
// the database's file: other processes using the file wait for it.
func (s *fileStore) Create(r *Record, opts ...WriteOption) error { return s.write(r, opts, true) }

// write is Write, or Create when create is set.
func (s *fileStore) write(r *Record, opts []WriteOption, create bool) error {
	if err := checkRecord(r); err != nil {
		return err
	}
	if err := checkKey(r.Key); err != nil {
		return err
	}
	var o WriteOptions
	for _, f := range opts {
		f(&o)
	}
	md, err := encodeMetadata(r.Key, r.Metadata)
	if err != nil {
		return err
	}
	now := time.Now()
	at, expired := expiryOf(r, o, now)
	enc := encodeRecord(r.Value, md, at)
	if len(enc) > bolt.MaxValueSize {
		return fmt.Errorf("store: record %q of %d bytes: the file store takes at most %d", r.Key, len(enc), bolt.MaxValueSize)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	database, table := scopeOf(s.opts, o.Database, o.Table)
	if table == "" || len(table) > bolt.MaxKeySize-2 {
		return fmt.Errorf("store: table name of %d bytes: the file store takes 1 to %d", len(table), bolt.MaxKeySize-2)
	}
	d, err := s.db(database, !expired)
	if err != nil || d == nil { // an expired record written where there is no file: nothing to do
		return err
	}
	key := []byte(r.Key)
	err = d.update(func(tx *bolt.Tx) error {
		var data, idx *bolt.Bucket
		if expired {
			if data, idx = tx.Bucket(dataBucket(table)), tx.Bucket(indexBucket(table)); data == nil {
				return nil
			}
		} else {
			var err error
			if data, err = tx.CreateBucketIfNotExists(dataBucket(table)); err != nil {
				return err
			}
			if idx, err = tx.CreateBucketIfNotExists(indexBucket(table)); err != nil {
				return err
			}
		}
		old := data.Get(key)
		if create && old != nil {
			// a record that does not decode counts as there: Create replaces nothing
			if oldAt, err := decodeExpiry(old); err != nil || !isExpired(oldAt, now) {
				return ErrExists
			}
		}
		if old != nil && idx != nil {
			// a corrupt old record is replaced all the same
			if oldAt, err := decodeExpiry(old); err == nil && oldAt != 0 {
				if err := idx.Delete(indexKey(oldAt, key)); err != nil {
					return err
				}
			}
		}
		if expired {
			return data.Delete(key)
		}
		if err := data.Put(key, enc); err != nil {
			return err
		}
		if at != 0 {
			return idx.Put(indexKey(at, key), nil)
		}
		return nil
	})
	if err == ErrExists {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: write %q to table %q of database %q: %w", r.Key, table, database, err)
	}
	return nil
}

func (s *fileStore) Read(key string, opts ...ReadOption) ([]*Record, error) {
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	database, table := scopeOf(s.opts, o.Database, o.Table)
	d, err := s.db(database, false)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if !o.Prefix && !o.Suffix {
		if d == nil || key == "" {
			return nil, ErrNotFound
		}
		var rec *Record
		var expired bool
		err := d.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(dataBucket(table))
			if b == nil {
				return nil
			}
			v := b.Get([]byte(key))
			if v == nil {
				return nil
			}
			fr, err := decodeRecord(v)
			if err != nil {
				return corrupt(database, table, []byte(key), err)
			}
			if isExpired(fr.expiresAt, now) {
				expired = true
				return nil
			}
			rec, err = fr.record(key, now)
			if err != nil {
				return corrupt(database, table, []byte(key), err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if expired {
			s.reap(d, database, table, []string{key}, now)
		}
		if rec == nil {
			return nil, ErrNotFound
		}
		return []*Record{rec}, nil
	}
	recs := []*Record{}
	if d == nil {
		return recs, nil
	}
	expired, err := scanFile(d.db, database, table, readQuery(key, o), now, true, func(k []byte, fr fileRecord) error {
		r, err := fr.record(string(k), now)
		if err != nil {
			return corrupt(database, table, k, err)
		}
		recs = append(recs, r)
		return nil
	})
	s.reap(d, database, table, expired, now)
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// record returns a copy of the record, as Read returns it. Its errors wrap ErrCorrupt.
func (fr fileRecord) record(key string, now time.Time) (*Record, error) {
	md, err := decodeMetadata(fr.metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	v := make([]byte, len(fr.value))
	copy(v, fr.value)
	return &Record{Key: key, Value: v, Metadata: md, Expiry: remaining(fr.expiresAt, now)}, nil
}

// reapMax bounds how many expired records one read deletes; the sweep gets the rest.
const reapMax = 1000

// scanFile calls fn, in key order, for each live record of table that is part of the
// query's result, decoding the whole record when full is true and only its expiry
// otherwise. The slices fn gets are valid during the call only. It returns the keys of
// expired records it met (at most reapMax).
func scanFile(db *bolt.DB, database, table string, q query, now time.Time, full bool, fn func([]byte, fileRecord) error) (expired []string, err error) {
	prefix, suffix := []byte(q.prefix), []byte(q.suffix)
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(dataBucket(table))
		if b == nil {
			return nil
		}
		p := pager{q: q}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && !p.full(); k, v = c.Next() {
			if !bytes.HasSuffix(k, suffix) {
				continue
			}
			var fr fileRecord
			var err error
			if full {
				fr, err = decodeRecord(v)
			} else {
				fr.expiresAt, err = decodeExpiry(v)
			}
			if err != nil {
				return corrupt(database, table, k, err)
			}
			if isExpired(fr.expiresAt, now) {
				if len(expired) < reapMax {
					expired = append(expired, string(k))
				}
				continue
			}
			if p.take() {
				if err := fn(k, fr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return expired, err
}

// reap deletes the records of keys that are still expired at now: the expired records a
// read met. It reports a failure to the log only: the read itself succeeded.
func (s *fileStore) reap(d *sharedDB, database, table string, keys []string, now time.Time) {
	if len(keys) == 0 {
		return
	}
	err := d.update(func(tx *bolt.Tx) error {
		data, idx := tx.Bucket(dataBucket(table)), tx.Bucket(indexBucket(table))
		if data == nil {
			return nil
		}
		for _, k := range keys {
			key := []byte(k)
			v := data.Get(key)
			if v == nil {
				continue
			}
			at, err := decodeExpiry(v)
			if err != nil || !isExpired(at, now) {
				continue
			}
			if err := data.Delete(key); err != nil {
				return err
			}
			if idx != nil {
				if err := idx.Delete(indexKey(at, key)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.opts.Logger.Logf(logger.WarnLevel, "store: delete expired records of table %q of database %q: %v", table, database, err)
	}
}

func (s *fileStore) Delete(key string, opts ...DeleteOption) error {
	var o DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	database, table := scopeOf(s.opts, o.Database, o.Table)
	d, err := s.db(database, false)
	if err != nil || d == nil || key == "" || len(key) > MaxFileKeySize {
		return err
	}
	k := []byte(key)
	err = d.update(func(tx *bolt.Tx) error {
		data := tx.Bucket(dataBucket(table))
		if data == nil {
			return nil
		}
		v := data.Get(k)
		if v == nil {
			return nil
		}
		if at, err := decodeExpiry(v); err == nil && at != 0 {
			if idx := tx.Bucket(indexBucket(table)); idx != nil {
				if err := idx.Delete(indexKey(at, k)); err != nil {
					return err
				}
			}
		}
		return data.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("store: delete %q from table %q of database %q: %w", key, table, database, err)
	}
	return nil
}

func (s *fileStore) List(opts ...ListOption) ([]string, error) {
	var o ListOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	database, table := scopeOf(s.opts, o.Database, o.Table)
	d, err := s.db(database, false)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	if d == nil {
		return keys, nil
	}
	now := time.Now()
	expired, err := scanFile(d.db, database, table, listQuery(o), now, false, func(k []byte, _ fileRecord) error {
		keys = append(keys, string(k))
		return nil
	})
	s.reap(d, database, table, expired, now)
	if err != nil {
		return nil, err
	}
	return keys, nil
}
