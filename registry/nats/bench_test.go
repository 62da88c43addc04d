package nats_test

import (
	"testing"
	"time"

	"github.com/seed-b3892490/micro/registry"
	natsreg "github.com/seed-b3892490/micro/registry/nats"
)

// BenchmarkRegister measures a renewal: one announcement and the server's confirmation.
func BenchmarkRegister(b *testing.B) {
	r := newRegistry(b, topics()...)
	s := service(serviceName(b), "1", "a")
	s.Endpoints = []*registry.Endpoint{{Name: "Greeter.Hello", Request: &registry.Value{Name: "Request", Type: "Request"}, Response: &registry.Value{Name: "Response", Type: "Response"}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetService measures a lookup of a service with one node, answered by another
// instance: with Quorum(1) it returns at the first answer; with the default it collects
// answers for the whole Timeout (100 ms).
func BenchmarkGetService(b *testing.B) {
	opts := topics()
	owner := newRegistry(b, opts...)
	svc := serviceName(b)
	if err := owner.Register(service(svc, "1", "a")); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts []registry.Option
	}{
		{"Quorum1", []registry.Option{natsreg.Quorum(1), registry.Timeout(time.Second)}},
		{"Timeout100ms", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := newRegistry(b, append(opts, bc.opts...)...)
			b.ReportAllocs()
			for b.Loop() {
				got, err := client.GetService(svc)
				if err != nil || len(got) != 1 || len(got[0].Nodes) != 1 {
					b.Fatalf("lookup %v %v", got, err)
				}
			}
		})
	}
}
