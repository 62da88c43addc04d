package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/store"
)

// benchStore returns a store of the shared server with a database of its own, whose
// records are deleted when the benchmark ends.
func benchStore(b *testing.B) store.Store {
	b.Helper()
	s := newStore(b)
	cleanupScope(b, s.Options().Database, store.DefaultTable)
	return s
}

// fill writes n records key/000000… of value to the store's table, in pipelines of 1,000
// SETs (100,000 Writes one by one would take most of a minute).
func fill(b *testing.B, s store.Store, n int, value []byte) {
	b.Helper()
	rdb := rawClient(b)
	ns := tablePrefix(s.Options().Database, s.Options().Table)
	blob := encodeRecord(value, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	for from := 0; from < n; from += 1000 {
		p := rdb.Pipeline()
		for i := from; i < min(from+1000, n); i++ {
			p.Set(ctx, fmt.Sprintf("%skey/%06d", ns, i), blob, 0)
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if n >= 100000 {
		b.Logf("wrote %d records in %s", n, time.Since(start).Round(time.Millisecond))
	}
}

// BenchmarkWrite: one Write of a 256-byte value (one SET, one round trip).
func BenchmarkWrite(b *testing.B) {
	s := benchStore(b)
	value := make([]byte, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Write(&store.Record{Key: fmt.Sprintf("key/%06d", i%10000), Value: value}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWriteParallel: Writes from many goroutines at once, over the store's pool.
func BenchmarkWriteParallel(b *testing.B) {
	s := benchStore(b)
	value := make([]byte, 256)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := s.Write(&store.Record{Key: fmt.Sprintf("key/%p/%06d", pb, i%10000), Value: value}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkRead: one Read of an exact key among 10,000 records of 256 bytes (GET and PTTL
// in one MULTI/EXEC round trip).
func BenchmarkRead(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 10000, make([]byte, 256))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		recs, err := s.Read(fmt.Sprintf("key/%06d", i%10000))
		if err != nil || len(recs[0].Value) != 256 {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReadParallel: Reads from many goroutines at once.
func BenchmarkReadParallel(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 10000, make([]byte, 256))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if recs, err := s.Read(fmt.Sprintf("key/%06d", i%10000)); err != nil || len(recs[0].Value) != 256 {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkListPrefix: List with a prefix that matches 1,000 of 100,000 keys: a SCAN pass
// over the whole Redis database (the table's 100,000 keys and whatever else it holds).
// The records are written once, in bulk.
func BenchmarkListPrefix(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 100000, make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.List(store.ListPrefix("key/012"))
		if err != nil || len(keys) != 1000 {
			b.Fatalf("%d keys, %v", len(keys), err)
		}
	}
}

// BenchmarkReadPrefix: Read with a prefix that matches 100 of 100,000 records: the SCAN
// pass, then the records in one MULTI/EXEC.
func BenchmarkReadPrefix(b *testing.B) {
	s := benchStore(b)
	fill(b, s, 100000, make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.Read("key/0123", store.ReadPrefix())
		if err != nil || len(recs) != 100 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}
