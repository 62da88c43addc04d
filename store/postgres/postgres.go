// Package postgres is a store.Store kept in PostgreSQL, through github.com/jackc/pgx/v5
// (its connection pool, pgxpool).
//
// # Layout
//
// Each store database is a PostgreSQL schema of that name in the database of the
// connection string, and each store table a table of that name in it: the records of table
// "users" of database "micro" are in "micro"."users". Names are quoted identifiers, so
// they keep their case and any character; a name must be 1 to 63 bytes of valid UTF-8
// without NUL (PostgreSQL truncates longer identifiers, so they are refused rather than
// shortened), and a database name must not start with "pg_" (reserved for PostgreSQL's own
// schemas). Every table has the columns
//
//	key      bytea PRIMARY KEY   the key's bytes: any bytes but an empty key
//	value    bytea NOT NULL
//	metadata jsonb               NULL when the record has none
//	expiry   timestamptz         NULL when the record never expires
//
// and a partial index on expiry for the sweep. Keys are bytea, so a key may hold any bytes
// (NUL, invalid UTF-8) and keys sort by their bytes, as the store package requires; a key
// is at most MaxKeySize bytes (the primary key's b-tree takes entries of at most 2704
// bytes). Values are at most 1 GiB, PostgreSQL's limit for a bytea.
//
// A table (and its schema) is created by the first write to it, under a transaction-scoped
// advisory lock per schema, so that stores that write to a new table at the same time, in
// one process or many, create it once. Reads, lists and deletes of a table that does not
// exist find nothing and create nothing.
//
// # Queries
//
// A prefix read or list is a range on the primary key, key >= prefix AND key < the
// prefix's successor (the prefix with its last byte that is not 0xff incremented and what
// follows dropped), so it reads only the matching part of the index, in key order; offset
// and limit are the statement's OFFSET and LIMIT. A suffix has no index to use: a suffix
// read or list without a prefix examines every record of the table (with a prefix, every
// record of the prefix's range).
//
// # Expiry
//
// Expiry times are the server's clock: a write with a TTL stores now() + TTL, every query
// keeps only the records whose expiry is NULL or after now(), and the time left that Read
// returns is measured against now(), so stores in many processes agree whatever their
// clocks. An expiry time that is already past on the writer's clock deletes the key.
// Expired records are never returned; a background sweep deletes them from the tables
// the store has used (written to or read from) every SweepInterval (default
// DefaultSweepInterval), at most SweepLimit records per table and pass, skipping rows that
// other sweepers hold. Tables no store uses any more keep their expired records, unseen,
// until a store uses them again.
//
// # Connections, deadlines and errors
//
// The store takes one connection string, store.Nodes(dsn) (default DefaultAddress): a URL
// (postgres://user:password@host:port/database?sslmode=...) or key=value settings, as pgx
// and libpq read them; pool settings go in it too (pool_max_conns=8, ...). pgx also reads
// the PG* environment variables and ~/.pgpass for settings the string leaves out. The store
// connects on first use, not in NewStore.
//
// Every call is bounded by the store's Timeout (default DefaultTimeout), within
// Options.Context when it was set with store.WithContext. A call against a server that does
// not answer returns, at its deadline, an error that matches errors.Is(err,
// context.DeadlineExceeded); the connection it used is closed, never reused. A pooled
// connection idle for more than a second is checked (a ping, within the call's deadline)
// before it is used, and when a statement fails because its connection broke (a server
// restart) the store closes all its idle connections and runs the statement once more on
// a new one: every operation of the store is idempotent, so the retry is safe. Once the
// server answers again, the next call works.
//
// Errors name the backend, the operation, the key and the table ("store/postgres: write
// "k" to table "t" of database "d": ..."), and wrap pgx's: errors.As with a
// *pgconn.PgError gives the server's code. Read returns store.ErrNotFound itself, never
// wrapped. Metadata is stored as jsonb, which cannot hold the NUL character: Write
// refuses metadata with a NUL in a string with an error that says so.
//
// Close stops the sweep and closes the connections; the calls after it return ErrClosed. A
// store is safe for concurrent use.
//
// A main program links the store into --store with
//
//	cmd.DefaultStores["postgres"] = postgres.NewStore
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

