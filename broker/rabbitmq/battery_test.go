package rabbitmq_test

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// counter records, per message id, how often a subscriber got it, and checks that the
// messages of each publisher arrive in order.
type counter struct {
	mu       sync.Mutex
	ids      map[string]int
	total    int
	last     map[string]int // publisher → last sequence number seen
	reorders int
	markers  int
}

func newCounter() *counter { return &counter{ids: map[string]int{}, last: map[string]int{}} }

func (c *counter) handler(e broker.Event) error {
	h := e.Message().Header
	c.mu.Lock()
	defer c.mu.Unlock()
	if h["marker"] != "" {
		c.markers++
		return nil
	}
	id := h["id"]
	c.ids[id]++
	c.total++
	if p, seq, ok := strings.Cut(id, "-"); ok {
		n, _ := strconv.Atoi(seq)
		if last, seen := c.last[p]; seen && n <= last {
			c.reorders++
		}
		c.last[p] = n
	}
	return nil
}

func (c *counter) counts() (total, distinct, markers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, len(c.ids), c.markers
}

// publishAll publishes n messages with ids "<p>-<seq>" from publishers goroutines, each
// publishing its share in order, and fails the test on any error.
func publishAll(t testing.TB, b broker.Broker, topic string, n, publishers int, opts ...broker.PublishOption) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int32
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += publishers {
				if failed.Load() > 0 {
					return
				}
				id := fmt.Sprintf("p%d-%d", p, i)
				m := &broker.Message{Header: map[string]string{"id": id}, Body: []byte(id)}
				if err := b.Publish(topic, m, opts...); err != nil {
					failed.Add(1)
					errs <- fmt.Errorf("publish %s: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestE1Delivery is battery E1 for RabbitMQ: 10,000 messages to two broadcast subscribers
// and a queue group of three, each on a broker instance of its own. Each broadcast
// subscriber gets all 10,000, once each, every publisher's in order; the group 10,000
// in total, none twice.
func TestE1Delivery(t *testing.T) {
	testutil.Scenario(t)
	const n, publishers = 10000, 8
	a := newAdmin(t, "")
	tp, q := topicFor(t), "e1"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	pub := connected(t)
	bcast := []*counter{newCounter(), newCounter()}
	group := []*counter{newCounter(), newCounter(), newCounter()}
	for _, c := range bcast {
		subscribe(t, connected(t), tp, c.handler)
	}
	for _, c := range group {
		subscribe(t, connected(t), tp, c.handler, broker.Queue(q))
	}
	start := time.Now()
	publishAll(t, pub, tp, n, publishers)
	published := time.Since(start)
	groupTotal := func() (total, distinct int) {
		seen := map[string]bool{}
		for _, c := range group {
			c.mu.Lock()
			total += c.total
			for id := range c.ids {
				seen[id] = true
			}
			c.mu.Unlock()
		}
		return total, len(seen)
	}
	waitFor(t, 60*time.Second, "every broadcast subscriber and the group to get every message", func() bool {
		for _, c := range bcast {
			if _, d, _ := c.counts(); d < n {
				return false
			}
		}
		_, d := groupTotal()
		return d == n
	})
	// a marker published last reaches every queue after all of the messages: any
	// duplicate would have arrived before it
	if err := pub.Publish(tp, &broker.Message{Header: map[string]string{"marker": "end"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the end marker", func() bool {
		g := 0
		for _, c := range group {
			_, _, m := c.counts()
			g += m
		}
		for _, c := range bcast {
			if _, _, m := c.counts(); m == 0 {
				return false
			}
		}
		return g == 1
	})
	for i, c := range bcast {
		total, distinct, _ := c.counts()
		if total != n || distinct != n {
			t.Errorf("broadcast subscriber %d: %d deliveries of %d distinct messages, want %d of %d", i, total, distinct, n, n)
		}
		if c.reorders > 0 {
			t.Errorf("broadcast subscriber %d: %d messages out of their publisher's order", i, c.reorders)
		}
	}
	total, distinct := groupTotal()
	if total != n || distinct != n {
		t.Errorf("queue group: %d deliveries of %d distinct messages, want %d of %d (0 duplicates)", total, distinct, n, n)
	}
	shares := make([]int, len(group))
	for i, c := range group {
		shares[i], _, _ = c.counts()
		if shares[i] == 0 {
			t.Errorf("group member %d got nothing", i)
		}
	}
	t.Logf("E1: %d messages from %d publishers in %s (%.0f msgs/s confirmed); broadcast 2 × %d; group %d (shares %v), 0 duplicates",
		n, publishers, published.Round(time.Millisecond), float64(n)/published.Seconds(), n, total, shares)
}

// TestSlowConsumerBounded is battery E5's bound, scaled down: a subscriber whose handler
// is stuck holds at most PrefetchCount messages (plus the one being handled); the rest
// wait on the server, and the subscriber's heap does not grow with what is published.
// Without the prefetch bound the server would push all 16 MiB to the client.
func TestSlowConsumerBounded(t *testing.T) {
	t.Run("per consumer", func(t *testing.T) { testSlowConsumer(t, rabbitmq.PrefetchCount(8)) })
	t.Run("global", func(t *testing.T) { testSlowConsumer(t, rabbitmq.PrefetchCount(8), rabbitmq.PrefetchGlobal()) })
}

func testSlowConsumer(t *testing.T, opts ...broker.Option) {
	const n, size, prefetch = 1000, 16 << 10, 8
	a := newAdmin(t, "")
	tp, q := topicFor(t), "slow"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	pub := connected(t, rabbitmq.MessageDeliveryMode(1))
	sub := connected(t, opts...)
	gate := make(chan struct{})
	var handled atomic.Int32
	subscribe(t, sub, tp, func(broker.Event) error {
		<-gate
		handled.Add(1)
		return nil
	}, broker.Queue(q))
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()

	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heap()
	body := make([]byte, size)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 4 {
				if err := pub.Publish(tp, &broker.Message{Body: body}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// the server holds all but the prefetched ones (prefetch unacknowledged, one of
	// them in the stuck handler)
	waitFor(t, 10*time.Second, "the server to hold all but the prefetched messages", func() bool {
		return a.messages(groupQueue(q, tp)) == n-prefetch
	})
	grown := int64(heap()) - int64(base)
	if limit := int64(4 << 20); grown > limit {
		t.Errorf("the subscriber's heap grew by %d KiB with %d KiB published and a stuck handler, want < %d KiB", grown>>10, n*size>>10, limit>>10)
	}
	if h := handled.Load(); h != 0 {
		t.Errorf("%d handled while the handler was stuck", h)
	}
	release()
	waitFor(t, 30*time.Second, "every message to be handled once released", func() bool { return handled.Load() == n })
	t.Logf("E5 (scaled): %d × %d KiB published to a stuck subscriber with prefetch %d: server kept %d, heap grew %d KiB",
		n, size>>10, prefetch, n-prefetch, grown>>10)
}

// longOr returns long in the long tier, short otherwise.
func longOr(short, long int) int {
	if testutil.Long() {
		return long
	}
	return short
}

// TestC4StopWithSubscribers is battery C4 for RabbitMQ: a durable queue group has
// messages in flight (one in its handler, more prefetched) when its broker stops. The
// handler under way finishes and its message is acknowledged; no handler begins after
// the stop; after a restart the rest are delivered: 0 lost, and, the stop being
// graceful, 0 duplicates.
func TestC4StopWithSubscribers(t *testing.T) {
	testutil.Scenario(t)
	const n, prefetch = 50, 10
	a := newAdmin(t, "")
	tp, q := topicFor(t), "c4"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	pub := connected(t)

	var mu sync.Mutex
	done := map[string]int{}
	record := func(id string) {
		mu.Lock()
		done[id]++
		mu.Unlock()
	}
	sub := newBroker(t, rabbitmq.PrefetchCount(prefetch))
	if err := sub.Connect(); err != nil {
		t.Fatal(err)
	}
	entered := make(chan string, n)
	gate := make(chan struct{})
	if _, err := sub.Subscribe(tp, func(e broker.Event) error {
		id := e.Message().Header["id"]
		entered <- id
		<-gate
		record(id)
		return nil
	}, broker.Queue(q), rabbitmq.DurableQueue()); err != nil {
		t.Fatal(err)
	}
	publishAll(t, pub, tp, n, 1)
	var inFlight string
	select {
	case inFlight = <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no handler started")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- sub.Disconnect() }()
	// Disconnect has begun once the broker refuses to publish
	waitFor(t, 5*time.Second, "Disconnect to begin", func() bool {
		return errors.Is(sub.Publish(tp+".unbound", &broker.Message{}), broker.ErrNotConnected)
	})
	select {
	case err := <-stopped:
		t.Fatalf("Disconnect returned (%v) while a handler was running", err)
	default:
	}
	close(gate)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Disconnect did not return after the handler finished")
	}
	mu.Lock()
	if len(done) != 1 || done[inFlight] != 1 {
		t.Errorf("handled before the stop completed: %v, want only the in-flight %s", done, inFlight)
	}
	mu.Unlock()
	if extra := len(entered); extra != 0 {
		t.Errorf("%d handlers began after the stop", extra)
	}
	waitFor(t, 5*time.Second, "the unhandled messages back in the queue", func() bool { return a.messages(groupQueue(q, tp)) == n-1 })

	restarted := connected(t, rabbitmq.PrefetchCount(prefetch))
	subscribe(t, restarted, tp, func(e broker.Event) error {
		if m := e.Message().Header["marker"]; m != "" {
			record("marker")
			return nil
		}
		record(e.Message().Header["id"])
		return nil
	}, broker.Queue(q), rabbitmq.DurableQueue())
	if err := pub.Publish(tp, &broker.Message{Header: map[string]string{"marker": "end"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the restarted subscriber to reach the marker", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done["marker"] == 1
	})
	mu.Lock()
	defer mu.Unlock()
	lost, dups := 0, 0
	for i := range n {
		switch k := done[fmt.Sprintf("p0-%d", i)]; {
		case k == 0:
			lost++
		case k > 1:
			dups += k - 1
		}
	}
	if lost > 0 || dups > 0 {
		t.Errorf("after the restart: %d lost, %d duplicates, want 0 and 0", lost, dups)
	}
	t.Logf("C4: stop with 1 handler in flight and %d prefetched: the handler finished, %d redelivered after restart, 0 lost, 0 duplicates", prefetch-1, n-1)
}
