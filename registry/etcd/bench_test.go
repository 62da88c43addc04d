//go:build linux

package etcd_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
)

// BenchmarkRegister: a server's periodic re-registration. Renew: nothing changed, so one
// lease renewal; Write: the node changed, so a renewal and a write.
func BenchmarkRegister(b *testing.B) {
	r := newRegistry(b, testutil.EtcdEndpoint(b))
	b.Run("Renew", func(b *testing.B) {
		s := node(uniqueName("bench-renew"), "1", "a")
		if err := r.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
			b.Fatal(err)
		}
		defer r.Deregister(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := r.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Write", func(b *testing.B) {
		s := node(uniqueName("bench-write"), "1", "a")
		defer r.Deregister(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.Nodes[0].Address = fmt.Sprintf("127.0.0.1:%d", 1+i%2)
			if err := r.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGetService: a lookup of a service of three nodes (what a cache miss costs).
func BenchmarkGetService(b *testing.B) {
	r := newRegistry(b, testutil.EtcdEndpoint(b))
	name := uniqueName("bench-get")
	for _, id := range []string{"a", "b", "c"} {
		s := node(name, "1", id)
		s.Endpoints = []*registry.Endpoint{{Name: "Greeter.Hello", Request: &registry.Value{Name: "Request", Type: "Request"}, Response: &registry.Value{Name: "Response", Type: "Response"}}}
		if err := r.Register(s); err != nil {
			b.Fatal(err)
		}
		defer r.Deregister(s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		svcs, err := r.GetService(name)
		if err != nil || len(svcs[0].Nodes) != 3 {
			b.Fatal(svcs, err)
		}
	}
}
