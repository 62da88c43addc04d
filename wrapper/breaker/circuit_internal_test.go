package breaker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/errors"
)

// fakeClock is a clock the test moves by hand, for the rolling window.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testBreaker(t *testing.T, opts ...Option) (*Breaker, *fakeClock) {
	t.Helper()
	cfg, err := newConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	return newBreaker(cfg, clk.now), clk
}

var errDown = errors.ServiceUnavailable("backend", "down")

// outcome lets one call through b and records err.
func outcome(t *testing.T, b *Breaker, service string, err error) {
	t.Helper()
	tk, rerr := b.allow(service)
	if rerr != nil {
		t.Fatalf("refused: %v", rerr)
	}
	b.done(tk, err)
}

// TestWindowRolls: failures older than the window no longer count towards the ratio.
func TestWindowRolls(t *testing.T) {
	b, clk := testBreaker(t, WithConsecutiveFailures(0), WithFailureRatio(0.5, 4), WithWindow(100*time.Millisecond))
	for i := 0; i < 3; i++ {
		outcome(t, b, "s", errDown)
	}
	clk.advance(100 * time.Millisecond) // the three leave the window
	outcome(t, b, "s", errDown)
	if s := b.State("s"); s != StateClosed {
		t.Fatalf("state %s: old failures counted", s)
	}
	// the window rolls bucket by bucket: 100 ms on, the failure above has left it and
	// these successes 10 ms younger are still in
	clk.advance(10 * time.Millisecond)
	for i := 0; i < 3; i++ {
		outcome(t, b, "s", nil)
	}
	clk.advance(90 * time.Millisecond)
	outcome(t, b, "s", errDown) // 1 of 4
	outcome(t, b, "s", errDown) // 2 of 5
	if s := b.State("s"); s != StateClosed {
		t.Fatalf("state %s at 2 of 5", s)
	}
	outcome(t, b, "s", errDown) // 3 of 6
	if s := b.State("s"); s != StateOpen {
		t.Fatalf("state %s at 3 of 6", s)
	}
}

// TestStaleOutcome: a call let through before the circuit changed state does not count.
func TestStaleOutcome(t *testing.T) {
	b, clk := testBreaker(t, WithConsecutiveFailures(1), WithOpenTimeout(time.Second))
	slow, _ := b.allow("s")
	outcome(t, b, "s", errDown) // opens
	clk.advance(time.Second)
	probe, err := b.allow("s")
	if err != nil || !probe.probe {
		t.Fatalf("no probe: %v", err)
	}
	b.done(slow, nil) // the slow call of the closed circuit succeeds: it must not close it
	if s := b.State("s"); s != StateHalfOpen {
		t.Fatalf("state %s after a stale success", s)
	}
	b.done(probe, nil)
	if s := b.State("s"); s != StateClosed {
		t.Fatalf("state %s after the probe", s)
	}
}

// TestMaxServices: the circuits stay within the bound; open circuits are kept; with
// every circuit open, new services pass unguarded.
func TestMaxServices(t *testing.T) {
	b, _ := testBreaker(t, WithMaxServices(8), WithConsecutiveFailures(1), WithOpenTimeout(time.Hour))
	outcome(t, b, "bad", errDown)
	for i := 0; i < 100; i++ {
		name := fmt.Sprint("svc", i)
		outcome(t, b, name, nil)
		if i%3 == 0 {
			outcome(t, b, name, errors.NotFound("x", "")) // busy but healthy
		}
	}
	b.mu.RLock()
	n := len(b.circuits)
	b.mu.RUnlock()
	if n > 8 {
		t.Fatalf("%d circuits", n)
	}
	if s := b.State("bad"); s != StateOpen {
		t.Fatalf("the open circuit was dropped: %s", s)
	}
	for i := 0; i < 7; i++ {
		outcome(t, b, fmt.Sprint("bad", i), errDown)
	}
	tk, err := b.allow("new")
	if err != nil || tk.c != nil {
		t.Fatalf("with every circuit open a new service got %+v, %v", tk, err)
	}
	b.done(tk, errDown) // records nothing
	if _, err := b.allow("bad3"); err == nil {
		t.Fatal("an open circuit let a call through")
	}
}

// TestChangesInOrder: changes of many circuits driven at once reach the callback one at
// a time, each circuit's in order.
func TestChangesInOrder(t *testing.T) {
	var active, maxActive atomic.Int32
	var mu sync.Mutex
	last := map[string]State{}
	bad := make(chan string, 1)
	b, clk := testBreaker(t, WithConsecutiveFailures(1), WithOpenTimeout(time.Millisecond), WithStateChangeFunc(func(c Change) {
		n := active.Add(1)
		defer active.Add(-1)
		for m := maxActive.Load(); n > m && !maxActive.CompareAndSwap(m, n); m = maxActive.Load() {
		}
		mu.Lock()
		defer mu.Unlock()
		if last[c.Service] != c.From {
			select {
			case bad <- fmt.Sprintf("%s: %s -> %s after %s", c.Service, c.From, c.To, last[c.Service]):
			default:
			}
		}
		last[c.Service] = c.To
	}))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				svc := fmt.Sprint("s", i%4)
				tk, err := b.allow(svc)
				if err != nil {
					clk.advance(time.Millisecond)
					continue
				}
				if i%2 == 0 {
					b.done(tk, errDown)
				} else {
					b.done(tk, nil)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case s := <-bad:
		t.Fatal(s)
	default:
	}
	if maxActive.Load() != 1 {
		t.Fatalf("%d callbacks at once", maxActive.Load())
	}
	b.notes.mu.Lock()
	left := len(b.notes.queue)
	b.notes.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d changes never delivered", left)
	}
}

// TestCallbackPanic: a panicking callback does not stop later deliveries.
func TestCallbackPanic(t *testing.T) {
	var got []State
	b, clk := testBreaker(t, WithConsecutiveFailures(1), WithOpenTimeout(time.Millisecond), WithStateChangeFunc(func(c Change) {
		got = append(got, c.To)
		if c.To == StateOpen && len(got) == 1 {
			panic("callback bug")
		}
	}))
	func() {
		defer func() { _ = recover() }()
		outcome(t, b, "s", errDown)
	}()
	clk.advance(time.Millisecond)
	outcome(t, b, "s", nil)
	if fmt.Sprint(got) != "[open half-open closed]" {
		t.Fatalf("delivered %v", got)
	}
}

// TestUnansweredProbe: probes out for a whole open period count as failed, so a hung
// probe does not keep the circuit half-open for good.
func TestUnansweredProbe(t *testing.T) {
	b, clk := testBreaker(t, WithConsecutiveFailures(1), WithOpenTimeout(time.Second))
	outcome(t, b, "s", errDown)
	clk.advance(time.Second)
	hung, err := b.allow("s")
	if err != nil || !hung.probe {
		t.Fatalf("no probe: %v", err)
	}
	clk.advance(999 * time.Millisecond)
	if _, err := b.allow("s"); err == nil {
		t.Fatal("a second call passed while the probe is out")
	}
	clk.advance(time.Millisecond)
	if _, err := b.allow("s"); err == nil || b.State("s") != StateOpen {
		t.Fatalf("state %s, %v: the unanswered probe did not reopen the circuit", b.State("s"), err)
	}
	b.done(hung, nil) // too late: stale
	if s := b.State("s"); s != StateOpen {
		t.Fatalf("state %s after a stale probe", s)
	}
	clk.advance(2 * time.Second) // the open period doubled
	outcome(t, b, "s", nil)
	if s := b.State("s"); s != StateClosed {
		t.Fatalf("state %s", s)
	}
}
