package callctx

import (
	"context"
	"errors"
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