const (
	// DefaultAddress is the connection string of a store given no store.Nodes: the
	// postgres user's database on a local server, without TLS.
	DefaultAddress = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// DefaultTimeout bounds each call when Timeout is not given.
	DefaultTimeout = 5 * time.Second
	// DefaultSweepInterval is how often expired records are deleted when SweepInterval is
	// not given.
	DefaultSweepInterval = time.Minute
	// SweepLimit is the most expired records one sweep deletes from a table.
	SweepLimit = 10000
	// MaxKeySize is the longest key the store takes, in bytes.
	MaxKeySize = 2048
	// maxName is the longest schema or table name, in bytes (PostgreSQL's NAMEDATALEN - 1).
	maxName = 63
	// sweepBatch is how many expired records one statement of the sweep deletes.
	sweepBatch = 1000
)

// ErrClosed is returned by every call of a store after its Close.
var ErrClosed = errors.New("store/postgres: store closed")

// NewStore returns a store kept in PostgreSQL. Options: store.Nodes (one connection
// string, default DefaultAddress), store.Database and store.Table (default "micro" and
// "micro"), store.WithContext, store.WithLogger (for failed sweeps), Timeout and
// SweepInterval. It connects on first use; see the package documentation. Safe for
// concurrent use.
func NewStore(opts ...store.Option) store.Store {
	s := &pgStore{tables: map[table]struct{}{}}
	_ = s.Init(opts...)
	return s
}

type pgStore struct {
	mu     sync.RWMutex
	opts   store.Options
	conn   *conn // nil until the first call, and after an Init that changes the settings
	closed bool

	tablesMu sync.Mutex
	tables   map[table]struct{} // the tables the store has used: what the sweep visits
}

// settings are what a connection is made with.
type settings struct {
	dsn            string
	timeout, sweep time.Duration
}

// conn is the store's pool and the sweep that runs on it.
type conn struct {
	pool     *pgxpool.Pool
	settings settings
	stop     context.CancelFunc
	done     chan struct{}
}

func (c *conn) close() {
	c.stop()
	<-c.done
	c.pool.Close()
}

func settingsOf(o store.Options) (settings, error) {
	st := settings{
		dsn:     DefaultAddress,
		timeout: durationOf(o, timeoutKey{}, DefaultTimeout),
		sweep:   durationOf(o, sweepIntervalKey{}, DefaultSweepInterval),
	}
	switch len(o.Nodes) {
	case 0:
	case 1:
		st.dsn = o.Nodes[0]
	default:
		return st, fmt.Errorf("store/postgres: %d nodes given: the store takes one connection string", len(o.Nodes))
	}
	return st, nil
}

func (s *pgStore) String() string { return "postgres" }

func (s *pgStore) Init(opts ...store.Option) error {
	s.mu.Lock()
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
	var old *conn
	if st, err := settingsOf(s.opts); s.conn != nil && (err != nil || st != s.conn.settings) {
		old, s.conn = s.conn, nil
	}
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

func (s *pgStore) Options() store.Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

// Close stops the sweep and closes the store's connections, waiting for the calls that
// use them. The calls after it return ErrClosed; a second Close returns nil.
func (s *pgStore) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	return nil
}

// call is one call of the store: its pool, its context and its options.
type call struct {
	ctx     context.Context
	pool    *pgxpool.Pool
	opts    store.Options
	timeout time.Duration
}

