//go:build linux

package natsjs_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/events/eventstest"
	"github.com/seed-b3892490/micro/events/natsjs"
	"github.com/seed-b3892490/micro/internal/testutil"
)

const (
	consumerEnv    = "MICRO_EVENTS_E3_CONSUMER" // url|topic|group
	childLimit     = 60 * time.Second           // a child outlives no test run
	e3MaxPending   = 64                         // MaxAckPending of the crashing consumer
	e3ChildAckWait = time.Second                // its AckWait
)

// TestHelperE3Consumer is the consumer that TestE3ConsumerCrash kills: re-executed with
// MICRO_EVENTS_E3_CONSUMER=<url>|<topic>|<group>, it consumes the group with manual
// acknowledgement, says "ready", and for each event writes the number it carries on
// stdout (one write) and only then acknowledges it, until killed (or childLimit). Run
// normally, it does nothing.
func TestHelperE3Consumer(t *testing.T) {
	spec := os.Getenv(consumerEnv)
	if spec == "" {
		return
	}
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want url|topic|group", consumerEnv, spec)
	}
	s, err := natsjs.NewStream(natsjs.Address(parts[0]), natsjs.MaxAckPending(e3MaxPending), natsjs.Logger(quietLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.(io.Closer).Close()
	ch, err := s.Consume(parts[1], events.WithGroup(parts[2]), events.WithAutoAck(false, e3ChildAckWait))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	end := time.After(childLimit)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			var n int
			if err := ev.Unmarshal(&n); err != nil {
				t.Error(err)
				continue
			}
			if _, err := os.Stdout.WriteString(strconv.Itoa(n) + "\n"); err != nil {
				return
			}
			if err := ev.Ack(); err != nil {
				t.Error(err)
			}
		case <-end:
			return
		}
	}
}

// child is a consumer process started by startConsumer.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// startConsumer starts TestHelperE3Consumer, waits for it to be ready, and sends the
// numbers it records to got. The child is killed at the end of the test.
func startConsumer(t *testing.T, url, topic, group string, got chan<- int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperE3Consumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), consumerEnv+"="+url+"|"+topic+"|"+group)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
				continue
			}
			if n, err := strconv.Atoi(line); err == nil {
				got <- n
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	select {
	case <-ready:
	case <-c.done:
		t.Fatal("the consumer exited before it was ready")
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer was not ready within 20 s")
	}
	return c
}

