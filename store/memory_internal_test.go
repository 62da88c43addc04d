package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMemoryStoreKeyOrderUnderChurn: writes, rewrites and deletes of a small key space,
// checked against a model after every few operations: the ordered keys of pattern reads
// and lists stay right through the rebuilds of the sorted index.
func TestMemoryStoreKeyOrderUnderChurn(t *testing.T) {
	s := NewMemoryStore().(*memoryStore)
	model := map[string]string{}
	r := rand.New(rand.NewPCG(11, 12))
	for op := range 20000 {
		k := fmt.Sprintf("k%02d/%d", r.IntN(40), r.IntN(3))
		switch r.IntN(3) {
		case 0, 1:
			v := fmt.Sprint(op)
			mustWrite(t, s, k, v)
			model[k] = v
		case 2:
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		}
		if op%97 != 0 {
			continue
		}
		prefix := fmt.Sprintf("k%d", r.IntN(4))
		var want []string
		for k := range model {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		got, err := s.List(ListPrefix(prefix))
		if err != nil || !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("op %d: List prefix %s:\n got %q\nwant %q", op, prefix, got, want)
		}
		recs, _ := s.Read(prefix, ReadPrefix())
		for i, rec := range recs {
			if rec.Key != want[i] || string(rec.Value) != model[rec.Key] {
				t.Fatalf("op %d: record %d is %s=%s", op, i, rec.Key, rec.Value)
			}
		}
	}
	tb := s.tables[tableID{"micro", "micro"}]
	if len(tb.pending) > 2*len(tb.recs)+1024 {
		t.Fatalf("%d pending keys for %d records: not bounded", len(tb.pending), len(tb.recs))
	}
}

// TestMemoryStoreSweepsOnWrite: a write a minute after the last sweep deletes the expired
// records of its table.
func TestMemoryStoreSweepsOnWrite(t *testing.T) {
	s := NewMemoryStore().(*memoryStore)
	for i := range 10 {
		mustWrite(t, s, fmt.Sprint("e", i), "v", WriteTTL(time.Nanosecond))
	}
	mustWrite(t, s, "kept", "v", WriteTTL(time.Hour))
	tb := s.tables[tableID{"micro", "micro"}]
	if len(tb.recs) != 11 {
		t.Fatalf("%d records", len(tb.recs))
	}
	tb.lastSweep = time.Now().Add(-2 * memSweepEvery)
	mustWrite(t, s, "trigger", "v")
	if len(tb.recs) != 2 {
		t.Fatalf("%d records after the sweep, want 2", len(tb.recs))
	}
	if keys, _ := s.List(); !slices.Equal(keys, []string{"kept", "trigger"}) {
		t.Fatalf("List: %q", keys)
	}
	// a read that meets an expired record deletes it
	mustWrite(t, s, "short", "v", WriteTTL(time.Nanosecond))
	if _, err := s.Read("short"); err != ErrNotFound {
		t.Fatal(err)
	}
	if _, ok := tb.recs["short"]; ok {
		t.Fatal("the expired record a read met is still there")
	}
}