// begin returns the call's pool, connecting on first use, and its context, bounded by the
// store's timeout.
func (s *pgStore) begin() (call, context.CancelFunc, error) {
	s.mu.RLock()
	c, opts, closed := s.conn, s.opts, s.closed
	s.mu.RUnlock()
	if closed {
		return call{}, nil, ErrClosed
	}
	if c == nil {
		var err error
		if c, opts, err = s.connect(); err != nil {
			return call{}, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(opts.Context, c.settings.timeout)
	return call{ctx: ctx, pool: c.pool, opts: opts, timeout: c.settings.timeout}, cancel, nil
}

// connect makes the store's pool and starts its sweep, unless another call did.
func (s *pgStore) connect() (*conn, store.Options, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, s.opts, ErrClosed
	}
	if s.conn != nil {
		return s.conn, s.opts, nil
	}
	st, err := settingsOf(s.opts)
	if err != nil {
		return nil, s.opts, err
	}
	cfg, err := pgxpool.ParseConfig(st.dsn)
	if err != nil {
		// pgx's message quotes no password; the string itself might hold one
		return nil, s.opts, fmt.Errorf("store/postgres: connection string: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		// pgxpool goes on connecting after the call that asked gave up: bound it too
		cfg.ConnConfig.ConnectTimeout = st.timeout
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil { // not reached: NewWithConfig connects nothing without MinConns
		return nil, s.opts, fmt.Errorf("store/postgres: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &conn{pool: pool, settings: st, stop: stop, done: make(chan struct{})}
	go s.sweepLoop(ctx, c, s.opts.Logger)
	s.conn = c
	return c, s.opts, nil
}

// do runs f in a call, on the table that database and name name (empty: the store's).
// When f fails because its connection broke, do closes the pool's idle connections (a
// server restart breaks them all) and runs f once more: every statement of the store may
// run twice. The errors of f come back as "store/postgres: <what> <table>: <error>";
// undefined(err) tells a table that does not exist. A table f succeeds on is one the store
// uses, which the sweep visits.
func (s *pgStore) do(database, name, what string, f func(call, table) error) error {
	c, cancel, err := s.begin()
	if err != nil {
		return err
	}
	defer cancel()
	t, err := tableOf(c.opts, database, name)
	if err != nil {
		return err
	}
	err = f(c, t)
	if err != nil && brokenConn(c.ctx, err) {
		c.pool.Reset()
		err = f(c, t)
	}
	switch {
	case err == nil:
		s.used(t)
		return nil
	case errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() != nil:
		return fmt.Errorf("store/postgres: %s %s: %w (no answer within %s)", what, t, err, c.timeout)
	}
	return fmt.Errorf("store/postgres: %s %s: %w", what, t, err)
}

// brokenConn reports whether err is the failure of the call's connection, not the
// call's deadline nor an answer of the server (but the server's "terminating connection"
// and connection errors): a broken or closed socket, a connection refused, or a statement
// that was never sent.
func brokenConn(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02"
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// table is a table of a database of the store.
type table struct{ database, name string }

// tableOf returns the table of a call that names database and table (empty: the
// store's), or the error of a name PostgreSQL cannot hold as it is.
func tableOf(o store.Options, database, name string) (table, error) {
	if database == "" {
		database = o.Database
	}
	if name == "" {
		name = o.Table
	}
	if err := checkName("database", database); err != nil {
		return table{}, err
	}
	if strings.HasPrefix(database, "pg_") {
		return table{}, fmt.Errorf("store/postgres: database name %q: names starting with pg_ are reserved for PostgreSQL's schemas", database)
	}
	if err := checkName("table", name); err != nil {
		return table{}, err
	}
	return table{database, name}, nil
}

func checkName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("store/postgres: empty %s name", kind)
	case len(name) > maxName:
		return fmt.Errorf("store/postgres: %s name of %d bytes: PostgreSQL takes at most %d", kind, len(name), maxName)
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("store/postgres: %s name %q: names must be valid UTF-8 without NUL", kind, name)
	}
	return nil
}

// ident is the table's quoted, qualified name: "database"."table".
func (t table) ident() string { return pgx.Identifier{t.database, t.name}.Sanitize() }

func (t table) String() string {
	return fmt.Sprintf("table %q of database %q", t.name, t.database)
}

// used records that the store uses t: the sweep visits it.
func (s *pgStore) used(t table) {
	s.tablesMu.Lock()
	s.tables[t] = struct{}{}
	s.tablesMu.Unlock()
}

// undefined reports whether err says the table (or its schema) does not exist.
func undefined(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")
}

// create creates t and its schema unless they exist. The advisory lock of the schema
// serialises the stores creating tables in it, in this process and others, so that
// concurrent first writes do not race in PostgreSQL's catalogue.
func create(ctx context.Context, pool *pgxpool.Pool, t table) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		h := fnv.New64a()
		h.Write([]byte("micro store/postgres\x00" + t.database))
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return err
		}
		schema := pgx.Identifier{t.database}.Sanitize()
		var schemaExists, tableExists bool
		if err := tx.QueryRow(ctx, "SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
			schema, t.ident()).Scan(&schemaExists, &tableExists); err != nil {
			return err
		}
		if tableExists {
			return nil
		}
		if !schemaExists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
				return err
			}
		}
		// the index gets a name PostgreSQL chooses, one no table of the schema has
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+t.ident()+
			" (key bytea PRIMARY KEY, value bytea NOT NULL, metadata jsonb, expiry timestamptz)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE INDEX ON "+t.ident()+" (expiry) WHERE expiry IS NOT NULL")
		return err
	})
}

