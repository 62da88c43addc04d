// Package redis is a store.Store kept in a Redis server, through go-redis
// (github.com/redis/go-redis/v9). Link it into a program's --store flag with
//
//	cmd.DefaultStores["redis"] = redis.NewStore
//
// and name the server with --store_address (store.Nodes): a URL such as
// redis://user:password@host:6379/0 (rediss:// for TLS, unix:///path/redis.sock), or
// host:port; default DefaultNode. One server is used: Redis Cluster and Sentinel are not
// supported.
//
// # Layout
//
// Each record is one Redis string whose key is <database>:<table>:<key>, with '%' and ':'
// in the database and table names percent-encoded (%25, %3A) so that no key of one table
// can be taken for a key of another, and the record's key unchanged after them: keys are
// any bytes (NUL and invalid UTF-8 included). The string holds the value and the
// metadata together: a format byte, the length of the metadata, the metadata as a JSON
// object, then the value's bytes. Values may be as large as Redis allows a string (512
// MiB by default).
//
// # Expiry
//
// Expiry is Redis's own: a record with a TTL is written with SET … PX, so Redis removes
// it on time and never returns it after; an expiry time (store.WriteExpiry) becomes the
// TTL left until it, measured with the caller's clock, so that the clocks of the caller
// and the server need not agree. TTLs are whole milliseconds, rounded up. A returned
// Record's Expiry is the key's PTTL, read in the same MULTI/EXEC transaction as its value.
//
// # Listing
//
// List and Read with a pattern walk the keys with SCAN and a MATCH pattern of the
// table's prefix followed by the caller's prefix, its glob metacharacters escaped; the
// store never sends KEYS, which blocks the server. SCAN may return a key twice and in no
// order: the keys are deduplicated, filtered again, and sorted by their bytes, then the
// offset and the limit are applied. A pattern Read then fetches the records, in batches,
// skipping those that expired or were deleted meanwhile, so that offset and limit count
// live records only. Redis keeps no order of keys, so a List costs one pass over every
// key of the Redis database (SCAN filters by MATCH on the server, but walks them all),
// however few the table holds; a suffix query with no prefix matches the suffix on the
// server (MATCH <table prefix>*<suffix>) on that same pass, and one with a prefix matches
// the suffix in the store after the prefix pass. A store for big tables that lists often
// belongs in a database with an index (store/postgres).
//
// # Time bounds and failures
//
// Every call is bounded by the store's Timeout (default DefaultTimeout, 5 s) and ends
// early when the context of store.WithContext is done. A server that is down, hung or
// unreachable gives an error within that bound that names the operation and the server,
// and wraps ErrUnavailable (errors.Is) as well as the cause (context.DeadlineExceeded for
// a timeout). A connection refused fails within milliseconds, without waiting for the
// Timeout. Once the server answers again, the
// next call works: pooled connections that died are replaced, and a client whose dials
// failed is replaced by a new one, so no back-off of go-redis delays the recovery. Read of
// a missing key returns store.ErrNotFound itself. Commands are retried (twice, by
// go-redis) only after a network error; every command the store sends may be repeated
// without harm. go-redis reports failed dials on its own logger, which a program sets
// with goredis.SetLogger.
//
// The store connects on first use. Init applies options and closes the connections, so
// that the next call uses the new ones; Close closes them, after the calls in progress,
// and a store used after Close connects again. A store is safe for concurrent use.
package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

// ErrUnavailable is wrapped by the errors of calls that could not reach the server: it
// refused the connection, did not answer within the Timeout, closed the connection, or
// is loading its data set. Compare with errors.Is.
var ErrUnavailable = errors.New("redis server unavailable")

// The sizes of the store's batches.
const (
	// scanCount is the COUNT hint of each SCAN: about how many keys the server walks per
	// round trip. Larger counts list faster (10,000 halves the time of a List over
	// 100,000 keys) but hold the server longer on each step, delaying its other clients.
	scanCount = 1000
	// fetchBatch is how many records a pattern Read fetches per round trip.
	fetchBatch = 128
)

// NewStore returns a store kept in a Redis server. Options: store.Nodes (one server,
// default DefaultNode), store.Database and store.Table (default "micro"), store.WithContext
// (a context whose end ends every call), Timeout, ClientOptions and Hooks. It connects on
// first use; an option that cannot be used (a bad address, several nodes) makes every call
// return an error saying so. See the package documentation.
func NewStore(opts ...store.Option) store.Store {
	s := &redisStore{}
	s.apply(opts)
	return s
}

