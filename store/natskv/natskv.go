// Package natskv is a store.Store on NATS JetStream key-value buckets: records live on a
// NATS server (or cluster) with JetStream, shared by every process that uses the same
// buckets, and survive restarts of the processes and, with file storage (the default), of
// the server.
//
// # Layout
//
// Each database is a bucket (a JetStream stream KV_<bucket>), created with the
// configuration of KeyValueOptions, DefaultMemory and DefaultDescription by the first
// Write to the database; reads, lists and deletes of a database without a bucket find
// nothing and create nothing. The bucket's name is the database's, with every byte but
// letters, digits and '_' written as '-' and two hex digits ("my-db" is "my-2Ddb"), and
// names longer than 64 characters cut and completed by a hash.
//
// A record of table t and key k is the entry of subject $KV.<bucket>.<t>.<k>.=, where
// <t> is the table escaped like the database (with '=' for '-') and <k> holds one token
// per byte of the key: the byte itself for letters, digits, '_', '-' and '/', two hex
// digits for any other byte. So every key is allowed, binary ones too, and the keys that
// start with a prefix are the subjects that match the filter <prefix tokens>.>: Read with
// ReadPrefix and List with ListPrefix ask the server for those records only (a consumer
// with that filter, deleted at the end), and List fetches headers only, not values. The
// server still looks at every key of the bucket to find the matches: on nats-server 2.9,
// about 0.1-0.2 s per 100,000 records in the bucket, whatever the prefix. Suffixes are
// filtered by the store, after the server's prefix filter; the results are sorted by the
// store, as the store package requires, so a List or a pattern Read holds every match in
// memory at once. Keys are at most MaxKeySize (1 KiB) bytes. Other NATS KV clients see
// the key "user/1" of table "micro" as "micro.u.s.e.r./.1.=".
//
// The entry holds the value and the metadata together (one version byte, the length of
// the metadata's JSON, the JSON, the value), and a record that expires carries its expiry
// time, in Unix nanoseconds, in the header Micro-Expires, which List reads without
// fetching values. A record must fit in one NATS message: its value and its metadata's
// JSON may take the server's max_payload (1 MiB by default) less RecordOverhead bytes;
// Write refuses larger ones with an error saying so.
//
// # Expiry
//
// nats-server before 2.11 has no per-message TTL, so expiry is the store's: Read and List
// never return a record whose expiry time has passed (by the clock of the process that
// reads, against the time the writer's clock set), and each store sweeps the buckets it
// has used every SweepInterval (DefaultSweepInterval, a minute): it looks at up to
// SweepMaxScan records and removes up to SweepMaxPurges expired ones per sweep, going on
// where the last sweep stopped, and removes a record only if it has not been written
// again since. Close stops the sweep. DefaultTTL gives records written without an expiry
// one.
//
// Deleting is purging the key's subject, so that nothing of the record, no delete marker
// either, stays in the bucket. DeleteBucket deletes a database's whole bucket.
//
// # Connection, time bounds and errors
//
// The store connects on first use, to store.Nodes (default nats://127.0.0.1:4222), with
// NatsOptions and JetStreamOptions when given, and reconnects by itself, every 250 ms by
// default. Every call is bounded by Timeout (DefaultTimeout, 5 s), connecting included,
// and ends too when the context of store.WithContext ends. Errors name the backend, the
// operation, the key and the database/table; those of a server that cannot be reached or
// does not answer in time match ErrUnavailable, those of records that do not decode
// store.ErrCorrupt. A call that failed may still have taken effect (a Write sent before
// the server stopped answering is applied when it answers again). Read returns
// store.ErrNotFound itself for a key without a record.
//
// Close stops the sweep and closes the connection; a store used after Close connects
// again. Init with other Nodes, NatsOptions or JetStreamOptions closes the connection
// too, and the next call makes the new one.
//
// The options of this package are kept, as Go Micro's are, in store.Options.Context:
// give store.WithContext, which replaces that context, before them. Go Micro's option
// EncodeKeys has no counterpart: keys are always encoded.
//
// The store is safe for concurrent use. Programs link it into --store with
//
//	cmd.DefaultStores["natskv"] = natskv.NewStore
package natskv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

