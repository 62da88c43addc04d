package broker_test

import (
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/registry"
)

// BenchmarkPublish measures one synchronous Publish of a small message with headers, to
// one subscriber and to a queue group of three (one of which receives it).
func BenchmarkPublish(b *testing.B) {
	msg := &broker.Message{
		Header: map[string]string{"Content-Type": "application/json", "Micro-Topic": "t"},
		Body:   []byte(`{"id":1,"name":"bench"}`),
	}
	nop := func(broker.Event) error { return nil }
	for _, bc := range []struct {
		name  string
		subs  int
		queue string
	}{
		{"subscriber", 1, ""},
		{"queue-3", 3, "q"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			br := connected(b)
			for range bc.subs {
				subscribe(b, br, "t", nop, broker.Queue(bc.queue)) // Queue("") is no queue
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := br.Publish("t", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishParallel measures Publish to one subscriber from many goroutines.
func BenchmarkPublishParallel(b *testing.B) {
	br := connected(b)
	subscribe(b, br, "t", func(broker.Event) error { return nil })
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{}`)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Publish("t", msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHTTPPublish measures publish→deliver over the HTTP broker on loopback: a
// 100-byte message from one broker to a subscriber on another, Publish returning once
// the subscriber's handler has run (so ns/op is the delivery latency, and msgs/s the
// throughput of one publisher); parallel, from many goroutines.
func BenchmarkHTTPPublish(b *testing.B) {
	body := make([]byte, 100)
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/octet-stream"}, Body: body}
	setup := func(b *testing.B) broker.Broker {
		reg := registry.NewMemoryRegistry()
		pub, sub := httpBrokers(reg)(b), httpBrokers(reg)(b)
		for _, br := range []broker.Broker{pub, sub} {
			if err := br.Connect(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = br.Disconnect() })
		}
		if _, err := sub.Subscribe("bench", func(broker.Event) error { return nil }); err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish("bench", msg); err != nil { // warm: the cache and a connection
			b.Fatal(err)
		}
		return pub
	}
	b.Run("serial", func(b *testing.B) {
		pub := setup(b)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			if err := pub.Publish("bench", msg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		pub := setup(b)
		b.ReportAllocs()
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.Publish("bench", msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}
