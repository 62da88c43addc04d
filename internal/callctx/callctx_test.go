package callctx

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsUntilCancel(t *testing.T) {
	c := New(context.Background(), time.Time{})
	if err := c.Err(); err != nil {
		t.Fatalf("Err of a running context = %v", err)
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a context without a deadline reports one")
	}
	c.Cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after Cancel = %v, want Canceled", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done of a cancelled context is open")
	}
	c.Cancel() // a second Cancel keeps the first reason
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after a second Cancel = %v", err)
	}
}

func TestDeadlineWithoutDone(t *testing.T) {
	c := New(context.Background(), time.Now().Add(20*time.Millisecond))
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v", err)
	}
	for c.Err() == nil { // bounded by the deadline
		time.Sleep(time.Millisecond)
	}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err past the deadline = %v", err)
	}
	select {
	case <-c.Done(): // armed after the end: closed at once
	default:
		t.Fatal("Done made after the deadline is open")
	}
}

func TestDeadlineWithDone(t *testing.T) {
	c := New(context.Background(), time.Now().Add(20*time.Millisecond))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed at the deadline")
	}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v", err)
	}
}

func TestParentEnds(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := New(parent, time.Time{})
	done := c.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed when the parent ended")
	}
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v", err)
	}

	// Unarmed: Err sees the parent's end without a channel.
	parent, cancel = context.WithCancel(context.Background())
	c = New(parent, time.Time{})
	cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err of an unarmed context whose parent ended = %v", err)
	}
}

func TestParentDeadlineWins(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pd, _ := parent.Deadline()
	c := New(parent, time.Now().Add(time.Hour))
	if d, ok := c.Deadline(); !ok || !d.Equal(pd) {
		t.Fatalf("Deadline = %v %v, want the parent's %v", d, ok, pd)
	}
	mine := time.Now().Add(time.Second)
	if d, _ := New(parent, mine).Deadline(); !d.Equal(mine) {
		t.Fatalf("an earlier deadline of its own = %v, want %v", d, mine)
	}
	c.Cancel()
}

// Err, Done and Cancel from many goroutines: every reader sees nil or Canceled, and after
// Cancel returns, every reader sees Canceled.
func TestConcurrentErrAndCancel(t *testing.T) {
	for range 200 {
		c := New(context.Background(), time.Now().Add(time.Minute))
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 0 {
					<-c.Done()
				}
				for range 50 {
					if err := c.Err(); err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("Err = %v", err)
						return
					}
				}
			}()
		}
		c.Cancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after Cancel = %v", err)
		}
		wg.Wait()
	}
}

func BenchmarkErrRunning(b *testing.B) {
	c := New(context.Background(), time.Now().Add(time.Hour))
	c.Done()
	defer c.Cancel()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c.Err() != nil {
				b.Fatal("ended")
			}
		}
	})
}

// TestErrAtDeadlineWithDone: once the deadline has passed, Err reports it at once, even
// with the timer armed by Done and not yet fired. Callers rely on it: a read that timed
// out at the context's deadline asks Err whether the context ended, and must hear yes.
func TestErrAtDeadlineWithDone(t *testing.T) {
	for i := 0; i < 200; i++ {
		dl := time.Now().Add(200 * time.Microsecond)
		c := New(context.Background(), dl)
		c.Done()
		for time.Now().Before(dl) {
		}
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("try %d: Err = %v right after the deadline, want DeadlineExceeded", i, err)
		}
		c.Cancel()
	}
}

// TestDerivedWithoutGoroutine: contexts derived from a Ctx (WithCancel, WithTimeout,
// context.AfterFunc) are ended by it through its AfterFunc hook, with no goroutine per
// child waiting on Done; a child cancelled first unregisters.
func TestDerivedWithoutGoroutine(t *testing.T) {
	c := New(context.Background(), time.Time{})
	before := runtime.NumGoroutine()
	const n = 200
	children := make([]context.Context, 0, n)
	cancels := make([]context.CancelFunc, 0, n)
	for i := 0; i < n; i++ {
		var child context.Context
		var cancel context.CancelFunc
		if i%2 == 0 {
			child, cancel = context.WithCancel(c)
		} else {
			child, cancel = context.WithTimeout(c, time.Hour)
		}
		children = append(children, child)
		cancels = append(cancels, cancel)
	}
	if grown := runtime.NumGoroutine() - before; grown > n/10 {
		t.Fatalf("%d derived contexts started %d goroutines", n, grown)
	}
	// half the children end on their own: they leave the parent's list
	for i := 0; i < n/2; i++ {
		cancels[i]()
	}
	c.mu.Lock()
	left := len(c.after)
	c.mu.Unlock()
	if left != n/2 {
		t.Fatalf("%d functions registered after %d of %d children were cancelled, want %d", left, n/2, n, n/2)
	}
	c.Cancel()
	for i, child := range children {
		select {
		case <-child.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("child %d still running 10 s after its parent was cancelled", i)
		}
		if !errors.Is(child.Err(), context.Canceled) {
			t.Fatalf("child %d: Err = %v, want Canceled", i, child.Err())
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
}

func TestAfterFunc(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		c := New(context.Background(), time.Now().Add(20*time.Millisecond))
		ran := make(chan struct{})
		c.AfterFunc(func() { close(ran) })
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("AfterFunc did not run 10 s after the deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", c.Err())
		}
	})
	t.Run("parent", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		c := New(parent, time.Time{})
		ran := make(chan struct{})
		c.AfterFunc(func() { close(ran) })
		cancel()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("AfterFunc did not run 10 s after the parent ended")
		}
	})
	t.Run("stopped", func(t *testing.T) {
		c := New(context.Background(), time.Time{})
		ran := make(chan struct{}, 1)
		stop := c.AfterFunc(func() { ran <- struct{}{} })
		if !stop() {
			t.Fatal("stop before the end = false, want true")
		}
		if stop() {
			t.Fatal("a second stop = true, want false")
		}
		c.Cancel()
		time.Sleep(20 * time.Millisecond) // a started f would have run by now
		select {
		case <-ran:
			t.Fatal("a stopped function ran")
		default:
		}
	})
	t.Run("after the end", func(t *testing.T) {
		// ended by Err finding the deadline passed, before anything armed the context
		c := New(context.Background(), time.Now().Add(-time.Millisecond))
		if c.Err() == nil {
			t.Fatal("Err past the deadline = nil")
		}
		ran := make(chan struct{})
		stop := c.AfterFunc(func() { close(ran) })
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("AfterFunc on an ended context did not run")
		}
		if stop() {
			t.Fatal("stop after f started = true, want false")
		}
	})
	t.Run("stop after run", func(t *testing.T) {
		c := New(context.Background(), time.Time{})
		ran := make(chan struct{})
		stop := c.AfterFunc(func() { close(ran) })
		c.Cancel()
		<-ran
		if stop() {
			t.Fatal("stop after f ran = true, want false")
		}
	})
}