type redisStore struct {
	mu     sync.RWMutex // held shared by each call, exclusively by Init and Close
	opts   store.Options
	cfg    config
	cfgErr error

	cMu sync.Mutex
	cur *client // nil until used, and after Init, Close or a failed dial
}

// client is a go-redis client and the calls using it. A client retired after a failed
// dial is closed when its last call ends.
type client struct {
	rdb     *goredis.Client
	refs    int
	retired bool
}

// apply applies opts and works out the configuration. Called with mu held exclusively
// (or before the store is shared).
func (s *redisStore) apply(opts []store.Option) {
	for _, f := range opts {
		f(&s.opts)
	}
	if s.opts.Database == "" {
		s.opts.Database = store.DefaultDatabase
	}
	if s.opts.Table == "" {
		s.opts.Table = store.DefaultTable
	}
	if s.opts.Context == nil {
		s.opts.Context = context.Background()
	}
	if s.opts.Logger == nil {
		s.opts.Logger = logger.DefaultLogger
	}
	s.cfg, s.cfgErr = parseConfig(s.opts)
}

func (s *redisStore) String() string { return "redis" }

func (s *redisStore) Init(opts ...store.Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(opts)
	s.drop()
	return s.cfgErr
}

func (s *redisStore) Options() store.Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

// Close closes the store's connections, once the calls in progress have ended. The store
// stays usable: the next call connects again.
func (s *redisStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drop()
}

// drop closes the current client. Called with mu held exclusively: no call is using it.
func (s *redisStore) drop() error {
	s.cMu.Lock()
	c := s.cur
	s.cur = nil
	s.cMu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.rdb.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("store/redis: close the connections to %s: %w", s.cfg.addr, err)
	}
	return nil
}

// acquire returns the current client, made when there is none, for one call. Called with
// mu held shared.
func (s *redisStore) acquire() *client {
	s.cMu.Lock()
	defer s.cMu.Unlock()
	if s.cur == nil {
		rdb := goredis.NewClient(s.cfg.ropts)
		for _, h := range s.cfg.hooks {
			rdb.AddHook(h)
		}
		s.cur = &client{rdb: rdb}
	}
	s.cur.refs++
	return s.cur
}

// release ends a call's use of c. A call that failed to dial retires c: go-redis stops
// dialling for a second at a time once a pool has seen many failed dials, which would
// delay the recovery after an outage, so the next call gets a new client instead.
func (s *redisStore) release(c *client, err error) {
	s.cMu.Lock()
	c.refs--
	if err != nil && isDialError(err) && s.cur == c {
		s.cur = nil
		c.retired = true
	}
	closeIt := c.retired && c.refs == 0
	s.cMu.Unlock()
	if closeIt {
		_ = c.rdb.Close()
	}
}

// do runs fn with a client and a context bounded by the Timeout, and returns its error:
// store.ErrNotFound as it is, others wrapped with what(), the server and, for failures to
// reach it, ErrUnavailable. Called with mu held shared.
func (s *redisStore) do(what func() string, fn func(ctx context.Context, rdb *goredis.Client) error) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	c := s.acquire()
	ctx, cancel := context.WithTimeout(s.opts.Context, s.cfg.timeout)
	err := fn(ctx, c.rdb)
	timedOut := err != nil && s.opts.Context.Err() == nil && (ctx.Err() == context.DeadlineExceeded || isTimeout(err))
	cancel()
	s.release(c, err)
	if timedOut {
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		err = fmt.Errorf("no answer within the Timeout of %s: %w", s.cfg.timeout, err)
	}
	switch {
	case err == nil || err == store.ErrNotFound:
		return err
	case errors.Is(err, store.ErrCorrupt):
		return err // names the record already
	case s.opts.Context.Err() != nil:
		// the store's context ended (its own deadline or cancel), not the server
		return fmt.Errorf("store/redis: %s at %s: %w", what(), s.cfg.addr, err)
	case isUnavailable(err):
		return fmt.Errorf("store/redis: %s at %s: %w: %w", what(), s.cfg.addr, ErrUnavailable, err)
	}
	return fmt.Errorf("store/redis: %s at %s: %w", what(), s.cfg.addr, err)
}

// isTimeout reports whether err is a network timeout (a socket deadline, which the store
// sets to the call's).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isDialError reports whether err is a failure to open a connection.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// isUnavailable reports whether err says the server could not be reached or used.
func isUnavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller's context, not the server
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted):
		return true
	}
	for _, prefix := range []string{"LOADING", "MASTERDOWN", "BUSY", "TRYAGAIN"} {
		if goredis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// scope returns the database and table of a call: the ones it names, else the store's.
// Called with mu held.
func (s *redisStore) scope(database, table string) (string, string) {
	if database == "" {
		database = s.opts.Database
	}
	if table == "" {
		table = s.opts.Table
	}
	return database, table
}

func (s *redisStore) Write(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, false)
}

