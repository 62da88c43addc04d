package store

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// NewMemoryStore returns a store that keeps records in the process's memory, for tests
// and caches: nothing survives the process, and Close drops every record. It starts no
// goroutine: expired records are removed when a read meets them and by a sweep of a table
// at most once a minute, on a write to it. Safe for concurrent use.
func NewMemoryStore(opts ...Option) Store {
	s := &memoryStore{tables: map[tableID]*memTable{}}
	for _, f := range opts {
		f(&s.opts)
	}
	s.opts = s.opts.withDefaults()
	return s
}

// memSweepEvery is how often a write sweeps its table of expired records.
const memSweepEvery = time.Minute

type tableID struct{ database, table string }

type memoryStore struct {
	mu     sync.RWMutex
	opts   Options
	tables map[tableID]*memTable
}

// memRecord is a stored record; never changed once stored (a write replaces it).
type memRecord struct {
	value     []byte
	metadata  []byte // JSON object, nil when empty
	expiresAt int64  // Unix nanoseconds, 0: never
}

// memTable is a table: its records, and its keys in order for pattern reads and lists.
// sorted holds keys in order, possibly some deleted since (dropped when next rebuilt);
// pending holds keys added since the last rebuild, possibly repeated.
type memTable struct {
	recs      map[string]*memRecord
	sorted    []string
	pending   []string
	deletes   int
	lastSweep time.Time
}

func (t *memTable) dirty() bool { return len(t.pending) > 0 || t.deletes > len(t.sorted)/4+16 }

// rebuild merges the pending keys into sorted and drops the deleted ones.
func (t *memTable) rebuild() {
	if !t.dirty() {
		return
	}
	slices.Sort(t.pending)
	out := make([]string, 0, len(t.recs))
	i, j := 0, 0
	last := ""
	add := func(k string) {
		if _, ok := t.recs[k]; ok && (len(out) == 0 || k != last) {
			out = append(out, k)
			last = k
		}
	}
	for i < len(t.sorted) || j < len(t.pending) {
		switch {
		case j == len(t.pending) || (i < len(t.sorted) && t.sorted[i] <= t.pending[j]):
			add(t.sorted[i])
			i++
		default:
			add(t.pending[j])
			j++
		}
	}
	t.sorted, t.pending, t.deletes = out, nil, 0
}

// sweep removes the expired records.
func (t *memTable) sweep(now time.Time) {
	t.lastSweep = now
	for k, r := range t.recs {
		if isExpired(r.expiresAt, now) {
			delete(t.recs, k)
			t.deletes++
		}
	}
}

func (s *memoryStore) Init(opts ...Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range opts {
		f(&s.opts)
	}
	s.opts = s.opts.withDefaults()
	return nil
}

func (s *memoryStore) Options() Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

func (s *memoryStore) String() string { return "memory" }

// Close drops every record; the store stays usable.
func (s *memoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables = map[tableID]*memTable{}
	return nil
}

func (s *memoryStore) Write(r *Record, opts ...WriteOption) error { return s.write(r, opts, false) }

// Create writes r unless its key has a live record (ErrExists).
func (s *memoryStore) Create(r *Record, opts ...WriteOption) error { return s.write(r, opts, true) }

