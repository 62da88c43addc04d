package events_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
)

// BenchmarkMemoryPublish measures Publish to a topic nobody consumes (encoding and
// retention only).
func BenchmarkMemoryPublish(b *testing.B) {
	s, _ := events.NewStream()
	defer s.(interface{ Close() error }).Close()
	topic := eventstest.Topic(b)
	msg := map[string]int{"n": 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Publish(topic, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPublishConsume measures publish → consume through the memory stream:
// one publisher, one consumer, with auto ack and with manual ack (the consumer acks
// each event). It reports events/s and the publish-to-receive latency (mean and p99,
// from Event.Timestamp, set by Publish).
func BenchmarkMemoryPublishConsume(b *testing.B) {
	for _, manual := range []bool{false, true} {
		b.Run(fmt.Sprintf("manualAck=%v", manual), func(b *testing.B) {
			s, _ := events.NewStream()
			defer s.(interface{ Close() error }).Close()
			var opts []events.ConsumeOption
			if manual {
				opts = append(opts, events.WithAutoAck(false, time.Minute))
			}
			benchPublishConsume(b, s, opts...)
		})
	}
}

// benchPublishConsume publishes b.N events to a consumer of s and reports throughput
// and latency; the latency includes the time an event waits in the consumer's queue
// while the publisher runs ahead.
func benchPublishConsume(b *testing.B, s events.Stream, opts ...events.ConsumeOption) {
	topic := eventstest.Topic(b)
	ch, err := s.Consume(topic, opts...)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"order":"o-1","cents":1250}`)
	lat := make([]time.Duration, 0, min(b.N, 100000))
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			ev, ok := <-ch
			if !ok {
				return
			}
			if i%max(1, b.N/100000) == 0 && len(lat) < cap(lat) {
				lat = append(lat, time.Since(ev.Timestamp))
			}
			_ = ev.Ack()
		}
	}()
	for i := 0; i < b.N; i++ {
		if err := s.Publish(topic, payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if len(lat) > 0 {
		slices.Sort(lat)
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		b.ReportMetric(float64(sum.Nanoseconds())/float64(len(lat)), "mean-latency-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-latency-ns")
	}
}

// BenchmarkMemoryLatency measures one event at a time: Publish, then the consumer's
// receive (ns/op is the publish-to-receive latency without queueing).
func BenchmarkMemoryLatency(b *testing.B) {
	s, _ := events.NewStream()
	defer s.(interface{ Close() error }).Close()
	topic := eventstest.Topic(b)
	ch, err := s.Consume(topic)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"order":"o-1","cents":1250}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Publish(topic, payload); err != nil {
			b.Fatal(err)
		}
		<-ch
	}
}
