package storetest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// mutantEnv names the broken store TestHelperMutant runs the suite over.
const mutantEnv = "MICRO_TEST_STORETEST_MUTANT"

// mutants are stores broken in one way each (several are Go Micro v5.3.0's bugs), and the
// suite's test that must catch it.
var mutants = map[string]struct {
	test string
	wrap func(store.Store) store.Store
}{
	"wrapped-not-found": {"ReadMissing", func(s store.Store) store.Store { return wrappedNotFound{s} }},
	"limit-first":       {"Queries", func(s store.Store) store.Store { return limitFirst{s} }},
	"prefix-needs-limit": {"Queries", func(s store.Store) store.Store {
		return prefixNeedsLimit{s}
	}},
	"unsorted":            {"Order", func(s store.Store) store.Store { return unsorted{s} }},
	"no-ttl":              {"Expiry", func(s store.Store) store.Store { return noTTL{s} }},
	"one-table":           {"Scopes", func(s store.Store) store.Store { return oneTable{s} }},
	"shared-records":      {"Copies", func(s store.Store) store.Store { return &sharedRecords{Store: s} }},
	"delete-missing-fail": {"Delete", func(s store.Store) store.Store { return deleteMissingFails{s} }},
	"create-overwrites":   {"Create", func(s store.Store) store.Store { return createOverwrites{s} }},
	"create-not-atomic":   {"Create", func(s store.Store) store.Store { return createNotAtomic{s} }},
}

// createOverwrites creates by writing: a record already there is replaced.
type createOverwrites struct{ store.Store }

func (c createOverwrites) Create(r *store.Record, opts ...store.WriteOption) error {
	return c.Write(r, opts...)
}

// createNotAtomic reads, then writes if it found nothing: two creators racing both win.
type createNotAtomic struct{ store.Store }

func (c createNotAtomic) Create(r *store.Record, opts ...store.WriteOption) error {
	var o store.WriteOptions
	for _, f := range opts {
		f(&o)
	}
	if err := store.CheckRecord(r); err != nil {
		return err
	}
	if _, err := c.Read(r.Key, store.ReadFrom(o.Database, o.Table)); err != store.ErrNotFound {
		if err == nil {
			return store.ErrExists
		}
		return err
	}
	time.Sleep(time.Millisecond) // the window between the check and the write, widened
	return c.Write(r, opts...)
}

// TestHelperMutant runs the suite over the broken store named by
// MICRO_TEST_STORETEST_MUTANT, in a process of its own (TestSuiteCatchesBrokenStores).
func TestHelperMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		return
	}
	m := mutants[name]
	storetest.Run(t, func(testing.TB) store.Store { return m.wrap(store.NewMemoryStore()) })
}

// TestSuiteCatchesBrokenStores: the suite fails, in the test meant to, for each of the
// broken stores.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMutant$/^"+m.test+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store broken by %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestHelperMutant/"+m.test) {
				t.Fatalf("the suite failed, but not in %s:\n%s", m.test, out)
			}
		})
	}
}

// TestSuitePassesTheMemoryStore is the control: the suite over the memory store itself,
// through the same path as the mutants.
func TestSuitePassesTheMemoryStore(t *testing.T) {
	storetest.Run(t, func(testing.TB) store.Store { return store.NewMemoryStore() })
}

type wrappedNotFound struct{ store.Store }

func (w wrappedNotFound) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	recs, err := w.Store.Read(key, opts...)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read %q: %w", key, err)
	}
	return recs, err
}

// limitFirst applies offset and limit (as an end index) before the filters, as Go Micro
// v5.3.0's memory store did.
type limitFirst struct{ store.Store }

