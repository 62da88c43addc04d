package rabbitmq_test

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
)

// benchMessage is a 100-byte message with two headers.
func benchMessage() *broker.Message {
	return &broker.Message{
		Header: map[string]string{"Content-Type": "application/octet-stream", "Micro-Topic": "bench"},
		Body:   make([]byte, 100),
	}
}

// BenchmarkPublish measures one confirmed Publish of a 100-byte message to a topic with
// one subscriber (ns/op is the publisher's wait for the server's confirmation), from one
// goroutine and from 16.
func BenchmarkPublish(b *testing.B) {
	for _, publishers := range []int{1, 16} {
		b.Run("publishers="+strconv.Itoa(publishers), func(b *testing.B) {
			br := connected(b)
			tp := topicFor(b)
			subscribe(b, br, tp, func(broker.Event) error { return nil })
			msg := benchMessage()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range publishers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := br.Publish(tp, msg); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkThroughput measures publish → deliver: b.N 100-byte messages from 16
// publishers on one broker to a subscriber on another, until the last is handled
// (msgs/s), to a broadcast subscriber and to a queue group of two.
func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		name  string
		group bool
	}{{"broadcast", false}, {"queue-2", true}} {
		b.Run(bc.name, func(b *testing.B) {
			pub := connected(b)
			tp := topicFor(b)
			var got atomic.Int64
			all := make(chan struct{})
			h := func(broker.Event) error {
				if got.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			}
			if bc.group {
				q := "bench" + unique()
				newAdmin(b, "").deleteQueueLater(b, groupQueue(q, tp))
				subscribe(b, connected(b), tp, h, broker.Queue(q))
				subscribe(b, connected(b), tp, h, broker.Queue(q))
			} else {
				subscribe(b, connected(b), tp, h)
			}
			msg := benchMessage()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := pub.Publish(tp, msg); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			select {
			case <-all:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d delivered after a minute", got.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLatency measures publish → deliver latency of a 100-byte message, one at a
// time, publisher and subscriber on separate brokers: ns/op is the mean, p50-µs and
// p99-µs the percentiles.
func BenchmarkLatency(b *testing.B) {
	pub, sub := connected(b), connected(b)
	tp := topicFor(b)
	got := make(chan struct{}, 1)
	subscribe(b, sub, tp, func(broker.Event) error { got <- struct{}{}; return nil })
	msg := benchMessage()
	// the subscription is live once a first message arrives
	if err := pub.Publish(tp, msg); err != nil {
		b.Fatal(err)
	}
	<-got
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := pub.Publish(tp, msg); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no delivery within 10 s")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
