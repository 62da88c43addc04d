package broker_test

import (
	"testing"

	"github.com/seed-b3892490/micro/broker"
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