func (l limitFirst) List(opts ...store.ListOption) ([]string, error) {
	var o store.ListOptions
	for _, f := range opts {
		f(&o)
	}
	all, err := l.Store.List(store.ListFrom(o.Database, o.Table))
	if err != nil {
		return nil, err
	}
	if o.Limit > 0 && o.Offset < o.Limit && int(o.Limit) <= len(all) {
		all = all[o.Offset:o.Limit]
	}
	var out []string
	for _, k := range all {
		if strings.HasPrefix(k, o.Prefix) && strings.HasSuffix(k, o.Suffix) {
			out = append(out, k)
		}
	}
	return out, nil
}

// prefixNeedsLimit returns nothing for a pattern read without a limit, as Go Micro
// v5.3.0's memory store did.
type prefixNeedsLimit struct{ store.Store }

func (p prefixNeedsLimit) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	var o store.ReadOptions
	for _, f := range opts {
		f(&o)
	}
	if (o.Prefix || o.Suffix) && o.Limit == 0 {
		return []*store.Record{}, nil
	}
	return p.Store.Read(key, opts...)
}

type unsorted struct{ store.Store }

func (u unsorted) List(opts ...store.ListOption) ([]string, error) {
	keys, err := u.Store.List(opts...)
	slices.Reverse(keys)
	return keys, err
}

// noTTL drops the expiry options of writes.
type noTTL struct{ store.Store }

func (n noTTL) Write(r *store.Record, opts ...store.WriteOption) error {
	var o store.WriteOptions
	for _, f := range opts {
		f(&o)
	}
	c := *r
	c.Expiry = 0
	return n.Store.Write(&c, store.WriteTo(o.Database, o.Table))
}

// oneTable ignores the database and table of each call.
type oneTable struct{ store.Store }

func (o oneTable) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	var ro store.ReadOptions
	for _, f := range opts {
		f(&ro)
	}
	var keep []store.ReadOption
	if ro.Prefix {
		keep = append(keep, store.ReadPrefix())
	}
	if ro.Suffix {
		keep = append(keep, store.ReadSuffix())
	}
	return o.Store.Read(key, append(keep, store.ReadLimit(ro.Limit), store.ReadOffset(ro.Offset))...)
}

func (o oneTable) Write(r *store.Record, opts ...store.WriteOption) error {
	var wo store.WriteOptions
	for _, f := range opts {
		f(&wo)
	}
	return o.Store.Write(r, store.WriteTTL(wo.TTL), store.WriteExpiry(wo.Expiry))
}

func (o oneTable) List(opts ...store.ListOption) ([]string, error) {
	var lo store.ListOptions
	for _, f := range opts {
		f(&lo)
	}
	return o.Store.List(store.ListPrefix(lo.Prefix), store.ListSuffix(lo.Suffix), store.ListLimit(lo.Limit), store.ListOffset(lo.Offset))
}

func (o oneTable) Delete(key string, opts ...store.DeleteOption) error { return o.Store.Delete(key) }

// sharedRecords returns the same record to every exact read of a key.
type sharedRecords struct {
	store.Store
	mu    sync.Mutex
	cache map[string]*store.Record
}

func (s *sharedRecords) Read(key string, opts ...store.ReadOption) ([]*store.Record, error) {
	recs, err := s.Store.Read(key, opts...)
	if err != nil || len(recs) != 1 || recs[0].Key != key {
		return recs, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]*store.Record{}
	}
	if r, ok := s.cache[key]; ok {
		return []*store.Record{r}, nil
	}
	s.cache[key] = recs[0]
	return recs, nil
}

type deleteMissingFails struct{ store.Store }

func (d deleteMissingFails) Delete(key string, opts ...store.DeleteOption) error {
	var o store.DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	if _, err := d.Store.Read(key, store.ReadFrom(o.Database, o.Table)); err != nil {
		return err
	}
	return d.Store.Delete(key, opts...)
}

func ExampleNames() {
	fmt.Println(strings.Join(storetest.Names(), " "))
	// Output: Options ReadMissing RoundTripBinary Metadata Overwrite Copies Values Keys EmptyKey Delete Queries Order Expiry ExpiryInPast Scopes Concurrent Create Reopen CloseTwice
}