// ErrUnavailable is matched (errors.Is) by the errors of calls that could not reach the
// server or got no answer within their time bound.
var ErrUnavailable = errors.New("JetStream unavailable")

// Batches of a listing: records with their values, and keys only.
const (
	readBatch = 256
	listBatch = 4096
	// consumerInactivity is how long the server keeps a listing's consumer that its
	// store left behind (a crash, a call that timed out).
	consumerInactivity = time.Minute
)

// NewStore returns a store on NATS JetStream key-value buckets (see the package
// documentation). It connects on first use. Options it cannot use (a negative Timeout,
// say) make every call return the error.
func NewStore(opts ...store.Option) store.Store {
	s := &kvStore{}
	for _, f := range opts {
		f(&s.opts)
	}
	s.applyDefaults()
	return s
}

type kvStore struct {
	mu      sync.Mutex
	opts    store.Options
	cfg     config
	cfgErr  error
	gen     uint64             // bumped when the connection is dropped (Close, Init)
	conn    *conn              // the connection of gen, nil until made
	dialing *dial              // the connection being made, nil when none
	buckets map[string]*bucket // the buckets of conn known to exist, by name
}

// conn is a connection and what runs on it.
type conn struct {
	gen       uint64
	nc        *nats.Conn
	js        jetstream.JetStream
	stopSweep context.CancelFunc
	sweepDone chan struct{}
}

// dial is a connection attempt that calls wait for.
type dial struct {
	done chan struct{}
	c    *conn
	err  error
}

// bucket is a bucket known to exist.
type bucket struct {
	name   string
	stream jetstream.Stream
}

func (s *kvStore) applyDefaults() {
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
	s.cfg, s.cfgErr = newConfig(s.opts)
}

func (s *kvStore) String() string { return "natskv" }

func (s *kvStore) Options() store.Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// Init applies options. Changing how the store connects (Nodes, NatsOptions,
// JetStreamOptions) closes the connection; the next call makes the new one.
func (s *kvStore) Init(opts ...store.Option) error {
	s.mu.Lock()
	old := s.cfg
	for _, f := range opts {
		f(&s.opts)
	}
	s.applyDefaults()
	var c *conn
	var d *dial
	if !old.sameConnection(s.cfg) {
		c, d = s.dropLocked()
	}
	err := s.cfgErr
	s.mu.Unlock()
	c.close(d)
	if err != nil {
		return fmt.Errorf("natskv: Init: %w", err)
	}
	return nil
}

// Close stops the sweep and closes the connection. The store stays usable: the next call
// connects again.
func (s *kvStore) Close() error {
	s.mu.Lock()
	c, d := s.dropLocked()
	s.mu.Unlock()
	c.close(d)
	return nil
}

// dropLocked forgets the connection and the one being made; the caller closes them with
// close after unlocking.
func (s *kvStore) dropLocked() (*conn, *dial) {
	s.gen++
	c, d := s.conn, s.dialing
	s.conn, s.dialing, s.buckets = nil, nil, nil
	return c, d
}

// close stops the sweep of c and closes it, after waiting for the attempt d (whose
// connection, stale by then, its dialer closes itself).
func (c *conn) close(d *dial) {
	if d != nil {
		<-d.done
	}
	if c == nil {
		return
	}
	c.stopSweep()
	<-c.sweepDone
	c.nc.Close()
}

// call is what every operation starts with: its context, bounded by the timeout, its
// connection and its options.
type call struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *conn
	opts   store.Options
	cfg    config
}

