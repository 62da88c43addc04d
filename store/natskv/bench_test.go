package natskv

import (
	"fmt"
	"github.com/seed-b3892490/micro/internal/testutil"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/store"
)

// BenchmarkWrite: one Write of a 256-byte value, a publish the server stores before it
// answers.
func BenchmarkWrite(b *testing.B) {
	s, _ := newStore(b)
	value := make([]byte, 256)
	write(b, s, "warm", "up") // connects and creates the bucket
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Write(&store.Record{Key: fmt.Sprintf("key/%06d", i%10000), Value: value}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWriteParallel: Writes from many goroutines at once on one store.
func BenchmarkWriteParallel(b *testing.B) {
	s, _ := newStore(b)
	value := make([]byte, 256)
	write(b, s, "warm", "up")
	b.ReportAllocs()
	b.SetParallelism(8)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Write(&store.Record{Key: fmt.Sprintf("key/%06d", n.Add(1)%10000), Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRead: one Read of an exact key among 1,000 records of 256 bytes (a direct
// get of the key's last message).
func BenchmarkRead(b *testing.B) {
	s, _ := newStore(b)
	fill(b, s, 1000, make([]byte, 256))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		recs, err := s.Read(fmt.Sprintf("key/%06d", i%1000))
		if err != nil || len(recs[0].Value) != 256 {
			b.Fatal(err)
		}
		i++
	}
}

// bigStore is a store holding 100,000 records key/000000… of 64 bytes, written once for
// the benchmarks that need it; TestMain deletes its bucket.
var bigStore struct {
	once sync.Once
	s    store.Store
	took time.Duration
}

// bigN is 100,000, or 10,000 under the race detector (CI runs each benchmark once with
// it, where writing 100,000 records alone took 32 s).
var bigN = func() int {
	if testutil.Race {
		return 10000
	}
	return 100000
}()

func big(b *testing.B) store.Store {
	bigStore.once.Do(func() {
		requireNATS(b)
		bigStore.s = NewStore(store.Nodes(natsURL()), store.Database("bench_"+unique()))
		start := time.Now()
		fill(b, bigStore.s, bigN, make([]byte, 64))
		bigStore.took = time.Since(start)
	})
	if bigStore.s == nil {
		b.Fatal("the records of the benchmark could not be written")
	}
	b.Logf("%d records written in %s (once per run)", bigN, bigStore.took.Round(time.Millisecond))
	return bigStore.s
}

// BenchmarkListPrefix: List with a prefix that matches 1,000 of 100,000 keys; the server
// filters by the prefix and sends the headers of the matches only.
func BenchmarkListPrefix(b *testing.B) {
	s := big(b)
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.List(store.ListPrefix("key/001"))
		if err != nil || len(keys) != 1000 {
			b.Fatalf("%d keys, %v", len(keys), err)
		}
	}
}

// BenchmarkReadPrefix: Read with a prefix that matches 1,000 of 100,000 records of 64
// bytes.
func BenchmarkReadPrefix(b *testing.B) {
	s := big(b)
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.Read("key/001", store.ReadPrefix())
		if err != nil || len(recs) != 1000 {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}

// BenchmarkListAll: List of all 100,000 keys.
func BenchmarkListAll(b *testing.B) {
	s := big(b)
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.List()
		if err != nil || len(keys) != bigN {
			b.Fatalf("%d keys, %v", len(keys), err)
		}
	}
}

// fill writes n records key/000000… to s from 32 goroutines.
func fill(b *testing.B, s store.Store, n int, value []byte) {
	b.Helper()
	const workers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := s.Write(&store.Record{Key: fmt.Sprintf("key/%06d", i), Value: value}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
