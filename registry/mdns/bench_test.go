package mdns_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/mdns"
)

// BenchmarkRegister measures a renewal (what a server does every interval) and a change
// (a new announcement) of a node.
func BenchmarkRegister(b *testing.B) {
	testutil.NeedNetns(b)
	r := mdns.NewRegistry()
	defer r.(interface{ Close() error }).Close()
	s := node("bench", "bench-1", "10.253.0.1:1")
	b.Run("renew", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := r.Register(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("change", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s.Nodes[0].Metadata["n"] = fmt.Sprint(i)
			if err := r.Register(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetService is one lookup across the network: it costs the lookup window
// (100 ms by default; 10 ms here) plus the answers.
func BenchmarkGetService(b *testing.B) {
	testutil.NeedNetns(b)
	owner := newRegistry(b)
	if err := owner.Register(node("bench-get", "bench-get-1", "10.253.0.1:1")); err != nil {
		b.Fatal(err)
	}
	r := newRegistry(b, registry.Timeout(10*time.Millisecond))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		got, err := r.GetService("bench-get")
		if err != nil || len(got) != 1 {
			b.Fatal(got, err)
		}
	}
}