// begin returns the call of an operation, connecting when needed.
func (s *kvStore) begin() (*call, error) {
	s.mu.Lock()
	if s.cfgErr != nil {
		err := s.cfgErr
		s.mu.Unlock()
		return nil, err
	}
	cl := &call{opts: s.opts, cfg: s.cfg}
	cl.ctx, cl.cancel = context.WithTimeout(s.opts.Context, s.cfg.timeout)
	for range 3 { // again when the connection waited for was dropped, or had closed
		if s.conn != nil && s.conn.nc.IsClosed() {
			// closed for good (NatsOptions without reconnection): make a new one
			c, d := s.dropLocked()
			s.mu.Unlock()
			c.close(d)
			s.mu.Lock()
		}
		if s.conn != nil {
			cl.c = s.conn
			s.mu.Unlock()
			return cl, nil
		}
		d := s.dialing
		if d == nil {
			d = &dial{done: make(chan struct{})}
			s.dialing = d
			go s.connect(d, s.gen, s.cfg, s.opts.Logger)
		}
		s.mu.Unlock()
		select {
		case <-d.done:
		case <-cl.ctx.Done():
			err := cl.ctx.Err()
			cl.cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("connecting: no answer within %s: %w", s.cfg.timeout, err)
			}
			return nil, classify(err)
		}
		if d.err != nil {
			cl.cancel()
			return nil, d.err
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	cl.cancel()
	return nil, unavailable(errors.New("the connection was closed while it was made"))
}

// connect makes the connection of attempt d for generation gen.
func (s *kvStore) connect(d *dial, gen uint64, cfg config, log logger.Logger) {
	defer close(d.done)
	nopts := cfg.natsOptions()
	if nopts.Timeout <= 0 {
		nopts.Timeout = cfg.timeout // bounds the handshake, and so Close's wait for it
	}
	rd := &recordingDialer{inner: nopts.CustomDialer, timeout: nopts.Timeout}
	if nopts.Dialer != nil && rd.inner == nil {
		rd.inner = nopts.Dialer
	}
	nopts.CustomDialer = rd
	nc, err := nopts.Connect()
	if err != nil {
		servers := nopts.Url
		if servers == "" {
			servers = strings.Join(nopts.Servers, ",")
		}
		if last := rd.failure(); last != nil && errors.Is(err, nats.ErrNoServers) {
			err = fmt.Errorf("%w (%w)", err, last)
		}
		d.err = unavailable(fmt.Errorf("connect to %s: %w", servers, err))
		s.mu.Lock()
		if s.dialing == d {
			s.dialing = nil
		}
		s.mu.Unlock()
		return
	}
	var jsOpts []jetstream.JetStreamOpt
	if cfg.jsOpts != nil {
		jsOpts = *cfg.jsOpts
	}
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		nc.Close()
		d.err = fmt.Errorf("invalid option: JetStreamOptions: %w", err)
		s.mu.Lock()
		if s.dialing == d {
			s.dialing = nil
		}
		s.mu.Unlock()
		return
	}
	c := &conn{gen: gen, nc: nc, js: js, sweepDone: make(chan struct{})}
	var sweepCtx context.Context
	sweepCtx, c.stopSweep = context.WithCancel(context.Background())
	s.mu.Lock()
	if s.gen != gen { // dropped meanwhile
		s.mu.Unlock()
		c.stopSweep()
		nc.Close()
		d.err = unavailable(errors.New("the connection was closed while it was made"))
		return
	}
	s.conn, s.dialing, s.buckets = c, nil, map[string]*bucket{}
	d.c = c
	s.mu.Unlock()
	// a bucket deleted by anyone is forgotten at once: its cached stream would not answer
	if _, err := nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.DELETED.*", func(m *nats.Msg) {
		name, ok := strings.CutPrefix(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], "KV_")
		if ok {
			s.forget(c, name)
		}
	}); err != nil {
		log.Logf(logger.WarnLevel, "natskv: subscribe to stream deletions: %v", err)
	}
	go s.sweepLoop(sweepCtx, c, cfg, log)
}

// recordingDialer dials like nats would and keeps the last error, which nats reports as
// "no servers available".
type recordingDialer struct {
	inner   nats.CustomDialer
	timeout time.Duration
	mu      sync.Mutex
	last    error
}

// Dial dials address.
func (d *recordingDialer) Dial(network, address string) (net.Conn, error) {
	var c net.Conn
	var err error
	if d.inner != nil {
		c, err = d.inner.Dial(network, address)
	} else {
		c, err = (&net.Dialer{Timeout: d.timeout}).Dial(network, address)
	}
	if err != nil {
		d.mu.Lock()
		d.last = err
		d.mu.Unlock()
	}
	return c, err
}