// kill SIGKILLs the child by pid and waits for it.
func (c *child) kill(t *testing.T) {
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// TestE3ConsumerCrash is battery row E3 (first part) on JetStream: a consumer process
// of a durable group, recording each event's number before acknowledging it, is
// SIGKILLed near half of the events; a new process of the group takes over. Every event
// is processed, and the raw duplicates (recorded, but whose acknowledgement died with
// the process) are at most the consumer's MaxAckPending.
func TestE3ConsumerCrash(t *testing.T) {
	testutil.Scenario(t)
	n := 3000
	if testutil.Long() {
		n = 10000
	}
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	pub := newStreamAt(t, srv.URL())
	topic, group := eventstest.Topic(t), "e3"

	got := make(chan int, 2*n)
	first := startConsumer(t, srv.URL(), topic, group, got)
	published := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := pub.Publish(topic, i); err != nil {
				published <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		published <- nil
	}()

	seen := make(map[int]int, n)
	raw := 0
	record := func(i int) {
		seen[i]++
		raw++
	}
	deadline := time.After(60 * time.Second)
	for raw < n/2 {
		select {
		case i := <-got:
			record(i)
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
			published = nil
		case <-deadline:
			t.Fatalf("the first consumer recorded %d events, want %d", raw, n/2)
		}
	}
	first.kill(t)
	for drained := false; !drained; { // what it wrote before dying
		select {
		case i := <-got:
			record(i)
		default:
			drained = true
		}
	}
	beforeKill := raw
	startConsumer(t, srv.URL(), topic, group, got)
	for len(seen) < n {
		select {
		case i := <-got:
			record(i)
		case err := <-published:
			if err != nil {
				t.Fatal(err)
			}
			published = nil
		case <-deadline:
			debugConsumer(t, srv.URL(), topic)
			t.Fatalf("%d of %d distinct events processed within 60 s (%d recorded before the kill)", len(seen), n, beforeKill)
		}
	}
	if published != nil {
		if err := <-published; err != nil {
			t.Fatal(err)
		}
	}
	// A redelivery of an event the first consumer recorded comes after its AckWait:
	// wait that long for late duplicates before counting.
	quiet := time.After(e3ChildAckWait + 500*time.Millisecond)
	for waiting := true; waiting; {
		select {
		case i := <-got:
			record(i)
		case <-quiet:
			waiting = false
		}
	}
	for i := 0; i < n; i++ {
		if seen[i] == 0 {
			t.Errorf("event %d never processed", i)
		}
	}
	dups := raw - len(seen)
	t.Logf("%d events: %d recorded before the SIGKILL, %d distinct processed, %d raw duplicates (bound MaxAckPending %d)", n, beforeKill, len(seen), dups, e3MaxPending)
	if dups > e3MaxPending {
		t.Errorf("%d raw duplicates, over MaxAckPending %d", dups, e3MaxPending)
	}
}

// TestE3ServerCrash is battery row E3 (second part): a private nats-server (with
// sync_interval: always where the binary supports it) is SIGKILLed while a publisher
// publishes, and restarted on the same store. Every publication that returned nil is
// in the stream after the restart, and none is stored twice (Publish retries with the
// same Nats-Msg-Id, which the server deduplicates).
func TestE3ServerCrash(t *testing.T) {
	testutil.Scenario(t)
	n := 2000
	if testutil.Long() {
		n = 10000
	}
	srv := testutil.StartNATS(t, testutil.NATSConfig{SyncAlways: true})
	if !srv.SyncAlways() {
		t.Log("running without sync_interval: always (unsupported by this nats-server): this checks a process crash, not a machine crash")
	}
	pub := newStreamAt(t, srv.URL(), natsjs.PublishTimeout(20*time.Second))
	topic := eventstest.Topic(t)
	start := time.Now()

	var mu sync.Mutex
	acked := make(map[int]bool, n)
	var failed []int
	half := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			err := pub.Publish(topic, i)
			mu.Lock()
			if err == nil {
				acked[i] = true
			} else {
				failed = append(failed, i)
				t.Logf("publish %d: %v", i, err)
			}
			if len(acked) == n/2 {
				close(half)
			}
			mu.Unlock()
		}
	}()
	select {
	case <-half:
	case <-time.After(30 * time.Second):
		t.Fatal("half of the events were not published within 30 s")
	}
	srv.Kill()
	killed := time.Now()
	srv.Restart(t)
	t.Logf("nats-server killed and back in %s", time.Since(killed).Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("publishing did not finish within 60 s")
	}

	// Read the whole stream back: until every acknowledged event is found (or 30 s),
	// then for a moment more, to see duplicates.
	sub := newStreamAt(t, srv.URL())
	ch := eventstest.Consume(t, sub, topic, events.WithOffset(start))
	stored := map[int]int{}
	total := 0
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	missing := func() int {
		n := 0
		for i := range acked {
			if stored[i] == 0 {
				n++
			}
		}
		return n
	}
	readStart := time.Now()
	deadline := time.After(30 * time.Second)
	var quiet <-chan time.Time
	for reading := true; reading; {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("the reading consumer ended")
			}
			var i int
			if err := ev.Unmarshal(&i); err != nil {
				t.Fatal(err)
			}
			stored[i]++
			total++
			if quiet == nil && total >= want && missing() == 0 {
				quiet = time.After(300 * time.Millisecond)
			}
		case <-quiet:
			reading = false
		case <-deadline:
			reading = false
		}
	}
	t.Logf("read %d events back in %s", total, time.Since(readStart).Round(time.Millisecond))
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if name, err := js.StreamNameBySubject(context.Background(), topic); err == nil {
		if st, err := js.Stream(context.Background(), name); err == nil {
			if info, err := st.Info(context.Background()); err == nil {
				t.Logf("the stream's state: %d messages, sequences %d to %d", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
			}
		}
	}
	lost := 0
	for i := range acked {
		if stored[i] == 0 {
			lost++
			if lost <= 10 {
				t.Errorf("event %d: Publish returned nil, but it is not in the stream", i)
			}
		}
	}
	dups := total - len(stored)
	t.Logf("%d publications: %d acknowledged, %d failed; the stream holds %d events, %d distinct: %d acknowledged lost, %d stored twice",
		n, want, len(failed), total, len(stored), lost, dups)
	if lost > 0 {
		t.Errorf("%d acknowledged publications lost", lost)
	}
	if dups > 0 {
		t.Errorf("%d events stored more than once", dups)
	}
}