// write is Write, or Create when create is set.
func (s *memoryStore) write(r *Record, opts []WriteOption, create bool) error {
	if err := checkRecord(r); err != nil {
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
	rec := &memRecord{value: bytes.Clone(r.Value), metadata: md}
	if rec.value == nil {
		rec.value = []byte{}
	}
	now := time.Now()
	at, expired := expiryOf(r, o, now)
	rec.expiresAt = at

	s.mu.Lock()
	defer s.mu.Unlock()
	db, table := scopeOf(s.opts, o.Database, o.Table)
	id := tableID{db, table}
	t := s.tables[id]
	if t == nil {
		if expired {
			return nil
		}
		t = &memTable{recs: map[string]*memRecord{}, lastSweep: now}
		s.tables[id] = t
	}
	old, existed := t.recs[r.Key]
	if create && existed && !isExpired(old.expiresAt, now) {
		return ErrExists
	}
	switch {
	case expired && existed:
		delete(t.recs, r.Key)
		t.deletes++
	case expired:
	default:
		t.recs[r.Key] = rec
		if !existed {
			t.pending = append(t.pending, r.Key)
			if len(t.pending) > 2*len(t.recs)+1024 {
				t.rebuild() // bounds pending under churn of the same keys
			}
		}
	}
	if now.Sub(t.lastSweep) >= memSweepEvery {
		t.sweep(now)
	}
	return nil
}

func (s *memoryStore) Read(key string, opts ...ReadOption) ([]*Record, error) {
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	now := time.Now()
	if !o.Prefix && !o.Suffix {
		s.mu.RLock()
		db, table := scopeOf(s.opts, o.Database, o.Table)
		var rec *memRecord
		if t := s.tables[tableID{db, table}]; t != nil {
			rec = t.recs[key]
		}
		s.mu.RUnlock()
		if rec == nil {
			return nil, ErrNotFound
		}
		if isExpired(rec.expiresAt, now) {
			s.drop(tableID{db, table}, key, rec)
			return nil, ErrNotFound
		}
		r, err := rec.record(key, now)
		if err != nil {
			return nil, err
		}
		return []*Record{r}, nil
	}
	q := readQuery(key, o)
	var found []*Record
	var ferr error
	s.scan(o.Database, o.Table, q, now, func(k string, rec *memRecord) {
		r, err := rec.record(k, now)
		if err != nil && ferr == nil {
			ferr = err
		}
		found = append(found, r)
	})
	if ferr != nil {
		return nil, ferr
	}
	if found == nil {
		found = []*Record{}
	}
	return found, nil
}

// drop deletes key if it still holds rec (an expired record a read met).
func (s *memoryStore) drop(id tableID, key string, rec *memRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tables[id]; t != nil && t.recs[key] == rec {
		delete(t.recs, key)
		t.deletes++
	}
}

// record returns a copy of the stored record.
func (r *memRecord) record(key string, now time.Time) (*Record, error) {
	md, err := decodeMetadata(r.metadata)
	if err != nil { // not reached: the metadata was encoded by Write
		return nil, err
	}
	return &Record{Key: key, Value: bytes.Clone(r.value), Metadata: md, Expiry: remaining(r.expiresAt, now)}, nil
}

// scan calls fn for each live record of the table that is part of the query's result,
// in key order.
func (s *memoryStore) scan(database, table string, q query, now time.Time, fn func(string, *memRecord)) {
	s.mu.RLock()
	db, tb := scopeOf(s.opts, database, table)
	id := tableID{db, tb}
	t := s.tables[id]
	if t == nil {
		s.mu.RUnlock()
		return
	}
	if t.dirty() {
		s.mu.RUnlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		if t = s.tables[id]; t == nil {
			return
		}
		t.rebuild()
	} else {
		defer s.mu.RUnlock()
	}
	p := pager{q: q}
	i := sort.SearchStrings(t.sorted, q.prefix)
	for ; i < len(t.sorted) && !p.full(); i++ {
		k := t.sorted[i]
		if !strings.HasPrefix(k, q.prefix) {
			break
		}
		rec := t.recs[k]
		if rec == nil || !strings.HasSuffix(k, q.suffix) || isExpired(rec.expiresAt, now) {
			continue
		}
		if p.take() {
			fn(k, rec)
		}
	}
}

func (s *memoryStore) Delete(key string, opts ...DeleteOption) error {
	var o DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	db, table := scopeOf(s.opts, o.Database, o.Table)
	if t := s.tables[tableID{db, table}]; t != nil {
		if _, ok := t.recs[key]; ok {
			delete(t.recs, key)
			t.deletes++
		}
	}
	return nil
}

func (s *memoryStore) List(opts ...ListOption) ([]string, error) {
	var o ListOptions
	for _, f := range opts {
		f(&o)
	}
	keys := []string{}
	s.scan(o.Database, o.Table, listQuery(o), time.Now(), func(k string, _ *memRecord) {
		keys = append(keys, k)
	})
	return keys, nil
}