// SkipTLSHandshake passes the inner dialer's choice on to nats.
func (d *recordingDialer) SkipTLSHandshake() bool {
	sd, ok := d.inner.(interface{ SkipTLSHandshake() bool })
	return ok && sd.SkipTLSHandshake()
}

func (d *recordingDialer) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// forget drops a bucket from the cache of c.
func (s *kvStore) forget(c *conn, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		delete(s.buckets, name)
	}
}

// bucket returns the bucket of database, creating it when create is set; nil (and no
// error) when it does not exist and create is not set.
func (cl *call) bucket(s *kvStore, database string, create bool) (*bucket, error) {
	name := bucketName(database)
	s.mu.Lock()
	if s.conn == cl.c {
		if b := s.buckets[name]; b != nil {
			s.mu.Unlock()
			return b, nil
		}
	}
	s.mu.Unlock()
	st, err := cl.c.js.Stream(cl.ctx, "KV_"+name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !create {
			return nil, nil
		}
		st, err = cl.create(name, database)
	}
	if err != nil {
		return nil, err
	}
	b := &bucket{name: name, stream: st}
	s.mu.Lock()
	if s.conn == cl.c {
		s.buckets[name] = b
	}
	s.mu.Unlock()
	return b, nil
}

// create creates the bucket name of database, or gets the one another store just
// created.
func (cl *call) create(name, database string) (jetstream.Stream, error) {
	kc := cl.cfg.kv
	kc.Bucket = name
	if cl.cfg.memory {
		kc.Storage = jetstream.MemoryStorage
	}
	if cl.cfg.description != "" {
		kc.Description = cl.cfg.description
	} else if kc.Description == "" {
		kc.Description = "micro store database " + strconv.Quote(database)
	}
	_, err := cl.c.js.CreateKeyValue(cl.ctx, kc)
	switch {
	case err == nil:
		bucketCreated(name)
	case !errors.Is(err, jetstream.ErrBucketExists):
		// Two stores creating one bucket at once: the loser may be told the stream's
		// subjects overlap (JetStream's error for the stream the winner just made)
		// rather than that the bucket exists. The bucket is there: use it.
		if st, serr := cl.c.js.Stream(cl.ctx, "KV_"+name); serr == nil {
			return st, nil
		}
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return cl.c.js.Stream(cl.ctx, "KV_"+name)
}

// bucketCreated is told the name of each bucket a store creates (by the tests, which
// delete them).
var bucketCreated = func(string) {}

// staleBucket reports whether err is the error of a bucket that went away after it was
// cached.
func staleBucket(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders)
}

// opError is the error of an operation.
type opError struct {
	op, key, database, table string
	err                      error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("natskv: ")
	b.WriteString(e.op)
	if e.key != "" {
		b.WriteString(" " + strconv.Quote(e.key))
	}
	if e.database != "" {
		fmt.Fprintf(&b, " in %s/%s", strconv.Quote(e.database), strconv.Quote(e.table))
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *opError) Unwrap() error { return e.err }

// unavailableError is the cause of an error matching ErrUnavailable.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return ErrUnavailable.Error() + ": " + e.err.Error() }

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

func unavailable(err error) error {
	var u *unavailableError
	if errors.As(err, &u) {
		return err
	}
	return &unavailableError{err}
}

// classify marks the errors of a server out of reach as unavailable.
func classify(err error) error {
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		// what nats says of a message sent while it reconnects without a buffer
		return unavailable(fmt.Errorf("disconnected from the server, reconnecting: %w", err))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrNoServers),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.As(err, &netErr):
		return unavailable(err)
	}
	return err
}

func (cl *call) fail(op, key, database, table string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && cl.ctx.Err() != nil {
		err = fmt.Errorf("no answer within %s: %w", cl.cfg.timeout, err)
	}
	return &opError{op: op, key: key, database: database, table: table, err: classify(err)}
}

// scopeOf returns the database and table of a call: the ones it names, else the store's.
func scopeOf(o store.Options, database, table string) (string, string) {
	if database == "" {
		database = o.Database
	}
	if table == "" {
		table = o.Table
	}
	return database, table
}

