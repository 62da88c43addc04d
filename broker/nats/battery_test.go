package nats_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
)

const seqHeader = "Seq"

// seqRecorder records the sequence numbers one subscription receives.
type seqRecorder struct {
	mu       sync.Mutex
	got      []int
	last     int
	reorders int
	ends     int // end markers received

	inflight   atomic.Int32 // handler calls under way
	concurrent atomic.Int32 // calls that began while another was under way
}

func newSeqRecorder() *seqRecorder { return &seqRecorder{last: -1} }

func (r *seqRecorder) handler(ev broker.Event) error {
	if r.inflight.Add(1) != 1 {
		r.concurrent.Add(1)
	}
	defer r.inflight.Add(-1)
	v := ev.Message().Header[seqHeader]
	r.mu.Lock()
	defer r.mu.Unlock()
	if v == "end" {
		r.ends++
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("bad %s header %q", seqHeader, v)
	}
	if n <= r.last {
		r.reorders++
	}
	r.last = n
	r.got = append(r.got, n)
	return nil
}

func (r *seqRecorder) snapshot() (got []int, reorders, ends int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...), r.reorders, r.ends
}

// TestE1Delivery is battery E1 for NATS: 10,000 messages from one publisher to three
// broadcast subscribers and a queue group of three members, each on a broker instance
// (a connection) of its own. Each broadcast subscriber gets every message once, in the
// order published; the group gets every message once in all, each member its share in
// order; no handler is called while it is running; nothing is dropped.
func TestE1Delivery(t *testing.T) {
	testutil.Scenario(t)
	const n = 10000
	errs := make(chan error, 16)
	onErr := broker.ErrorHandler(func(ev broker.Event) error {
		select {
		case errs <- ev.Error():
		default:
		}
		return nil
	})
	pub := connected(t, onErr)
	tp := topic(t)
	var subs []broker.Subscriber
	var brokers []broker.Broker
	subscribe := func(r *seqRecorder, opts ...broker.SubscribeOption) {
		b := connected(t, onErr)
		s, err := b.Subscribe(tp, r.handler, opts...)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
		brokers = append(brokers, b)
	}
	broadcast := []*seqRecorder{newSeqRecorder(), newSeqRecorder(), newSeqRecorder()}
	group := []*seqRecorder{newSeqRecorder(), newSeqRecorder(), newSeqRecorder()}
	for _, r := range broadcast {
		subscribe(r)
	}
	for _, r := range group {
		subscribe(r, broker.Queue("e1"))
	}
	// Subscribe returns once the server has the subscription: no probes needed
	body := make([]byte, 100)
	for i := 0; i < n; i++ {
		m := &broker.Message{Header: map[string]string{seqHeader: strconv.Itoa(i)}, Body: body}
		if err := pub.Publish(tp, m); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	// End markers follow the messages: once a subscriber has one, it has had all it will
	// get from this publisher (order is kept). Each marker reaches one group member:
	// publish them one at a time until every member has had one.
	groupEnds := func() (total, members int) {
		for _, r := range group {
			if _, _, e := r.snapshot(); e > 0 {
				total += e
				members++
			}
		}
		return total, members
	}
	for k := 1; ; k++ {
		if err := pub.Publish(tp, &broker.Message{Header: map[string]string{seqHeader: "end"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "an end marker did not reach the group", func() bool { total, _ := groupEnds(); return total == k })
		if _, members := groupEnds(); members == len(group) {
			break
		}
		if k == 200 {
			t.Fatalf("200 end markers did not reach every group member: NATS did not spread them")
		}
	}
	waitFor(t, 20*time.Second, "the end markers did not reach every broadcast subscriber", func() bool {
		for _, r := range broadcast {
			if _, _, e := r.snapshot(); e == 0 {
				return false
			}
		}
		return true
	})

	for i, r := range broadcast {
		got, reorders, _ := r.snapshot()
		if len(got) != n || reorders != 0 {
			t.Errorf("broadcast subscriber %d: %d messages, %d out of order; want %d in order", i, len(got), reorders, n)
			continue
		}
		for j, v := range got {
			if v != j {
				t.Errorf("broadcast subscriber %d: message %d is %d", i, j, v)
				break
			}
		}
	}
	seen := make([]int, n)
	total := 0
	for i, r := range group {
		got, reorders, _ := r.snapshot()
		t.Logf("group member %d: %d messages", i, len(got))
		if reorders != 0 {
			t.Errorf("group member %d: %d messages out of order", i, reorders)
		}
		total += len(got)
		for _, v := range got {
			if v >= 0 && v < n {
				seen[v]++
			}
		}
	}
	missing, dups := 0, 0
	for _, c := range seen {
		if c == 0 {
			missing++
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if total != n || missing != 0 || dups != 0 {
		t.Errorf("queue group: %d deliveries, %d messages missing, %d duplicates; want %d, 0, 0", total, missing, dups, n)
	}
	for i, r := range append(broadcast, group...) {
		if c := r.concurrent.Load(); c != 0 {
			t.Errorf("subscriber %d: its handler was called %d times while already running", i, c)
		}
	}
	for i, b := range brokers {
		if d := dropped(t, b); d != 0 {
			t.Errorf("subscriber %d dropped %d messages", i, d)
		}
	}
	select {
	case err := <-errs:
		t.Errorf("reported: %v", err)
	default:
	}
}

// TestE5SlowConsumer is battery E5 for NATS (CI form): a publisher far faster than a
// stuck handler. The subscription holds no more than its pending limit, so memory stays
// bounded; the rest is dropped, counted and reported, and every message is either
// delivered or counted as dropped.
func TestE5SlowConsumer(t *testing.T) {
	const (
		n     = 20000
		size  = 1024
		limit = 100
	)
	reports := make(chan error, 64)
	var otherErrs atomic.Int64
	sb := connected(t, natsbroker.PendingLimits(limit, 1<<20), broker.ErrorHandler(func(ev broker.Event) error {
		if !errors.Is(ev.Error(), natsbroker.ErrSlowConsumer) {
			otherErrs.Add(1)
			return nil
		}
		select {
		case reports <- ev.Error():
		default:
		}
		return nil
	}))
	pub := connected(t)
	tp := topic(t)
	release := make(chan struct{})
	var delivered atomic.Int64
	sub, err := sb.Subscribe(tp, func(broker.Event) error {
		<-release // stuck until the test lets it go
		delivered.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	base := heapInuse()
	body := make([]byte, size)
	for i := 0; i < n; i++ {
		if err := pub.Publish(tp, &broker.Message{Body: body}); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	// At most limit messages are held: once n-limit are dropped, all have arrived. Were
	// the limit not enforced, nothing would be dropped and this would time out.
	waitFor(t, 20*time.Second, "the messages beyond the pending limit were not dropped", func() bool {
		return dropped(t, sub)+limit >= n
	})
	grown := int64(heapInuse()) - int64(base)
	t.Logf("heap grew by %d KiB while %d KiB were published to a stuck handler", grown>>10, n*size>>10)
	if bound := int64(8 << 20); grown > bound {
		t.Errorf("heap grew by %d bytes, more than %d: pending messages not bounded", grown, bound)
	}
	select {
	case err := <-reports:
		t.Logf("reported: %v", err)
	case <-time.After(5 * time.Second):
		t.Error("the drops were not reported to the ErrorHandler")
	}

	releaseOnce.Do(func() { close(release) })
	waitFor(t, 20*time.Second, "delivered + dropped did not reach the messages published", func() bool {
		return uint64(delivered.Load())+dropped(t, sub) == n
	})
	d := dropped(t, sub)
	if d == 0 || d > n-limit {
		t.Errorf("dropped %d, want between 1 and %d", d, n-limit)
	}
	if got := dropped(t, sb); got != d {
		t.Errorf("the broker counts %d drops, its only subscription %d", got, d)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if got := dropped(t, sub); got != d {
		t.Errorf("after Unsubscribe the subscription counts %d drops, before %d", got, d)
	}
	if got := dropped(t, sb); got != d {
		t.Errorf("after Unsubscribe the broker counts %d drops, want %d", got, d)
	}
	if otherErrs.Load() != 0 {
		t.Errorf("%d other errors reported", otherErrs.Load())
	}
}

// TestE5SlowConsumerLong is battery E5's long form (MICRO_TEST_LONG=1): for 30 s a
// publisher sends 10 times as fast as the handler works. Memory stays bounded (heap and
// RSS), every message is delivered or counted as dropped, and drops are reported.
func TestE5SlowConsumerLong(t *testing.T) {
	if !testutil.Long() {
		t.Skip("long tier: set MICRO_TEST_LONG=1")
	}
	const (
		duration = 30 * time.Second
		rate     = 10000 // published per second
		work     = time.Millisecond
		size     = 1024
		limit    = 1000
	)
	var reports atomic.Int64
	sb := connected(t, natsbroker.PendingLimits(limit, 4<<20), broker.ErrorHandler(func(ev broker.Event) error {
		if errors.Is(ev.Error(), natsbroker.ErrSlowConsumer) {
			reports.Add(1)
		}
		return nil
	}))
	pub := connected(t)
	tp := topic(t)
	var delivered atomic.Int64
	sub, err := sb.Subscribe(tp, func(broker.Event) error {
		time.Sleep(work) // the handler's work: 10 times slower than the publisher
		delivered.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	baseHeap, baseRSS := heapInuse(), rss(t)
	var maxHeap, maxRSS uint64
	body := make([]byte, size)
	published := 0
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < duration {
		<-tick.C
		for i := 0; i < rate/100; i++ {
			if err := pub.Publish(tp, &broker.Message{Body: body}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			published++
		}
		if published%(rate) == 0 {
			maxHeap, maxRSS = max(maxHeap, heapInuse()), max(maxRSS, rss(t))
		}
	}
	t.Logf("published %d in %s; heap max +%d KiB, RSS max +%d KiB", published, duration, (int64(maxHeap)-int64(baseHeap))>>10, (int64(maxRSS)-int64(baseRSS))>>10)
	if int64(maxRSS)-int64(baseRSS) > 64<<20 {
		t.Errorf("RSS grew by more than 64 MiB")
	}
	if int64(maxHeap)-int64(baseHeap) > 32<<20 {
		t.Errorf("heap grew by more than 32 MiB")
	}
	waitFor(t, 30*time.Second, "delivered + dropped did not reach the messages published", func() bool {
		return delivered.Load()+int64(dropped(t, sub)) == int64(published)
	})
	if dropped(t, sub) == 0 || reports.Load() == 0 {
		t.Errorf("dropped %d, reports %d: want both > 0", dropped(t, sub), reports.Load())
	}
	t.Logf("delivered %d, dropped %d, %d reports", delivered.Load(), dropped(t, sub), reports.Load())
}

// heapInuse returns MemStats.HeapInuse after two collections.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rss returns the process's resident set in bytes (0 where /proc is missing).
func rss(t testing.TB) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