// Create writes r with SET NX, unless its key has a record (store.ErrExists); Redis
// removes expired keys itself, so an expired record is none. A Create whose reply was
// lost, and that the client sent again, finds its own value there: that counts as
// created (two creators of byte-identical records both succeed).
func (s *redisStore) Create(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, true)
}

// write is Write, or Create when create is set.
func (s *redisStore) write(r *store.Record, opts []store.WriteOption, create bool) error {
	if err := store.CheckRecord(r); err != nil {
		return fmt.Errorf("store/redis: %w", err)
	}
	var o store.WriteOptions
	for _, f := range opts {
		f(&o)
	}
	md, err := encodeMetadata(r.Key, r.Metadata)
	if err != nil {
		return err
	}
	ttl, remove := ttlOf(r, o, time.Now())
	blob := encodeRecord(r.Value, md)

	s.mu.RLock()
	defer s.mu.RUnlock()
	db, table := s.scope(o.Database, o.Table)
	rkey := tablePrefix(db, table) + r.Key
	what := func() string { return fmt.Sprintf("Write %q to %s/%s", r.Key, db, table) }
	if !create {
		return s.do(what, func(ctx context.Context, rdb *goredis.Client) error {
			if remove {
				return rdb.Del(ctx, rkey).Err()
			}
			return rdb.Set(ctx, rkey, blob, ttl).Err()
		})
	}
	what = func() string { return fmt.Sprintf("Create %q in %s/%s", r.Key, db, table) }
	exists := false
	err = s.do(what, func(ctx context.Context, rdb *goredis.Client) error {
		if remove {
			n, err := rdb.Exists(ctx, rkey).Result()
			exists = n > 0
			return err
		}
		// a key that expires or is deleted between the two commands is tried again
		for range 3 {
			set, err := rdb.SetNX(ctx, rkey, blob, ttl).Result()
			if err != nil || set {
				return err
			}
			cur, err := rdb.Get(ctx, rkey).Bytes()
			if err == goredis.Nil {
				continue
			}
			exists = !bytes.Equal(cur, blob)
			return err
		}
		exists = true
		return nil
	})
	if err == nil && exists {
		return store.ErrExists
	}
	return err
}

// ttlOf returns the TTL of a record written at now with o, in whole milliseconds rounded
// up (0: none), or remove for an expiry time that has passed: WriteTTL first, then
// WriteExpiry, then the record's own Expiry. TTLs that are not positive count as none.
func ttlOf(r *store.Record, o store.WriteOptions, now time.Time) (ttl time.Duration, remove bool) {
	switch {
	case o.TTL > 0:
		return ceilMillis(o.TTL), false
	case !o.Expiry.IsZero():
		left := o.Expiry.Sub(now)
		if left <= 0 {
			return 0, true
		}
		return ceilMillis(left), false
	case r.Expiry > 0:
		return ceilMillis(r.Expiry), false
	}
	return 0, false
}

// ceilMillis rounds d up to a whole number of milliseconds.
func ceilMillis(d time.Duration) time.Duration {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d
}

func (s *redisStore) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	var o store.ReadOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, table := s.scope(o.Database, o.Table)
	ns := tablePrefix(db, table)
	if !o.Prefix && !o.Suffix {
		if s.cfgErr != nil {
			return nil, s.cfgErr
		}
		if key == "" {
			return nil, store.ErrNotFound // no record has the empty key
		}
		var recs []*store.Record
		err := s.do(func() string { return fmt.Sprintf("Read %q from %s/%s", key, db, table) },
			func(ctx context.Context, rdb *goredis.Client) error {
				var err error
				recs, err = fetch(ctx, rdb, db, table, []string{key}, 0, 0)
				if err == nil && len(recs) == 0 {
					return store.ErrNotFound
				}
				return err
			})
		if err != nil {
			return nil, err
		}
		return recs, nil
	}
	var prefix, suffix string
	if o.Prefix {
		prefix = key
	}
	if o.Suffix {
		suffix = key
	}
	recs := []*store.Record{}
	err := s.do(func() string { return fmt.Sprintf("Read of the keys matching %q in %s/%s", key, db, table) },
		func(ctx context.Context, rdb *goredis.Client) error {
			keys, err := scanKeys(ctx, rdb, ns, prefix, suffix)
			if err != nil {
				return err
			}
			got, err := fetch(ctx, rdb, db, table, keys, o.Offset, o.Limit)
			if err == nil {
				recs = got
			}
			return err
		})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// fetch returns the records of keys (sorted) of a table that still exist, skipping the