func (s *pgStore) Write(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, false)
}

// Create inserts r unless its key has a record that has not expired (store.ErrExists):
// one INSERT … ON CONFLICT, which replaces only an expired row. A Create sent again after
// its connection broke, that finds its own value there, counts as created.
func (s *pgStore) Create(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, true)
}

// write is Write, or Create when onlyNew is set.
func (s *pgStore) write(r *store.Record, opts []store.WriteOption, onlyNew bool) error {
	switch {
	case r == nil:
		return errors.New("store/postgres: Write of a nil record")
	case r.Key == "":
		return errors.New("store/postgres: a record's key must not be empty")
	case store.CheckRecord(r) != nil:
		return fmt.Errorf("store/postgres: %w", store.CheckRecord(r))
	case len(r.Key) > MaxKeySize:
		return fmt.Errorf("store/postgres: key of %d bytes: the store takes at most %d", len(r.Key), MaxKeySize)
	}
	var o store.WriteOptions
	for _, f := range opts {
		f(&o)
	}
	var md []byte
	if len(r.Metadata) > 0 {
		var err error
		if md, err = json.Marshal(r.Metadata); err != nil {
			return fmt.Errorf("store/postgres: the metadata of %q is not JSON-encodable: %w", r.Key, err)
		}
	}
	// the expiry: a TTL from the server's clock, or a time
	var ttl *int64
	var at *time.Time
	switch {
	case o.TTL > 0:
		ttl = ptr(o.TTL.Microseconds())
	case !o.Expiry.IsZero():
		if !o.Expiry.After(time.Now()) {
			if onlyNew {
				return s.createPast(r.Key, o)
			}
			return s.Delete(r.Key, store.DeleteFrom(o.Database, o.Table))
		}
		at = &o.Expiry
	case r.Expiry > 0:
		ttl = ptr(r.Expiry.Microseconds())
	}
	value := r.Value
	if value == nil {
		value = []byte{} // not NULL
	}
	key := []byte(r.Key)
	what := fmt.Sprintf("write %q to", r.Key)
	if onlyNew {
		what = fmt.Sprintf("create %q in", r.Key)
	}
	exists, tries := false, 0
	err := s.do(o.Database, o.Table, what, func(c call, t table) error {
		tries++
		q := "INSERT INTO " + t.ident() + " AS cur (key, value, metadata, expiry)" +
			" VALUES ($1, $2, $3::jsonb, COALESCE(now() + $4::bigint * interval '1 microsecond', $5::timestamptz))" +
			" ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, expiry = EXCLUDED.expiry"
		if onlyNew {
			q += " WHERE cur.expiry IS NOT NULL AND cur.expiry <= now()" // only over an expired row
		}
		tag, err := c.pool.Exec(c.ctx, q, key, value, md, ttl, at)
		if undefined(err) {
			if err = create(c.ctx, c.pool, t); err == nil {
				tag, err = c.pool.Exec(c.ctx, q, key, value, md, ttl, at)
			}
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "22P05" { // untranslatable_character
			return fmt.Errorf("the metadata holds a NUL character, which jsonb cannot store: %w", err)
		}
		if err != nil || !onlyNew || tag.RowsAffected() == 1 {
			return err
		}
		exists = true
		if tries > 1 {
			// sent again after a broken connection: the first may have inserted it
			var cur []byte
			err := c.pool.QueryRow(c.ctx, "SELECT value FROM "+t.ident()+" WHERE key = $1", key).Scan(&cur)
			exists = err != nil || !bytes.Equal(cur, value)
		}
		return nil
	})
	if err == nil && exists {
		return store.ErrExists
	}
	return err
}

// createPast is Create of a record whose expiry has passed: nothing is written, and the
// error is store.ErrExists if the key has a record that has not expired.
func (s *pgStore) createPast(key string, o store.WriteOptions) error {
	_, err := s.Read(key, store.ReadFrom(o.Database, o.Table))
	switch err {
	case nil:
		return store.ErrExists
	case store.ErrNotFound:
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }

func (s *pgStore) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	var o store.ReadOptions
	for _, f := range opts {
		f(&o)
	}
	exact := !o.Prefix && !o.Suffix
	if exact && (key == "" || len(key) > MaxKeySize) {
		return nil, store.ErrNotFound // no record has such a key
	}
	var recs []*store.Record
	err := s.do(o.Database, o.Table, fmt.Sprintf("read %q from", key), func(c call, t table) error {
		recs = nil
		if exact {
			q := "SELECT key, value, metadata, expiry, now() FROM " + t.ident() +
				" WHERE key = $1 AND (expiry IS NULL OR expiry > now())"
			return collectRecords(c.ctx, c.pool, t, &recs, q, []byte(key))
		}
		q, args := selectSQL("key, value, metadata, expiry, now()", t, patternOf(key, o))
		return collectRecords(c.ctx, c.pool, t, &recs, q, args...)
	})
	if err != nil && !undefined(err) {
		return nil, err
	}
	if exact && len(recs) == 0 {
		return nil, store.ErrNotFound
	}
	if recs == nil {
		recs = []*store.Record{}
	}
	return recs, nil
}

// collectRecords runs q and appends the records of its rows (key, value, metadata,
// expiry, now()) to recs.
func collectRecords(ctx context.Context, pool *pgxpool.Pool, t table, recs *[]*store.Record, q string, args ...interface{}) error {
	rows, err := pool.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, value, md []byte
		var expiry *time.Time
		var now time.Time
		if err := rows.Scan(&key, &value, &md, &expiry, &now); err != nil {
			return err
		}
		r := &store.Record{Key: string(key), Value: value}
		if value == nil {
			r.Value = []byte{}
		}
		if r.Metadata, err = decodeMetadata(md); err != nil {
			return fmt.Errorf("%w %q in %s: metadata: %v", store.ErrCorrupt, key, t, err)
		}
		if expiry != nil {
			if r.Expiry = expiry.Sub(now); r.Expiry <= 0 {
				r.Expiry = time.Nanosecond // not reached: the query keeps live records only
			}
		}
		*recs = append(*recs, r)
	}
	return rows.Err()
}

