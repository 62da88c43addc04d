// Package eventstest is the conformance suite of events.Stream: every implementation in
// this module (the memory stream, natsjs) runs it, so that they keep the same promises.
//
// Run checks publishing and consuming: round trips of metadata, timestamps and payloads,
// groups, offsets, undecodable payloads, concurrent publishers, the end of consuming by
// context and by Close. AckSemantics checks manual acknowledgement (battery row E4); a
// package runs it from a test named after the row.
package eventstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
)

// NewStream returns a stream of the implementation under test, new for each call, and
// arranges for it to be closed when t ends (t.Cleanup). Tests may close it earlier.
type NewStream func(t *testing.T) events.Stream

// Timeouts of the suite: generous, since they only bound waits for what must happen.
const (
	waitEvent = 10 * time.Second // for an event that must arrive
	quiet     = 300 * time.Millisecond
)

// Run runs the conformance suite against streams from newStream, each subtest on its
// own stream and topics.
func Run(t *testing.T, newStream NewStream) {
	t.Run("RoundTrip", func(t *testing.T) { RoundTrip(t, newStream) })
	t.Run("BadInput", func(t *testing.T) { BadInput(t, newStream) })
	t.Run("OnlyNewEvents", func(t *testing.T) { OnlyNewEvents(t, newStream) })
	t.Run("Groups", func(t *testing.T) { Groups(t, newStream) })
	t.Run("Offset", func(t *testing.T) { Offset(t, newStream) })
	t.Run("UndecodablePayload", func(t *testing.T) { UndecodablePayload(t, newStream) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { ConcurrentPublishers(t, newStream) })
	t.Run("ContextEndsConsuming", func(t *testing.T) { ContextEndsConsuming(t, newStream) })
	t.Run("Close", func(t *testing.T) { Close(t, newStream) })
}

// Topic returns a topic unique to the test, valid as a NATS subject.
func Topic(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	if len(name) > 80 {
		name = name[len(name)-80:]
	}
	return "eventstest." + name + "." + hex.EncodeToString(b)
}

// Consume consumes topic until the end of the test, with a context it cancels then;
// the cleanup also waits (at most 10 s) for the channel to be closed.
func Consume(t *testing.T, s events.Stream, topic string, opts ...events.ConsumeOption) <-chan events.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Consume(topic, append([]events.ConsumeOption{events.WithContext(ctx)}, opts...)...)
	if err != nil {
		cancel()
		t.Fatalf("consume %s: %v", topic, err)
	}
	t.Cleanup(func() {
		cancel()
		if !Drain(ch, waitEvent) {
			t.Errorf("the channel of %s was not closed within %s of the end of its context", topic, waitEvent)
		}
	})
	return ch
}

// Drain reads ch until it is closed, and reports whether that happened within timeout.
func Drain(ch <-chan events.Event, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		case <-deadline.C:
			return false
		}
	}
}

// Receive returns the next event of ch, failing the test if none comes within timeout
// or ch is closed.
func Receive(t testing.TB, ch <-chan events.Event, timeout time.Duration) events.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the channel was closed while an event was awaited")
		}
		return ev
	case <-deadline.C:
		t.Fatalf("no event within %s", timeout)
	}
	return events.Event{}
}

// NoEvent fails the test if an event comes on ch within d.
func NoEvent(t testing.TB, ch <-chan events.Event, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %s (%q) within %s", ev.ID, ev.Payload, d)
		}
	case <-deadline.C:
	}
}