// first offset of them and keeping at most limit (0: all). Each batch is one MULTI/EXEC
// of GET and PTTL per key, so a value and its TTL are read together.
func fetch(ctx context.Context, rdb *goredis.Client, db, table string, keys []string, offset, limit uint) ([]*store.Record, error) {
	ns := tablePrefix(db, table)
	out := []*store.Record{}
	var skipped uint
	type pair struct {
		get *goredis.StringCmd
		ttl *goredis.DurationCmd
	}
	cmds := make([]pair, 0, min(len(keys), fetchBatch))
	for start := 0; start < len(keys); {
		n := fetchBatch
		if limit > 0 { // no more than the page still needs, if every record is there
			if need := (offset - skipped) + (limit - uint(len(out))); need < uint(n) && need >= offset-skipped {
				n = int(need)
			}
		}
		batch := keys[start:min(start+n, len(keys))]
		start += len(batch)
		cmds = cmds[:0]
		_, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range batch {
				cmds = append(cmds, pair{p.Get(ctx, ns+k), p.PTTL(ctx, ns+k)})
			}
			return nil
		})
		if err != nil && err != goredis.Nil {
			return nil, err
		}
		for i, c := range cmds {
			b, err := c.get.Bytes()
			if err == goredis.Nil {
				continue // deleted or expired since it was listed
			}
			if err != nil {
				return nil, err
			}
			ttl, err := c.ttl.Result()
			if err != nil {
				return nil, err
			}
			if ttl == -2 {
				continue // not reached: read in one transaction with the value
			}
			if skipped < offset {
				skipped++
				continue
			}
			value, md, err := decodeRecord(b)
			if err != nil {
				return nil, fmt.Errorf("store/redis: record %q in table %q of database %q: %w", batch[i], table, db, err)
			}
			r := &store.Record{Key: batch[i], Value: value, Metadata: md}
			switch {
			case ttl == -1:
			case ttl < time.Millisecond:
				r.Expiry = time.Millisecond // under 1 ms left: PTTL says 0
			default:
				r.Expiry = ttl
			}
			out = append(out, r)
			if limit > 0 && uint(len(out)) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// scanKeys returns the keys, without ns, of the Redis keys that start with ns+prefix and
// end with suffix, sorted and without repeats, found with SCAN.
func scanKeys(ctx context.Context, rdb *goredis.Client, ns, prefix, suffix string) ([]string, error) {
	pattern := globEscape(ns+prefix) + "*"
	if prefix == "" {
		// with a prefix too, the suffix may overlap it ("ab" has prefix "ab" and suffix
		// "b"), which a glob cannot say: it is matched below
		pattern += globEscape(suffix)
	}
	seen := map[string]struct{}{}
	var cursor uint64
	for {
		rkeys, next, err := rdb.Scan(ctx, cursor, pattern, scanCount).Result()
		if err != nil {
			return nil, err
		}
		for _, rk := range rkeys {
			k, ok := strings.CutPrefix(rk, ns)
			if ok && strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
				seen[k] = struct{}{}
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *redisStore) Delete(key string, opts ...store.DeleteOption) error {
	var o store.DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if key == "" {
		return nil // no record has the empty key
	}
	db, table := s.scope(o.Database, o.Table)
	rkey := tablePrefix(db, table) + key
	return s.do(func() string { return fmt.Sprintf("Delete %q from %s/%s", key, db, table) },
		func(ctx context.Context, rdb *goredis.Client) error { return rdb.Del(ctx, rkey).Err() })
}

func (s *redisStore) List(opts ...store.ListOption) ([]string, error) {
	var o store.ListOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	db, table := s.scope(o.Database, o.Table)
	var keys []string
	err := s.do(func() string { return fmt.Sprintf("List of %s/%s", db, table) },
		func(ctx context.Context, rdb *goredis.Client) error {
			var err error
			keys, err = scanKeys(ctx, rdb, tablePrefix(db, table), o.Prefix, o.Suffix)
			return err
		})
	if err != nil {
		return nil, err
	}
	if o.Offset >= uint(len(keys)) {
		return []string{}, nil
	}
	keys = keys[o.Offset:]
	if o.Limit > 0 && o.Limit < uint(len(keys)) {
		keys = keys[:o.Limit]
	}
	return keys, nil
}