func (s *kvStore) Write(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, false)
}

// Create publishes r expecting no message on its key's subject, or, where the last one is
// a delete marker or an expired record, expecting that one: JetStream refuses the publish
// if another message came first, and Create then looks again. A live record is
// store.ErrExists.
func (s *kvStore) Create(r *store.Record, opts ...store.WriteOption) error {
	return s.write(r, opts, true)
}

// createTries bounds how often Create looks again after losing a race to a delete or to
// another replacement of an expired record.
const createTries = 8

// write is Write, or Create when onlyNew is set.
func (s *kvStore) write(r *store.Record, opts []store.WriteOption, onlyNew bool) error {
	switch {
	case r == nil:
		return errors.New("natskv: Write of a nil record")
	case r.Key == "":
		return errEmptyKey
	case store.CheckRecord(r) != nil:
		return fmt.Errorf("natskv: Write: %w", store.CheckRecord(r))
	case len(r.Key) > MaxKeySize:
		return fmt.Errorf("natskv: Write: key of %d bytes, more than the %d a key may have", len(r.Key), MaxKeySize)
	}
	var o store.WriteOptions
	for _, f := range opts {
		f(&o)
	}
	md, err := encodeMetadata(r.Metadata)
	if err != nil {
		return fmt.Errorf("natskv: Write %q: the metadata is not JSON-encodable: %w", r.Key, err)
	}
	cl, err := s.begin()
	if err != nil {
		return s.earlyFail("Write", r.Key, o.Database, o.Table, err)
	}
	defer cl.cancel()
	db, table := scopeOf(cl.opts, o.Database, o.Table)
	at, expired := expiresAt(r, o, time.Now(), cl.cfg.defaultTTL)
	op := "Write"
	if onlyNew {
		op = "Create"
	}
	if expired && onlyNew {
		// nothing is written: only whether a live record is there
		switch _, err := cl.get(s, db, table, r.Key); err {
		case nil:
			return store.ErrExists
		case store.ErrNotFound:
			return nil
		default:
			return cl.fail(op, r.Key, db, table, err)
		}
	}
	if expired {
		if err := cl.purge(s, db, table, r.Key); err != nil {
			return cl.fail("Write", r.Key, db, table, err)
		}
		return nil
	}
	if limit := cl.c.nc.MaxPayload(); int64(len(r.Value)+len(md)+RecordOverhead) > limit {
		return fmt.Errorf("natskv: %s %q: a value of %d bytes and metadata of %d: more than the server's max_payload of %d bytes allows (%d bytes for both)",
			op, r.Key, len(r.Value), len(md), limit, limit-RecordOverhead)
	}
	msg := &nats.Msg{Data: encodeEntry(r.Value, md)}
	if at != 0 {
		msg.Header = nats.Header{expiresHeader: []string{strconv.FormatInt(at, 10)}}
	}
	var expect uint64 // Create: the last sequence of the key's subject it replaces
	stale := false
	for tries := 0; ; {
		b, err := cl.bucket(s, db, true)
		if err != nil {
			return cl.fail(op, r.Key, db, table, err)
		}
		msg.Subject = keySubject(tablePrefix(b.name, table), r.Key)
		if !onlyNew {
			_, err = cl.c.js.PublishMsg(cl.ctx, msg)
		} else {
			_, err = cl.c.js.PublishMsg(cl.ctx, msg, jetstream.WithExpectLastSequencePerSubject(expect))
		}
		if err == nil {
			return nil
		}
		if !stale && staleBucket(err) {
			stale = true
			s.forget(cl.c, b.name)
			continue
		}
		if !onlyNew || !wrongLastSequence(err) {
			return cl.fail(op, r.Key, db, table, err)
		}
		if tries++; tries == createTries {
			return cl.fail(op, r.Key, db, table, fmt.Errorf("the key changed under %d tries to create it: %w", createTries, err))
		}
		// Another message is there: a live record (ErrExists), or one to replace.
		m, err := b.stream.GetLastMsgForSubject(cl.ctx, msg.Subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			expect = 0 // purged meanwhile
			continue
		}
		if err != nil {
			return cl.fail(op, r.Key, db, table, err)
		}
		e := entry{key: r.Key, header: m.Header, data: m.Data}
		if !e.deleted() {
			var err error
			if e.at, err = parseExpires(m.Header.Get(expiresHeader)); err != nil || !e.expired(time.Now()) {
				return store.ErrExists // a record that does not decode counts as there
			}
		}
		expect = m.Sequence
	}
}

