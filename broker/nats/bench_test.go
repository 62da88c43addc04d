package nats_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
)

// benchHeaders are the headers of the "headers" variants: what a micro event carries.
var benchHeaders = map[string]string{"Content-Type": "application/protobuf", "Micro-Topic": "bench", "Micro-Id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}

// benchMessage returns a message with a 100-byte body, and benchHeaders if asked.
func benchMessage(headers bool) *broker.Message {
	m := &broker.Message{Body: make([]byte, 100)}
	if headers {
		m.Header = benchHeaders
	}
	return m
}

// BenchmarkThroughput publishes b.N 100-byte messages from one broker instance to a
// subscriber on another (two connections through the server) and reports the delivered
// messages per second, from the first Publish to the last delivery. B/op and allocs/op
// cover both ends: publishing, reading, decoding and the event.
func BenchmarkThroughput(b *testing.B) {
	for _, v := range []struct {
		name    string
		headers bool
	}{{"body", false}, {"headers", true}} {
		b.Run(v.name, func(b *testing.B) {
			// pending limits large enough that nothing is dropped: this measures delivery
			sb := connected(b, natsbroker.PendingLimits(1<<24, 1<<30))
			pub := connected(b)
			tp := topic(b)
			var got atomic.Int64
			done := make(chan struct{})
			target := int64(b.N)
			sub, err := sb.Subscribe(tp, func(broker.Event) error {
				if got.Add(1) == target {
					close(done)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			m := benchMessage(v.headers)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := pub.Publish(tp, m); err != nil {
					b.Fatal(err)
				}
			}
			timeout := time.NewTimer(time.Minute)
			defer timeout.Stop()
			select {
			case <-done:
			case <-timeout.C:
				b.Fatalf("%d of %d delivered within a minute, %d dropped", got.Load(), b.N, dropped(b, sub))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			if d := dropped(b, sub); d != 0 {
				b.Errorf("%d dropped", d)
			}
		})
	}
}

// BenchmarkLatency measures round trips: publish one 100-byte message, wait until the
// subscriber's handler (on another broker instance) has it, repeat. ns/op is the time per
// delivery; p50 and p99 are reported too.
func BenchmarkLatency(b *testing.B) {
	for _, v := range []struct {
		name    string
		headers bool
	}{{"body", false}, {"headers", true}} {
		b.Run(v.name, func(b *testing.B) {
			sb, pub := connected(b), connected(b)
			tp := topic(b)
			arrived := make(chan struct{}, 1)
			if _, err := sb.Subscribe(tp, func(broker.Event) error {
				arrived <- struct{}{}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			m := benchMessage(v.headers)
			samples := make([]time.Duration, 0, b.N)
			timeout := time.NewTimer(time.Minute)
			defer timeout.Stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := pub.Publish(tp, m); err != nil {
					b.Fatal(err)
				}
				select {
				case <-arrived:
				case <-timeout.C:
					b.Fatalf("message %d not delivered; the whole run is bounded by a minute", i)
				}
				samples = append(samples, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
