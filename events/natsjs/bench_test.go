package natsjs_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
	"github.com/seed-b3892490/micro/events/natsjs"
)

// BenchmarkPublish measures a synchronous Publish (stored by the server) and an
// asynchronous one.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s := newStream(b, natsjs.SynchronousPublish(sync))
			topic := eventstest.Topic(b)
			payload := []byte(`{"order":"o-1","cents":1250}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Publish(topic, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishConsume measures publish → consume through JetStream: one publisher
// (synchronous, or asynchronous to see what the consumer takes), one consumer (auto
// ack, or manual ack acknowledging each event). It reports events/s and
// publish-to-receive latency (mean and p99, from Event.Timestamp), which includes
// queueing while the publisher runs ahead.
func BenchmarkPublishConsume(b *testing.B) {
	for _, c := range []struct{ manual, sync bool }{{false, true}, {true, true}, {false, false}, {true, false}} {
		b.Run(fmt.Sprintf("manualAck=%v/syncPublish=%v", c.manual, c.sync), func(b *testing.B) {
			manual := c.manual
			s := newStream(b, natsjs.SynchronousPublish(c.sync))
			var opts []events.ConsumeOption
			if manual {
				opts = append(opts, events.WithAutoAck(false, time.Minute))
			}
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
					select {
					case ev := <-ch:
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(ev.Timestamp))
						}
						_ = ev.Ack()
					case <-time.After(10 * time.Second):
						b.Errorf("received %d of %d", i, b.N)
						return
					}
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
		})
	}
}

// BenchmarkLatency measures one event at a time: a synchronous Publish, then the
// consumer's receive (ns/op is the publish-to-receive round trip).
func BenchmarkLatency(b *testing.B) {
	for _, manual := range []bool{false, true} {
		b.Run(fmt.Sprintf("manualAck=%v", manual), func(b *testing.B) {
			s := newStream(b)
			var opts []events.ConsumeOption
			if manual {
				opts = append(opts, events.WithAutoAck(false, time.Minute))
			}
			topic := eventstest.Topic(b)
			ch, err := s.Consume(topic, opts...)
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte(`{"order":"o-1","cents":1250}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Publish(topic, payload); err != nil {
					b.Fatal(err)
				}
				select {
				case ev := <-ch:
					_ = ev.Ack()
				case <-time.After(10 * time.Second):
					b.Fatal("no event within 10 s")
				}
			}
		})
	}
}