// wrongLastSequence reports whether err is JetStream's refusal of a publish whose
// expected last sequence of the subject is not the stream's.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// earlyFail is the error of an operation that could not begin.
func (s *kvStore) earlyFail(op, key, database, table string, err error) error {
	o := s.Options()
	database, table = scopeOf(o, database, table)
	return &opError{op: op, key: key, database: database, table: strings.TrimPrefix(table, deleteBucketMark), err: classify(err)}
}

// expiresAt returns when a record written at now with o expires, in Unix nanoseconds (0:
// never), and whether it has expired already: WriteTTL first, then WriteExpiry, then the
// record's own Expiry, then the store's DefaultTTL. TTLs that are not positive count as
// none.
func expiresAt(r *store.Record, o store.WriteOptions, now time.Time, def time.Duration) (int64, bool) {
	switch {
	case o.TTL > 0:
		return now.Add(o.TTL).UnixNano(), false
	case !o.Expiry.IsZero():
		if !o.Expiry.After(now) {
			return 0, true
		}
		return o.Expiry.UnixNano(), false
	case r.Expiry > 0:
		return now.Add(r.Expiry).UnixNano(), false
	case def > 0:
		return now.Add(def).UnixNano(), false
	}
	return 0, false
}

// purge removes every message of key.
func (cl *call) purge(s *kvStore, database, table, key string) error {
	b, err := cl.bucket(s, database, false)
	if err != nil || b == nil {
		return err
	}
	err = b.stream.Purge(cl.ctx, jetstream.WithPurgeSubject(keySubject(tablePrefix(b.name, table), key)))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.forget(cl.c, b.name)
		return nil
	}
	return err
}

func (s *kvStore) Delete(key string, opts ...store.DeleteOption) error {
	var o store.DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	if table, ok := strings.CutPrefix(o.Table, deleteBucketMark); ok {
		database := key
		if database == "" {
			database = o.Database
		}
		return s.deleteBucket(database, table)
	}
	if key == "" || len(key) > MaxKeySize {
		return nil // no such record can exist
	}
	cl, err := s.begin()
	if err != nil {
		return s.earlyFail("Delete", key, o.Database, o.Table, err)
	}
	defer cl.cancel()
	db, table := scopeOf(cl.opts, o.Database, o.Table)
	if err := cl.purge(s, db, table, key); err != nil {
		return cl.fail("Delete", key, db, table, err)
	}
	return nil
}

// deleteBucket deletes the bucket of database (the store's when empty).
func (s *kvStore) deleteBucket(database, table string) error {
	cl, err := s.begin()
	if err != nil {
		return s.earlyFail("DeleteBucket", "", database, table, err)
	}
	defer cl.cancel()
	database, table = scopeOf(cl.opts, database, table)
	name := bucketName(database)
	err = cl.c.js.DeleteKeyValue(cl.ctx, name)
	s.forget(cl.c, name)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return cl.fail("DeleteBucket", "", database, table, err)
	}
	return nil
}

func (s *kvStore) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	var o store.ReadOptions
	for _, f := range opts {
		f(&o)
	}
	pattern := o.Prefix || o.Suffix
	if !pattern && (key == "" || len(key) > MaxKeySize) {
		return nil, store.ErrNotFound // no such record can exist
	}
	cl, err := s.begin()
	if err != nil {
		return nil, s.earlyFail("Read", key, o.Database, o.Table, err)
	}
	defer cl.cancel()
	db, table := scopeOf(cl.opts, o.Database, o.Table)
	if pattern {
		q := query{offset: o.Offset, limit: o.Limit}
		if o.Prefix {
			q.prefix = key
		}
		if o.Suffix {
			q.suffix = key
		}
		recs, err := cl.scan(s, db, table, q, false)
		if err != nil {
			return nil, cl.fail("Read", key, db, table, err)
		}
		out := make([]*store.Record, 0, len(recs))
		for _, e := range recs {
			r, err := e.record()
			if err != nil {
				return nil, cl.fail("Read", e.key, db, table, err)
			}
			out = append(out, r)
		}
		return out, nil
	}
	r, err := cl.get(s, db, table, key)
	if err == store.ErrNotFound {
		return nil, err
	}
	if err != nil {
		return nil, cl.fail("Read", key, db, table, err)
	}
	return []*store.Record{r}, nil
}

