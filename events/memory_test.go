package events_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
)

// testWriter sends log records to t.Log: expected warnings (dead letters) show only
// when a test fails or with -v.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newMemory returns a memory stream closed at the end of the test.
func newMemory(t *testing.T, opts ...events.Option) events.Stream {
	t.Helper()
	s, err := events.NewStream(append([]events.Option{events.WithLogger(logger.NewLogger(logger.WithOutput(testWriter{t})))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.(io.Closer).Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Stream { return newMemory(t) })
}

// TestE4AckSemantics is battery row E4 on the memory stream.
func TestE4AckSemantics(t *testing.T) {
	eventstest.AckSemantics(t, func(t *testing.T) events.Stream { return newMemory(t) }, time.Second)
}

// TestE5SlowConsumer is battery row E5 on the memory stream: a consumer 10× slower than
// the publisher. With backpressure the publisher slows to the consumer's pace, the
// queue never holds more than its size, memory stays flat, and every event published
// is delivered; with a short publish timeout the publisher gets ErrFull instead,
// counted in Stats().Rejected. CI runs 1.5 s; MICRO_TEST_LONG=1 runs 30 s.
func TestE5SlowConsumer(t *testing.T) {
	run := 1500 * time.Millisecond
	if testutil.Long() {
		run = 30 * time.Second
	}
	const queue, tick, perTick = 64, time.Millisecond, 10 // the publisher wants 10 events a tick, the consumer takes 1
	s := newMemory(t, events.WithQueueSize(queue))
	r := s.(events.Reporter)
	topic := eventstest.Topic(t)
	ch := eventstest.Consume(t, s, topic)
	heapBefore := heapInuse()

	stop := make(chan struct{})
	var received atomic.Int64
	consumerDone := make(chan struct{})
	go func() { // the slow consumer: one event per tick
		defer close(consumerDone)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
			case <-stop:
				return
			}
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
				received.Add(1)
			case <-stop:
				return
			}
		}
	}()

	var published, blockedTicks int64
	maxQueued := 0
	tk := time.NewTicker(tick)
	end := time.After(run)
	for publishing := true; publishing; {
		select {
		case <-tk.C:
			start := time.Now()
			for i := 0; i < perTick; i++ {
				if err := s.Publish(topic, published); err != nil {
					t.Fatalf("publish %d: %v", published, err)
				}
				published++
			}
			if time.Since(start) > tick {
				blockedTicks++
			}
			if q := r.Stats().Queued; q > maxQueued {
				maxQueued = q
			}
		case <-end:
			publishing = false
		}
	}
	tk.Stop()
	heapDuring := heapInuse()
	got := received.Load()
	// The publisher may be ahead of the consumer by the queue and the one event the
	// consumer's goroutine holds, never more.
	if published > got+queue+1 {
		t.Errorf("published %d, received %d: more than the queue (%d) ahead", published, got, queue)
	}
	if maxQueued > queue {
		t.Errorf("the queue held %d events, over its size %d", maxQueued, queue)
	}
	wanted := int64(run/tick) * perTick
	if published > wanted/2 {
		t.Errorf("published %d of the %d wanted: the publisher got no backpressure", published, wanted)
	}
	if growth := int64(heapDuring) - int64(heapBefore); growth > 64<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
	// Every event published is delivered: let the consumer catch up.
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < published {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d published", received.Load(), published)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	close(stop)
	<-consumerDone
	t.Logf("%s: publisher wanted %d events, published %d (blocked in %d ticks), consumer received %d; max queued %d (size %d); heap %+d KiB",
		run, wanted, published, blockedTicks, received.Load(), maxQueued, queue, (int64(heapDuring)-int64(heapBefore))>>10)

	// Without a reader, a short publish timeout turns the wait into ErrFull.
	s2 := newMemory(t, events.WithQueueSize(queue), events.WithPublishTimeout(20*time.Millisecond))
	topic2 := eventstest.Topic(t)
	ch2 := eventstest.Consume(t, s2, topic2) // never read
	var full int
	for i := 0; i < queue+10; i++ {
		err := s2.Publish(topic2, i)
		switch {
		case errors.Is(err, events.ErrFull):
			full++
		case err != nil:
			t.Fatal(err)
		}
	}
	// One event is held by the consumer's goroutine, queue more wait in the queue.
	if full != 10-1 || s2.(events.Reporter).Stats().Rejected != uint64(full) {
		t.Errorf("%d ErrFull, Stats %+v: want %d, counted in Rejected", full, s2.(events.Reporter).Stats(), 10-1)
	}
	for i := 0; i < queue+1; i++ { // what was accepted is all there, in order
		ev := eventstest.Receive(t, ch2, time.Second)
		var n int
		if err := ev.Unmarshal(&n); err != nil || n != i {
			t.Fatalf("event %d: %d %v", i, n, err)
		}
	}
	eventstest.NoEvent(t, ch2, 50*time.Millisecond)
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestPublishWaitEndsWithContext: a publisher waiting for room returns the context's
// error when it ends, and queued the event for no one.
func TestPublishWaitEndsWithContext(t *testing.T) {
	s := newMemory(t, events.WithQueueSize(1))
	topic := eventstest.Topic(t)
	ch := eventstest.Consume(t, s, topic)
	for i := 0; i < 2; i++ { // one held by the consumer's goroutine, one queued
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := s.Publish(topic, 2, events.WithPublishContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full queue: %v, want context.DeadlineExceeded", err)
	}
	for i := 0; i < 2; i++ {
		ev := eventstest.Receive(t, ch, time.Second)
		var n int
		if err := ev.Unmarshal(&n); err != nil || n != i {
			t.Fatalf("event %d: %d %v", i, n, err)
		}
	}
	eventstest.NoEvent(t, ch, 50*time.Millisecond)
}

// TestRetentionBounds: WithOffset replays at most RetainEvents events and RetainBytes
// bytes, the latest; a negative bound retains nothing.
func TestRetentionBounds(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	replayed := func(t *testing.T, s events.Stream, topic string) []int {
		t.Helper()
		ch := eventstest.Consume(t, s, topic, events.WithOffset(past))
		var got []int
		for {
			select {
			case ev := <-ch:
				var n int
				if err := ev.Unmarshal(&n); err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
			case <-time.After(50 * time.Millisecond):
				return got
			}
		}
	}
	publishN := func(t *testing.T, s events.Stream, topics ...string) {
		for i := 0; i < 10; i++ {
			for _, topic := range topics {
				if err := s.Publish(topic, i); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Run("Events", func(t *testing.T) {
		s := newMemory(t, events.WithRetention(6, 1<<20))
		a, b := eventstest.Topic(t)+".a", eventstest.Topic(t)+".b"
		publishN(t, s, a, b) // 20 events, the bound is over both topics
		if got := replayed(t, s, a); !slices.Equal(got, []int{7, 8, 9}) {
			t.Errorf("replayed %v, want the latest three of the topic", got)
		}
	})
	t.Run("Bytes", func(t *testing.T) {
		topic := eventstest.Topic(t)
		size := 64 + 36 + len(topic) + 1 // eventSize of one event with a one-digit payload
		s := newMemory(t, events.WithRetention(100, 4*size))
		publishN(t, s, topic)
		if got := replayed(t, s, topic); !slices.Equal(got, []int{6, 7, 8, 9}) {
			t.Errorf("replayed %v, want the latest four", got)
		}
	})
	t.Run("None", func(t *testing.T) {
		s := newMemory(t, events.WithRetention(-1, -1))
		topic := eventstest.Topic(t)
		publishN(t, s, topic)
		if got := replayed(t, s, topic); len(got) != 0 {
			t.Errorf("replayed %v, want nothing", got)
		}
	})
}

// TestMaxInFlight: a manual-ack consumer holds at most MaxInFlight unacknowledged
// events; acknowledging one lets the next come.
func TestMaxInFlight(t *testing.T) {
	s := newMemory(t, events.WithMaxInFlight(2))
	topic := eventstest.Topic(t)
	ch := eventstest.Consume(t, s, topic, events.WithAutoAck(false, time.Minute))
	for i := 0; i < 4; i++ {
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	first := eventstest.Receive(t, ch, time.Second)
	eventstest.Receive(t, ch, time.Second)
	eventstest.NoEvent(t, ch, 50*time.Millisecond)
	if st := s.(events.Reporter).Stats(); st.InFlight != 2 || st.Queued != 2 {
		t.Errorf("Stats %+v: want 2 in flight, 2 queued", st)
	}
	if err := first.Ack(); err != nil {
		t.Fatal(err)
	}
	eventstest.Receive(t, ch, time.Second)
}

// TestGroupEndsWithLastMember: a group's events are dropped when its last member ends;
// a new member of the group starts with new events, and other consumers are unaffected.
func TestGroupEndsWithLastMember(t *testing.T) {
	s := newMemory(t)
	topic := eventstest.Topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Consume(topic, events.WithGroup("g"), events.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	other := eventstest.Consume(t, s, topic)
	for i := 0; i < 3; i++ {
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	eventstest.Receive(t, ch, time.Second)
	cancel()
	if !eventstest.Drain(ch, time.Second) {
		t.Fatal("the channel was not closed")
	}
	if st := s.(events.Reporter).Stats(); st.Queued > 3 { // only the other consumer's are left
		t.Errorf("Stats %+v: want at most 3 queued (the other consumer's)", st)
	}
	again := eventstest.Consume(t, s, topic, events.WithGroup("g"))
	if err := s.Publish(topic, 3); err != nil {
		t.Fatal(err)
	}
	ev := eventstest.Receive(t, again, time.Second)
	var n int
	if err := ev.Unmarshal(&n); err != nil || n != 3 {
		t.Fatalf("the new member's first event: %d %v, want 3", n, err)
	}
	for i := 0; i < 4; i++ {
		eventstest.Receive(t, other, time.Second)
	}
}

// TestStatsCount: Published, Delivered and Redelivered count what happened.
func TestStatsCount(t *testing.T) {
	s := newMemory(t)
	topic := eventstest.Topic(t)
	ch := eventstest.Consume(t, s, topic, events.WithAutoAck(false, time.Minute))
	for i := 0; i < 3; i++ {
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	ev := eventstest.Receive(t, ch, time.Second)
	if err := ev.Nack(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ev := eventstest.Receive(t, ch, time.Second)
		if err := ev.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	want := events.Stats{Published: 3, Delivered: 4, Redelivered: 1}
	if st := s.(events.Reporter).Stats(); st != want {
		t.Errorf("Stats %+v, want %+v", st, want)
	}
}

// TestInvalidOptions: out-of-range options give ErrInvalidOption, not a stream.
func TestInvalidOptions(t *testing.T) {
	for _, o := range []events.Option{events.WithQueueSize(-1), events.WithMaxInFlight(-1), events.WithPublishTimeout(-time.Second)} {
		if s, err := events.NewStream(o); !errors.Is(err, events.ErrInvalidOption) || s != nil {
			t.Errorf("NewStream: %v %v, want ErrInvalidOption", s, err)
		}
	}
}

// TestDefaultStream: the package-level functions use a memory stream made on first use,
// or DefaultStream when it is set.
func TestDefaultStream(t *testing.T) {
	topic := eventstest.Topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := events.Consume(topic, events.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Publish(topic, "via the default"); err != nil {
		t.Fatal(err)
	}
	ev := eventstest.Receive(t, ch, time.Second)
	var got string
	if err := ev.Unmarshal(&got); err != nil || got != "via the default" {
		t.Fatalf("got %q %v", got, err)
	}
	cancel()
	eventstest.Drain(ch, time.Second)

	mine := newMemory(t)
	events.DefaultStream = mine
	defer func() { events.DefaultStream = nil }()
	ch2 := eventstest.Consume(t, mine, topic)
	if err := events.Publish(topic, "to mine"); err != nil {
		t.Fatal(err)
	}
	eventstest.Receive(t, ch2, time.Second)
}

// TestGoroutinesReturnToBaseline (battery row A3's promise for streams): consumers
// ended by their contexts, and a stream closed with consumers and events in flight,
// leave no goroutine behind.
func TestGoroutinesReturnToBaseline(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	s, err := events.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	topic := eventstest.Topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	var chans []<-chan events.Event
	for i := 0; i < 50; i++ {
		opts := []events.ConsumeOption{events.WithContext(ctx), events.WithAutoAck(false, time.Minute)}
		if i%2 == 0 {
			opts = append(opts, events.WithGroup("g"))
		}
		ch, err := s.Consume(topic, opts...)
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	last, err := s.Consume(topic, events.WithAutoAck(false, time.Minute)) // ended by Close
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	eventstest.Receive(t, last, time.Second) // unacknowledged: its ack timer runs
	cancel()
	for _, ch := range chans {
		if !eventstest.Drain(ch, 5*time.Second) {
			t.Fatal("a channel was not closed after its context ended")
		}
	}
	if err := s.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	if !eventstest.Drain(last, 5*time.Second) {
		t.Fatal("a channel was not closed by Close")
	}
	goleak.VerifyNone(t, baseline)
}