// TestC4StopWithSubscribers is battery row C4 on JetStream: a durable group consumer
// holds events in flight when its stream is closed. The handler finishes them after
// Close began (their acknowledgements succeed, and Close waits for them); a new stream
// (the restarted service) receives every event not acknowledged, none that was: 0 lost,
// 0 duplicates.
func TestC4StopWithSubscribers(t *testing.T) {
	testutil.Scenario(t)
	requireNATS(t)
	const n, held = 200, 5
	pub := newStream(t)
	topic, group := eventstest.Topic(t), "c4"
	manual := events.WithAutoAck(false, 5*time.Second)

	first, err := natsjs.NewStream(natsjs.Address(natsURL()), natsjs.Logger(quietLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.(io.Closer).Close() })
	ch, err := first.Consume(topic, events.WithGroup(group), manual)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := pub.Publish(topic, i); err != nil {
			t.Fatal(err)
		}
	}
	processed := map[int]int{}
	number := func(ev events.Event) int {
		var i int
		if err := ev.Unmarshal(&i); err != nil {
			t.Fatal(err)
		}
		return i
	}
	for i := 0; i < n/4; i++ { // processed before the stop
		ev := eventstest.Receive(t, ch, 10*time.Second)
		if err := ev.Ack(); err != nil {
			t.Fatal(err)
		}
		processed[number(ev)]++
	}
	var inFlight []events.Event
	for i := 0; i < held; i++ {
		inFlight = append(inFlight, eventstest.Receive(t, ch, 10*time.Second))
	}

	closed := make(chan time.Time, 1)
	go func() {
		if err := first.(io.Closer).Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		closed <- time.Now()
	}()
	if !eventstest.Drain(ch, 10*time.Second) { // the stop has begun: no more events
		t.Fatal("the channel was not closed within 10 s of Close")
	}
	var lastAck time.Time
	for _, ev := range inFlight { // the handlers in flight finish
		if err := ev.Ack(); err != nil {
			t.Fatalf("ack of an event in flight during Close: %v", err)
		}
		processed[number(ev)]++
		lastAck = time.Now()
	}
	var closedAt time.Time
	select {
	case closedAt = <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return within 15 s")
	}
	if closedAt.Before(lastAck) {
		t.Errorf("Close returned %s before the last acknowledgement in flight", lastAck.Sub(closedAt))
	}

	// The restarted service.
	second := newStream(t)
	ch2 := eventstest.Consume(t, second, topic, events.WithGroup(group), manual)
	for len(processed) < n {
		ev := eventstest.Receive(t, ch2, 10*time.Second)
		if err := ev.Ack(); err != nil {
			t.Fatal(err)
		}
		processed[number(ev)]++
	}
	eventstest.NoEvent(t, ch2, 500*time.Millisecond)
	dups := 0
	for i := 0; i < n; i++ {
		if processed[i] > 1 {
			dups += processed[i] - 1
		}
	}
	t.Logf("%d events: %d processed before the stop, %d in flight finished during Close, %d after the restart; %d duplicates",
		n, n/4, held, n-n/4-held, dups)
	if dups > 0 {
		t.Errorf("%d events processed twice", dups)
	}
}

// debugConsumer logs the state of the group's stream and consumer, for failures.
func debugConsumer(t *testing.T, url, topic string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Log(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	name, err := js.StreamNameBySubject(ctx, topic)
	if err != nil {
		t.Log(err)
		return
	}
	st, _ := js.Stream(ctx, name)
	si, _ := st.Info(ctx)
	t.Logf("stream %+v", si.State)
	c, err := st.Consumer(ctx, "e3")
	if err != nil {
		t.Log(err)
		return
	}
	ci, _ := c.Info(ctx)
	t.Logf("consumer delivered %+v ackfloor %+v pending %d ackpending %d waiting %d redelivered %d", ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered)
}