// get reads the record of key; store.ErrNotFound when it has none.
func (cl *call) get(s *kvStore, database, table, key string) (*store.Record, error) {
	b, err := cl.bucket(s, database, false)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, store.ErrNotFound
	}
	m, err := b.stream.GetLastMsgForSubject(cl.ctx, keySubject(tablePrefix(b.name, table), key))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, store.ErrNotFound
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s.forget(cl.c, b.name)
		return nil, store.ErrNotFound
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) {
			s.forget(cl.c, b.name) // a stream deleted unnoticed does not answer direct gets
		}
		return nil, err
	}
	e := entry{key: key, header: m.Header, data: m.Data}
	if e.deleted() {
		return nil, store.ErrNotFound
	}
	if e.at, err = parseExpires(m.Header.Get(expiresHeader)); err != nil {
		return nil, err
	}
	if e.expired(time.Now()) {
		return nil, store.ErrNotFound
	}
	return e.record()
}

// entry is a record as a listing or a read got it.
type entry struct {
	key    string
	seq    uint64
	at     int64 // expiry, Unix nanoseconds, 0: never
	header nats.Header
	data   []byte // nil in a listing of keys
}

// deleted reports whether the entry is a KV delete or purge marker.
func (e *entry) deleted() bool {
	op := e.header.Get(kvOperationHeader)
	return op == "DEL" || op == "PURGE"
}

func (e *entry) expired(now time.Time) bool { return e.at != 0 && e.at <= now.UnixNano() }

// record decodes the entry.
func (e *entry) record() (*store.Record, error) {
	value, md, err := decodeEntry(e.data)
	if err != nil {
		return nil, err
	}
	r := &store.Record{Key: e.key, Value: value, Metadata: md}
	if e.at != 0 {
		r.Expiry = max(time.Duration(e.at-time.Now().UnixNano()), time.Nanosecond)
	}
	return r, nil
}

// query is what a pattern Read or a List selects: keys with the prefix and the suffix,
// in key order, after skipping offset matches, at most limit of them (0: all).
type query struct {
	prefix, suffix string
	offset, limit  uint
}

func (s *kvStore) List(opts ...store.ListOption) ([]string, error) {
	var o store.ListOptions
	for _, f := range opts {
		f(&o)
	}
	cl, err := s.begin()
	if err != nil {
		return nil, s.earlyFail("List", "", o.Database, o.Table, err)
	}
	defer cl.cancel()
	db, table := scopeOf(cl.opts, o.Database, o.Table)
	recs, err := cl.scan(s, db, table, query{prefix: o.Prefix, suffix: o.Suffix, offset: o.Offset, limit: o.Limit}, true)
	if err != nil {
		return nil, cl.fail("List", "", db, table, err)
	}
	keys := make([]string, len(recs))
	for i, e := range recs {
		keys[i] = e.key
	}
	return keys, nil
}

