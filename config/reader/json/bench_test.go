package json

import (
	"fmt"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/config/source"
)

func benchDoc() []byte {
	var b strings.Builder
	b.WriteString(`{"server":{"name":"greeter","address":":8080","timeout":"5s"},"db":{`)
	for i := 0; i < 20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":{"host":"h%d","port":%d}`, i, i, 5000+i)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

// BenchmarkGet is the read path: one Get and a String conversion.
func BenchmarkGet(b *testing.B) {
	v, _ := NewValues(benchDoc())
	b.ReportAllocs()
	for b.Loop() {
		val, _ := v.Get("server", "name")
		if val.String("") != "greeter" {
			b.Fatal("wrong value")
		}
	}
}

// BenchmarkGetParallel reads from many goroutines at once.
func BenchmarkGetParallel(b *testing.B) {
	v, _ := NewValues(benchDoc())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			val, _ := v.Get("db", "k7", "port")
			if val.Int(0) != 5007 {
				b.Error("wrong value")
				return
			}
		}
	})
}

// BenchmarkScan decodes a subtree into a struct.
func BenchmarkScan(b *testing.B) {
	v, _ := NewValues(benchDoc())
	b.ReportAllocs()
	for b.Loop() {
		var s struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		}
		val, _ := v.Get("server")
		if err := val.Scan(&s); err != nil || s.Name != "greeter" {
			b.Fatal(err)
		}
	}
}

// BenchmarkMergeAndValues is the cost of one reload: merge three documents and read them.
func BenchmarkMergeAndValues(b *testing.B) {
	r := NewReader()
	sets := []*source.ChangeSet{
		{Format: "json", Data: benchDoc()},
		{Format: "yaml", Data: []byte("server:\n  name: other\n")},
		{Format: "json", Data: []byte(`{"db":{"k1":{"port":1}}}`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := r.Merge(sets...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Values(m); err != nil {
			b.Fatal(err)
		}
	}
}