func publish(t testing.TB, s events.Stream, topic string, msg interface{}, opts ...events.PublishOption) {
	t.Helper()
	if err := s.Publish(topic, msg, opts...); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

type message struct {
	Name string
	N    int
}

// RoundTrip: an event arrives with its topic, a unique ID, the metadata and timestamp
// given, and its payload (JSON of a value, or bytes as they are); Ack of an auto-acked
// event is nil and Nack is ErrNoNack.
func RoundTrip(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	ch := Consume(t, s, topic)

	md := map[string]string{"k": "v", "empty": "", "spaced key": "a value\twith: punctuation"}
	ts := time.Date(2024, 2, 29, 12, 30, 15, 123456789, time.UTC)
	sent := message{Name: "hello", N: 42}
	publish(t, s, topic, sent, events.WithMetadata(md), events.WithTimestamp(ts))
	md["k"] = "changed after publish" // the event has its own copy

	raw := []byte("raw\x00bytes\xff, not JSON")
	before := time.Now()
	publish(t, s, topic, raw)
	after := time.Now()

	ev := Receive(t, ch, waitEvent)
	if ev.ID == "" || ev.Topic != topic {
		t.Fatalf("first event: ID %q topic %q, want an ID and topic %q", ev.ID, ev.Topic, topic)
	}
	if !ev.Timestamp.Equal(ts) {
		t.Errorf("timestamp %v, want %v", ev.Timestamp, ts)
	}
	want := map[string]string{"k": "v", "empty": "", "spaced key": "a value\twith: punctuation"}
	if !maps.Equal(ev.Metadata, want) {
		t.Errorf("metadata %v, want %v", ev.Metadata, want)
	}
	wantPayload, _ := json.Marshal(sent)
	if !bytes.Equal(ev.Payload, wantPayload) {
		t.Errorf("payload %q, want %q", ev.Payload, wantPayload)
	}
	var got message
	if err := ev.Unmarshal(&got); err != nil || got != sent {
		t.Errorf("Unmarshal: %+v %v, want %+v", got, err, sent)
	}
	if err := ev.Ack(); err != nil {
		t.Errorf("Ack of an auto-acked event: %v", err)
	}
	if err := ev.Nack(); !errors.Is(err, events.ErrNoNack) {
		t.Errorf("Nack of an auto-acked event: %v, want ErrNoNack", err)
	}

	ev2 := Receive(t, ch, waitEvent)
	if !bytes.Equal(ev2.Payload, raw) {
		t.Errorf("bytes payload %q, want %q as published", ev2.Payload, raw)
	}
	if ev2.ID == "" || ev2.ID == ev.ID {
		t.Errorf("IDs %q and %q: want two distinct IDs", ev.ID, ev2.ID)
	}
	if ev2.Timestamp.Before(before) || ev2.Timestamp.After(after) {
		t.Errorf("default timestamp %v not within the Publish call [%v, %v]", ev2.Timestamp, before, after)
	}
	if len(ev2.Metadata) != 0 {
		t.Errorf("metadata %v, want none", ev2.Metadata)
	}
}

// BadInput: empty topics, unencodable messages and done contexts give clear errors.
func BadInput(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	if err := s.Publish("", "x"); !errors.Is(err, events.ErrMissingTopic) {
		t.Errorf("Publish to an empty topic: %v, want ErrMissingTopic", err)
	}
	if _, err := s.Consume(""); !errors.Is(err, events.ErrMissingTopic) {
		t.Errorf("Consume of an empty topic: %v, want ErrMissingTopic", err)
	}
	for _, msg := range []interface{}{make(chan int), func() {}, map[bool]int{true: 1}} {
		err := s.Publish(topic, msg)
		if !errors.Is(err, events.ErrEncodingMessage) {
			t.Errorf("Publish(%T): %v, want ErrEncodingMessage", msg, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ch, err := s.Consume(topic, events.WithContext(ctx)); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Consume with a cancelled context: %v %v, want context.Canceled", ch, err)
	}
	if err := s.Publish(topic, "x", events.WithPublishContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: %v, want context.Canceled", err)
	}
}

// OnlyNewEvents: without an offset, a consumer receives only what is published after
// Consume returned.
func OnlyNewEvents(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	publish(t, s, topic, "early")
	ch := Consume(t, s, topic)
	publish(t, s, topic, "late")
	var got string
	ev := Receive(t, ch, waitEvent)
	if err := ev.Unmarshal(&got); err != nil || got != "late" {
		t.Fatalf("first event %q %v, want \"late\"", got, err)
	}
	NoEvent(t, ch, quiet)
}

// Groups: each group receives every event once, spread over its members; every
// consumer without a group receives every event.
func Groups(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	const n = 60
	type consumer struct {
		key string // group name or "solo-i"
		ch  <-chan events.Event
	}
	var cs []consumer
	for _, g := range []string{"a", "a", "b"} {
		cs = append(cs, consumer{g, Consume(t, s, topic, events.WithGroup(g))})
	}
	for i := 0; i < 2; i++ {
		cs = append(cs, consumer{fmt.Sprint("solo-", i), Consume(t, s, topic)})
	}
	var mu sync.Mutex
	seen := map[string]map[int]int{} // key -> event number -> times
	total := 0
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case ev, ok := <-c.ch:
					if !ok {
						return
					}
					var m message
					if err := ev.Unmarshal(&m); err != nil {
						t.Errorf("%s: %v", c.key, err)
						return
					}
					mu.Lock()
					if seen[c.key] == nil {
						seen[c.key] = map[int]int{}
					}
					seen[c.key][m.N]++
					total++
					mu.Unlock()
				case <-stop:
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := 0; i < n; i++ {
		publish(t, s, topic, message{Name: "g", N: i})
	}
	want := 4 * n // groups a and b, two solos
	deadline := time.Now().Add(waitEvent)
	for {
		mu.Lock()
		got := total
		mu.Unlock()
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries within %s, want %d", got, waitEvent, want)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	time.Sleep(quiet) // let duplicates, if any, arrive before counting
	mu.Lock()
	defer mu.Unlock()
	for _, key := range []string{"a", "b", "solo-0", "solo-1"} {
		if len(seen[key]) != n {
			t.Errorf("%s received %d distinct events, want %d", key, len(seen[key]), n)
		}
		for i, times := range seen[key] {
			if times != 1 {
				t.Errorf("%s received event %d %d times, want once", key, i, times)
			}
		}
	}
}

// sleepPast waits until the clock is past t (a few microseconds at most), so that the
// next timestamp taken is strictly after t.
func sleepPast(t time.Time) {
	for i := 0; i < 1_000_000 && !time.Now().After(t); i++ {
	}
}

// Offset: a consumer with an offset receives the events published since it, in
// order, then new ones; one with an earlier offset receives the earlier events too.
func Offset(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	start := time.Now()
	sleepPast(start)
	publish(t, s, topic, "A")
	publish(t, s, topic, "B")
	mid := time.Now()
	sleepPast(mid)
	publish(t, s, topic, "C")
	publish(t, s, topic, "D")

	fromMid := Consume(t, s, topic, events.WithOffset(mid))
	fromStart := Consume(t, s, topic, events.WithOffset(start))
	publish(t, s, topic, "E")
	expect := func(name string, ch <-chan events.Event, want ...string) {
		t.Helper()
		for _, w := range want {
			var got string
			ev := Receive(t, ch, waitEvent)
			if err := ev.Unmarshal(&got); err != nil || got != w {
				t.Fatalf("%s: got %q %v, want %q (all: %v)", name, got, err, w, want)
			}
		}
		NoEvent(t, ch, quiet)
	}
	expect("offset after B", fromMid, "C", "D", "E")
	expect("offset before A", fromStart, "A", "B", "C", "D", "E")
}

// UndecodablePayload: Unmarshal of a payload that is not JSON of the type reports a
// clear error; the next event is delivered and decodes.
func UndecodablePayload(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	ch := Consume(t, s, topic)
	publish(t, s, topic, []byte("{not json"))
	publish(t, s, topic, []byte(`{"Name":7}`)) // JSON, wrong type
	publish(t, s, topic, message{Name: "fine", N: 1})
	for i := 0; i < 2; i++ {
		ev := Receive(t, ch, waitEvent)
		var m message
		err := ev.Unmarshal(&m)
		if !errors.Is(err, events.ErrDecodingMessage) {
			t.Fatalf("Unmarshal of %q: %v, want ErrDecodingMessage", ev.Payload, err)
		}
		if !strings.Contains(err.Error(), ev.ID) || !strings.Contains(err.Error(), topic) {
			t.Errorf("error %q names neither event %s nor topic %s", err, ev.ID, topic)
		}
	}
	var m message
	ev := Receive(t, ch, waitEvent)
	if err := ev.Unmarshal(&m); err != nil || m.Name != "fine" {
		t.Fatalf("the event after the bad ones: %+v %v", m, err)
	}
}

// ConcurrentPublishers: events of concurrent publishers all arrive once, each
// publisher's in the order published.
func ConcurrentPublishers(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	ch := Consume(t, s, topic)
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Publish(topic, message{Name: fmt.Sprint("p", p), N: i}, events.WithMetadata(map[string]string{"p": fmt.Sprint(p)})); err != nil {
					t.Errorf("publisher %d: %v", p, err)
					return
				}
			}
		}()
	}
	next := map[string]int{}
	for i := 0; i < publishers*each; i++ {
		ev := Receive(t, ch, waitEvent)
		var m message
		if err := ev.Unmarshal(&m); err != nil {
			t.Fatal(err)
		}
		if "p"+ev.Metadata["p"] != m.Name {
			t.Fatalf("event of %s carries metadata %v", m.Name, ev.Metadata)
		}
		if m.N != next[m.Name] {
			t.Fatalf("%s: event %d after %d: out of order or duplicated", m.Name, m.N, next[m.Name]-1)
		}
		next[m.Name]++
	}
	wg.Wait()
	NoEvent(t, ch, quiet)
}

// ContextEndsConsuming: when a consumer's context ends its channel is closed, with
// events in flight or not, and other consumers go on.
func ContextEndsConsuming(t *testing.T, newStream NewStream) {
	s := newStream(t)
	topic := Topic(t)
	other := Consume(t, s, topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Consume(topic, events.WithContext(ctx), events.WithAutoAck(false, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, s, topic, "one")
	publish(t, s, topic, "two")
	one := Receive(t, ch, waitEvent) // unacknowledged, and "two" may be waiting
	cancel()
	if !Drain(ch, waitEvent) {
		t.Fatalf("the channel was not closed within %s of the end of its context", waitEvent)
	}
	_ = one.Ack() // the handler finishes after the end of consuming: harmless
	Receive(t, other, waitEvent)
	Receive(t, other, waitEvent)
	publish(t, s, topic, "three")
	Receive(t, other, waitEvent)
}

// Close: closing the stream (when it is an io.Closer) closes the consumers' channels;
// Publish and Consume then fail with ErrClosed; Close again is harmless.
func Close(t *testing.T, newStream NewStream) {
	s := newStream(t)
	c, ok := s.(io.Closer)
	if !ok {
		t.Skipf("%T is not an io.Closer", s)
	}
	topic := Topic(t)
	// A short AckWait: a stream may wait for the event in flight to be acknowledged,
	// though not past its AckWait.
	ch, err := s.Consume(topic, events.WithAutoAck(false, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, s, topic, "x")
	ev := Receive(t, ch, waitEvent)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !Drain(ch, waitEvent) {
		t.Fatalf("the channel was not closed within %s of Close", waitEvent)
	}
	_ = ev.Ack() // after Close: must not panic
	if err := s.Publish(topic, "y"); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Consume(topic); !errors.Is(err, events.ErrClosed) {
		t.Errorf("Consume after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// AckSemantics is battery row E4, with manual acknowledgement and an AckWait of
// ackWait (1 s is a good value): an unacknowledged event is delivered again after
// ackWait ± 20 %; a nacked one within 1 s; an acknowledged one is not delivered again
// within 3 × ackWait; and an event nacked or left unacknowledged at every delivery is
// delivered RetryLimit + 1 times, then never again (it is dead-lettered, and counted in
// Stats().DeadLettered when the stream is an events.Reporter). Its subtests run in
// parallel, each on a stream of its own.
func AckSemantics(t *testing.T, newStream NewStream, ackWait time.Duration) {
	manual := events.WithAutoAck(false, ackWait)
	t.Run("UnackedRedeliveredAfterAckWait", func(t *testing.T) {
		t.Parallel()
		s := newStream(t)
		topic := Topic(t)
		ch := Consume(t, s, topic, manual)
		publish(t, s, topic, "unacked")
		first := Receive(t, ch, waitEvent)
		t0 := time.Now()
		second := Receive(t, ch, 3*ackWait)
		took := time.Since(t0)
		if second.ID != first.ID {
			t.Fatalf("redelivered %s, want %s", second.ID, first.ID)
		}
		lo, hi := ackWait*8/10, ackWait*12/10
		if took < lo || took > hi {
			t.Errorf("redelivered %s after the first delivery, want AckWait %s ± 20 %% [%s, %s]", took, ackWait, lo, hi)
		}
		t.Logf("unacknowledged event redelivered after %s (AckWait %s)", took.Round(time.Millisecond), ackWait)
		if err := second.Ack(); err != nil {
			t.Fatal(err)
		}
		NoEvent(t, ch, ackWait*3/2)
	})
	t.Run("NackRedeliversWithin1s", func(t *testing.T) {
		t.Parallel()
		s := newStream(t)
		topic := Topic(t)
		ch := Consume(t, s, topic, events.WithAutoAck(false, 30*time.Second))
		publish(t, s, topic, "nacked")
		first := Receive(t, ch, waitEvent)
		t0 := time.Now()
		if err := first.Nack(); err != nil {
			t.Fatal(err)
		}
		second := Receive(t, ch, 2*time.Second)
		took := time.Since(t0)
		if second.ID != first.ID || took > time.Second {
			t.Fatalf("after Nack: %s redelivered after %s, want %s within 1 s", second.ID, took, first.ID)
		}
		t.Logf("nacked event redelivered after %s", took.Round(time.Microsecond))
		if err := second.Ack(); err != nil {
			t.Fatal(err)
		}
		if err := first.Nack(); err != nil { // a stale delivery's Nack: nothing happens
			t.Fatal(err)
		}
		NoEvent(t, ch, time.Second)
	})
	t.Run("AckedNeverRedelivered", func(t *testing.T) {
		t.Parallel()
		s := newStream(t)
		topic := Topic(t)
		ch := Consume(t, s, topic, manual)
		for i := 0; i < 5; i++ {
			publish(t, s, topic, i)
		}
		for i := 0; i < 5; i++ {
			ev := Receive(t, ch, waitEvent)
			if err := ev.Ack(); err != nil {
				t.Fatal(err)
			}
			if err := ev.Ack(); err != nil { // twice: harmless
				t.Fatal(err)
			}
		}
		NoEvent(t, ch, 3*ackWait)
	})
	t.Run("RetryLimitThenDeadLetter", func(t *testing.T) {
		t.Parallel()
		s := newStream(t)
		topic := Topic(t)
		const limit = 2
		wait := ackWait / 3 // unacknowledged deliveries come every wait
		ch := Consume(t, s, topic, events.WithAutoAck(false, wait), events.WithRetryLimit(limit))
		publish(t, s, topic, []byte("{poison: not json")) // nacked at each delivery
		publish(t, s, topic, "ignored")                   // left unacknowledged at each delivery
		deliveries := map[string]int{}
		for i := 0; i < 2*(limit+1); i++ {
			ev := Receive(t, ch, waitEvent)
			var v string
			if err := ev.Unmarshal(&v); err != nil {
				deliveries["poison"]++
				if err := ev.Nack(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			deliveries[v]++
		}
		NoEvent(t, ch, 3*wait+quiet)
		if deliveries["poison"] != limit+1 || deliveries["ignored"] != limit+1 {
			t.Fatalf("deliveries %v, want %d of each", deliveries, limit+1)
		}
		r, ok := s.(events.Reporter)
		if !ok {
			return
		}
		deadline := time.Now().Add(waitEvent)
		for r.Stats().DeadLettered < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("Stats %+v: want 2 dead-lettered events", r.Stats())
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
		if st := r.Stats(); st.DeadLettered != 2 || st.Redelivered != 2*limit {
			t.Errorf("Stats %+v: want DeadLettered 2, Redelivered %d", st, 2*limit)
		}
	})
}