// decodeMetadata decodes a record's metadata column: a JSON object, or NULL for none.
func decodeMetadata(b []byte) (map[string]interface{}, error) {
	md := map[string]interface{}{}
	if b == nil {
		return md, nil
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	if md == nil {
		return nil, errors.New("null, not an object")
	}
	return md, nil
}

func (s *pgStore) Delete(key string, opts ...store.DeleteOption) error {
	var o store.DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	if key == "" || len(key) > MaxKeySize {
		return nil // no record has such a key
	}
	err := s.do(o.Database, o.Table, fmt.Sprintf("delete %q from", key), func(c call, t table) error {
		_, err := c.pool.Exec(c.ctx, "DELETE FROM "+t.ident()+" WHERE key = $1", []byte(key))
		return err
	})
	if undefined(err) {
		return nil
	}
	return err
}

func (s *pgStore) List(opts ...store.ListOption) ([]string, error) {
	var o store.ListOptions
	for _, f := range opts {
		f(&o)
	}
	keys := []string{}
	err := s.do(o.Database, o.Table, "list", func(c call, t table) error {
		q, args := selectSQL("key", t, pattern{o.Prefix, o.Suffix, o.Offset, o.Limit})
		rows, err := c.pool.Query(c.ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		keys = keys[:0]
		for rows.Next() {
			var k []byte
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, string(k))
		}
		return rows.Err()
	})
	switch {
	case undefined(err):
		return []string{}, nil
	case err != nil:
		return nil, err
	}
	return keys, nil
}

// pattern is what a read with a pattern or a list selects: the keys with the prefix and
// the suffix, in key order, after offset of them, at most limit (0: all).
type pattern struct {
	prefix, suffix string
	offset, limit  uint
}

func patternOf(key string, o store.ReadOptions) pattern {
	p := pattern{offset: o.Offset, limit: o.Limit}
	if o.Prefix {
		p.prefix = key
	}
	if o.Suffix {
		p.suffix = key
	}
	return p
}

// selectSQL returns the statement selecting cols of the live records of t that p
// selects, and its arguments. A prefix is a range of the primary key, which the planner
// reads from the index; a suffix is a filter.
func selectSQL(cols string, t table, p pattern) (string, []interface{}) {
	var b strings.Builder
	var args []interface{}
	arg := func(v interface{}) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString("SELECT " + cols + " FROM " + t.ident() + " WHERE (expiry IS NULL OR expiry > now())")
	if p.prefix != "" {
		lo := []byte(p.prefix)
		b.WriteString(" AND key >= " + arg(lo))
		if hi := successor(lo); hi != nil {
			b.WriteString(" AND key < " + arg(hi))
		}
	}
	if p.suffix != "" {
		sfx := arg([]byte(p.suffix))
		fmt.Fprintf(&b, " AND length(key) >= length(%[1]s::bytea) AND substr(key, length(key) - length(%[1]s::bytea) + 1) = %[1]s::bytea", sfx)
	}
	b.WriteString(" ORDER BY key")
	if p.offset > 0 {
		b.WriteString(" OFFSET " + arg(clamp(p.offset)))
	}
	if p.limit > 0 {
		b.WriteString(" LIMIT " + arg(clamp(p.limit)))
	}
	return b.String(), args
}

func clamp(n uint) int64 { return int64(min(uint64(n), math.MaxInt64)) }

// successor returns the smallest byte string greater than every string that starts with
// prefix, or nil when there is none (prefix is empty or all 0xff bytes): prefix with its
// last byte below 0xff incremented and the bytes after it dropped.
func successor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			hi := make([]byte, i+1)
			copy(hi, prefix)
			hi[i]++
			return hi
		}
	}
	return nil
}

