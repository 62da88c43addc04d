package store

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// benchStores are the stores of the benchmarks, each made in dir.
var benchStores = []struct {
	name string
	new  func(dir string) Store
}{
	{"memory", func(string) Store { return NewMemoryStore() }},
	{"file", func(dir string) Store { return NewFileStore(DirOption(dir)) }},
}

// BenchmarkWrite: one Write of a 256-byte value (for the file store, a transaction
// committed to disk).
func BenchmarkWrite(b *testing.B) {
	value := make([]byte, 256)
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.new(b.TempDir())
			defer s.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Write(&Record{Key: fmt.Sprintf("key/%06d", i%10000), Value: value}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkCreate: a Create of a new key, and one refused because the key has a record.
func BenchmarkCreate(b *testing.B) {
	value := make([]byte, 256)
	for _, bs := range benchStores {
		b.Run(bs.name+"/new", func(b *testing.B) {
			s := bs.new(b.TempDir()).(Creator)
			defer s.(Store).Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Create(&Record{Key: fmt.Sprintf("key/%09d", i), Value: value}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(bs.name+"/exists", func(b *testing.B) {
			s := bs.new(b.TempDir()).(Creator)
			defer s.(Store).Close()
			if err := s.Create(&Record{Key: "taken", Value: value}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Create(&Record{Key: "taken", Value: value}); err != ErrExists {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteParallel: Writes from many goroutines at once.
func BenchmarkWriteParallel(b *testing.B) {
	value := make([]byte, 256)
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.new(b.TempDir())
			defer s.Close()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if err := s.Write(&Record{Key: fmt.Sprintf("key/%p/%06d", pb, i%10000), Value: value}); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkRead: one Read of an exact key among 10,000 records of 256 bytes.
func BenchmarkRead(b *testing.B) {
	value := make([]byte, 256)
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.new(b.TempDir())
			defer s.Close()
			fill(b, s, 10000, value)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				recs, err := s.Read(fmt.Sprintf("key/%06d", i%10000))
				if err != nil || len(recs[0].Value) != 256 {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkListPrefix: List with a prefix that matches 1,000 of 100,000 keys. The records
// are written once per store, in bulk.
func BenchmarkListPrefix(b *testing.B) {
	value := make([]byte, 64)
	for _, bs := range benchStores {
		var s Store // filled by the first run of the sub-benchmark, kept for the next
		b.Run(bs.name, func(b *testing.B) {
			if s == nil {
				s = bs.new(b.TempDir())
				fill(b, s, 100000, value)
			}
			b.ReportAllocs()
			for b.Loop() {
				keys, err := s.List(ListPrefix("key/012"))
				if err != nil || len(keys) != 1000 {
					b.Fatalf("%d keys, %v", len(keys), err)
				}
			}
		})
		if s != nil {
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// fill writes n records key/000000… to s: through Write for the memory store, in bulk
// transactions for the file store (100,000 transactions committed one by one would take
// minutes).
func fill(b *testing.B, s Store, n int, value []byte) {
	b.Helper()
	fs, ok := s.(*fileStore)
	if !ok {
		for i := range n {
			if err := s.Write(&Record{Key: fmt.Sprintf("key/%06d", i), Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	if err := s.Write(&Record{Key: "key/000000", Value: value}); err != nil { // opens the file
		b.Fatal(err)
	}
	fs.mu.RLock()
	d, err := fs.db(DefaultDatabase, true)
	fs.mu.RUnlock()
	if err != nil {
		b.Fatal(err)
	}
	enc := encodeRecord(value, nil, 0)
	for start := 0; start < n; start += 10000 {
		if err := d.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(dataBucket(DefaultTable))
			for i := start; i < min(start+10000, n); i++ {
				if err := bk.Put([]byte(fmt.Sprintf("key/%06d", i)), enc); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
