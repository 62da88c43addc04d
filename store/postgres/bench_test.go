package postgres

import (
	"fmt"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

// fill writes n records key/000000… with value to the store's table in one statement
// (100,000 Writes one by one would take minutes), and analyzes the table.
func fill(b *testing.B, s *pgStore, db string, n int, value []byte) {
	b.Helper()
	if err := s.Write(&store.Record{Key: "key/000000", Value: value}); err != nil { // creates the table
		b.Fatal(err)
	}
	c := admin(b)
	tb := table{db, store.DefaultTable}
	execSQL(b, c, "INSERT INTO "+tb.ident()+" (key, value) SELECT convert_to('key/' || lpad(i::text, 6, '0'), 'UTF8'), $1"+
		" FROM generate_series(1, $2::int - 1) i", value, n)
	execSQL(b, c, "ANALYZE "+tb.ident())
}

// BenchmarkWrite: one Write of a 256-byte value (an upsert committed by the server).
func BenchmarkWrite(b *testing.B) {
	s, _ := newStore(b)
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

// BenchmarkWriteParallel: Writes from many goroutines at once, through the store's pool.
func BenchmarkWriteParallel(b *testing.B) {
	s, _ := newStore(b)
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

// BenchmarkRead: one Read of an exact key among 10,000 records of 256 bytes.
func BenchmarkRead(b *testing.B) {
	s, db := newStore(b)
	fill(b, s, db, 10000, make([]byte, 256))
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

// BenchmarkReadPrefix: a Read with a prefix that matches 100 of 10,000 records.
func BenchmarkReadPrefix(b *testing.B) {
	s, db := newStore(b)
	fill(b, s, db, 10000, make([]byte, 256))
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.Read("key/0012", store.ReadPrefix())
		if err != nil || len(recs) != 100 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}

// BenchmarkListPrefix: List with a prefix that matches 1,000 of 100,000 keys.
func BenchmarkListPrefix(b *testing.B) {
	s, db := newStore(b)
	fill(b, s, db, 100000, make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.List(store.ListPrefix("key/012"))
		if err != nil || len(keys) != 1000 {
			b.Fatalf("%d keys, %v", len(keys), err)
		}
	}
}