// sweepLoop deletes expired records from the tables the store uses every sweep interval,
// until ctx ends.
func (s *pgStore) sweepLoop(ctx context.Context, c *conn, log logger.Logger) {
	defer close(c.done)
	tick := time.NewTicker(c.settings.sweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sweep(ctx, c, log)
		}
	}
}

// sweep deletes the expired records of each table the store uses, at most SweepLimit
// per table, in statements of sweepBatch records each bounded by the store's timeout.
func (s *pgStore) sweep(ctx context.Context, c *conn, log logger.Logger) {
	s.tablesMu.Lock()
	tables := make([]table, 0, len(s.tables))
	for t := range s.tables {
		tables = append(tables, t)
	}
	s.tablesMu.Unlock()
	for _, t := range tables {
		for deleted := 0; deleted < SweepLimit && ctx.Err() == nil; {
			n, err := deleteExpired(ctx, c.pool, t, c.settings.timeout)
			if undefined(err) { // dropped: forget it
				s.tablesMu.Lock()
				delete(s.tables, t)
				s.tablesMu.Unlock()
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					log.Logf(logger.WarnLevel, "store/postgres: delete the expired records of %s: %v", t, err)
				}
				return // the server is likely unreachable: the next sweep tries again
			}
			if deleted += n; n < sweepBatch {
				break
			}
		}
	}
}

// deleteExpired deletes at most sweepBatch expired records of t, skipping those another
// transaction holds, and returns how many it deleted.
func deleteExpired(ctx context.Context, pool *pgxpool.Pool, t table, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tag, err := pool.Exec(ctx, "DELETE FROM "+t.ident()+" WHERE key IN (SELECT key FROM "+t.ident()+
		" WHERE expiry <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)", sweepBatch)
	return int(tag.RowsAffected()), err
}