// scan returns the live entries of table that the query selects, sorted by key, with
// their data unless keysOnly.
func (cl *call) scan(s *kvStore, database, table string, q query, keysOnly bool) ([]*entry, error) {
	if len(q.prefix) > MaxKeySize {
		return []*entry{}, nil
	}
	b, err := cl.bucket(s, database, false)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return []*entry{}, nil
	}
	prefix := tablePrefix(b.name, table)
	byKey := map[string]*entry{}
	now := time.Now()
	// with one message per key (History 1, the default) every message is a key's last,
	// and a consumer of all of them is made faster than one of the last per subject
	policy := jetstream.DeliverLastPerSubjectPolicy
	if b.stream.CachedInfo().Config.MaxMsgsPerSubject == 1 {
		policy = jetstream.DeliverAllPolicy
	}
	_, err = cl.each(b, jetstream.ConsumerConfig{
		DeliverPolicy: policy,
		FilterSubject: prefixFilter(prefix, q.prefix),
		HeadersOnly:   keysOnly,
	}, batchOf(keysOnly), -1, func(m jetstream.Msg, seq uint64) (bool, error) {
		key, err := decodeKey(prefix, m.Subject())
		if err != nil {
			return false, err
		}
		e := &entry{key: key, seq: seq, header: m.Headers(), data: m.Data()}
		if old := byKey[key]; old != nil && old.seq > seq {
			return true, nil
		}
		if e.deleted() || !strings.HasSuffix(key, q.suffix) {
			delete(byKey, key) // written again, or deleted, during the listing
			return true, nil
		}
		if e.at, err = parseExpires(e.header.Get(expiresHeader)); err != nil {
			return false, fmt.Errorf("record %q: %w", key, err)
		}
		if e.expired(now) {
			delete(byKey, key)
			return true, nil
		}
		if keysOnly {
			e.header, e.data = nil, nil
		}
		byKey[key] = e
		return true, nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.forget(cl.c, b.name)
		return []*entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*entry, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.key, b.key) })
	if q.offset >= uint(len(out)) {
		return []*entry{}, nil
	}
	out = out[q.offset:]
	if q.limit > 0 && q.limit < uint(len(out)) {
		out = out[:q.limit]
	}
	return out, nil
}

func batchOf(keysOnly bool) int {
	if keysOnly {
		return listBatch
	}
	return readBatch
}

// each runs a consumer of b with cfg (its acknowledgement policy, storage and inactivity
// set here) and calls fn with each message and its stream sequence until the consumer
// has delivered every message it had pending (complete is then true), fn returns false,
// or limit messages (if not negative) were seen. The consumer is deleted at the end.
func (cl *call) each(b *bucket, cfg jetstream.ConsumerConfig, batch, limit int, fn func(jetstream.Msg, uint64) (bool, error)) (complete bool, err error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = consumerInactivity
	cfg.Replicas = 1
	cons, err := b.stream.CreateConsumer(cl.ctx, cfg)
	if err != nil {
		return false, err
	}
	// deleted without waiting for the answer (the store's JetStream context has the
	// default API prefix); if the request is lost, the server deletes the consumer after
	// consumerInactivity
	deleteSubject := jetstream.DefaultAPIPrefix + "CONSUMER.DELETE." + b.stream.CachedInfo().Config.Name + "." + cons.CachedInfo().Name
	defer func() { _ = cl.c.nc.Publish(deleteSubject, nil) }()
	pending := cons.CachedInfo().NumPending
	seen := 0
	for empty := 0; pending > 0; {
		n := uint64(batch)
		if pending < n {
			n = pending
		}
		if limit >= 0 && uint64(limit-seen) < n {
			n = uint64(limit - seen)
		}
		if n == 0 {
			return false, nil
		}
		mb, err := cons.FetchNoWait(int(n))
		if err != nil {
			return false, err
		}
		got := 0
		msgs := mb.Messages()
	recv:
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					break recv
				}
				got++
				seen++
				md, err := m.Metadata()
				if err != nil {
					return false, err
				}
				pending = md.NumPending
				more, err := fn(m, md.Sequence.Stream)
				if err != nil || !more {
					return false, err
				}
			case <-cl.ctx.Done():
				return false, cl.ctx.Err()
			}
		}
		if err := mb.Error(); err != nil {
			return false, err
		}
		if got > 0 {
			empty = 0
			continue
		}
		// nothing came although the consumer had messages pending: they went away
		// meanwhile (purged), or the server did not answer; its count tells
		if empty++; empty > 3 {
			return false, fmt.Errorf("the listing's consumer delivers nothing with %d messages pending", pending)
		}
		info, err := cons.Info(cl.ctx)
		if err != nil {
			return false, err
		}
		pending = info.NumPending
	}
	return true, nil
}
