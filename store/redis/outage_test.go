//go:build linux

package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

// The bounds of the outage tests.
const (
	// outageTimeout is the Timeout of the stores of the outage tests.
	outageTimeout = 250 * time.Millisecond
	// deadlineSlack is how late past its deadline a failing call may return (a loaded
	// machine running the race detector).
	deadlineSlack = 150 * time.Millisecond
	// recoveryBound is how soon after the server returns calls must work again (issue
	// acceptance 4, battery row I3).
	recoveryBound = time.Second
)

// op is one kind of call made during an outage.
type op struct {
	name string
	call func(s store.Store, i int) error
}

var outageOps = []op{
	{"Write", func(s store.Store, i int) error {
		return s.Write(&store.Record{Key: fmt.Sprintf("during/%d", i), Value: []byte("v")})
	}},
	{"Read", func(s store.Store, i int) error { _, err := s.Read("before"); return err }},
	{"List", func(s store.Store, i int) error { _, err := s.List(store.ListPrefix("b")); return err }},
	{"Read", func(s store.Store, i int) error {
		_, err := s.Read("b", store.ReadPrefix(), store.ReadLimit(2))
		return err
	}},
	{"Delete", func(s store.Store, i int) error { return s.Delete(fmt.Sprintf("during/%d", i)) }},
}

// TestI3Outage is battery row I3 and issue acceptance 4: with the server unreachable,
// every call fails within its deadline with an error that names the operation and wraps
// ErrUnavailable, and calls work again within 1 s of the server's return. Two faults on
// a private server: Hang (SIGSTOP, then SIGCONT: connections are accepted, nothing
// answers) and Down (SIGKILL, then a new server on the same port). The outage lasts 1 s
// in CI, the battery's 5 s in the long tier (MICRO_TEST_LONG=1).
func TestI3Outage(t *testing.T) {
	testutil.Scenario(t)
	outage := time.Second
	if testutil.Long() {
		outage = 5 * time.Second
	}
	for _, fault := range []string{"Hang", "Down"} {
		t.Run(fault, func(t *testing.T) {
			srv := startRedisServer(t)
			s := NewStore(store.Nodes(srv.URL()), Timeout(outageTimeout))
			defer s.Close()
			if err := s.Write(&store.Record{Key: "before", Value: []byte("kept")}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Read("before"); err != nil {
				t.Fatal(err)
			}

			if fault == "Hang" {
				srv.freeze()
			} else {
				srv.kill()
			}
			healed := false
			defer func() { // a failed check must not leave the server frozen
				if !healed && fault == "Hang" {
					srv.thaw()
				}
			}()
			start := time.Now()
			var calls int
			var worst time.Duration
			for i := 0; i < 1000 && time.Since(start) < outage; i++ {
				o := outageOps[i%len(outageOps)]
				began := time.Now()
				err := o.call(s, i)
				took := time.Since(began)
				calls++
				worst = max(worst, took)
				checkOutageError(t, o.name, err, took)
				if fault == "Hang" && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s during the hang: %v, want it to wrap context.DeadlineExceeded", o.name, err)
				}
			}
			if testutil.Long() && fault == "Hang" {
				// the default Timeout bounds a call too
				d := NewStore(store.Nodes(srv.URL()))
				began := time.Now()
				_, err := d.Read("before")
				took := time.Since(began)
				if err == nil || !errors.Is(err, ErrUnavailable) || took > DefaultTimeout+deadlineSlack {
					t.Errorf("Read with the default Timeout during the hang: %v after %s, want ErrUnavailable within %s", err, took, DefaultTimeout)
				}
				_ = d.Close()
			}

			var back time.Time
			if fault == "Hang" {
				srv.thaw()
				back = time.Now()
			} else {
				if err := srv.start(); err != nil {
					t.Fatal(err)
				}
				back = time.Now() // it answers PING
			}
			healed = true
			var recovered time.Duration
			var lastErr error
			for attempt := 0; ; attempt++ {
				lastErr = s.Write(&store.Record{Key: "after", Value: []byte("v")})
				if lastErr == nil {
					recovered = time.Since(back)
					break
				}
				if time.Since(back) > recoveryBound || attempt >= 1000 {
					t.Fatalf("calls fail %s after the server returned (%d attempts): %v", time.Since(back), attempt+1, lastErr)
				}
			}
			if recovered > recoveryBound {
				t.Fatalf("the first call that worked ended %s after the server returned, want ≤ %s", recovered, recoveryBound)
			}
			// every operation works again
			if got := readValue(t, s, "after"); got != "v" {
				t.Fatalf("after: %q", got)
			}
			if fault == "Hang" {
				if got := readValue(t, s, "before"); got != "kept" {
					t.Fatalf("before, after the hang: %q", got)
				}
			}
			if _, err := s.List(); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete("after"); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: %d calls failed, the slowest in %s (deadline %s); calls worked again %s after the server returned",
				fault, outage, calls, worst.Round(time.Millisecond), outageTimeout, recovered.Round(time.Millisecond))
		})
	}
}

// checkOutageError checks the error of a call made while the server is unreachable.
func checkOutageError(t *testing.T, name string, err error, took time.Duration) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s during the outage: no error", name)
	case err == store.ErrNotFound:
		t.Fatalf("%s during the outage: ErrNotFound, want an error saying the server is unavailable", name)
	case !errors.Is(err, ErrUnavailable):
		t.Fatalf("%s during the outage: %v, want it to wrap ErrUnavailable", name, err)
	case !strings.Contains(err.Error(), "store/redis: "+name) || !strings.Contains(err.Error(), "127.0.0.1:"):
		t.Fatalf("%s during the outage: %q does not name the backend, the operation and the server", name, err)
	case took > outageTimeout+deadlineSlack:
		t.Fatalf("%s during the outage took %s, past its deadline of %s", name, took, outageTimeout)
	}
}

// TestRestartBetweenCalls: the server restarts between two calls of a store (its pooled
// connections are dead); the first call after the restart succeeds.
func TestRestartBetweenCalls(t *testing.T) {
	srv := startRedisServer(t)
	s := NewStore(store.Nodes(srv.URL()), Timeout(time.Second))
	defer s.Close()
	for i := range 3 {
		if err := s.Write(&store.Record{Key: "k", Value: []byte{byte(i)}}); err != nil {
			t.Fatalf("Write after %d restarts: %v", i, err)
		}
		if recs, err := s.Read("k"); err != nil || recs[0].Value[0] != byte(i) {
			t.Fatalf("Read after %d restarts: %v", i, err)
		}
		if err := srv.restart(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCanceledContext: a store whose context (store.WithContext) is done fails every call
// at once with context.Canceled, not ErrUnavailable.
func TestCanceledContext(t *testing.T) {
	srv := startRedisServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := NewStore(store.Nodes(srv.URL()), store.WithContext(ctx))
	defer s.Close()
	if err := s.Write(&store.Record{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	cancel()
	began := time.Now()
	_, err := s.Read("k")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || time.Since(began) > time.Second {
		t.Fatalf("Read with a canceled context: %v after %s", err, time.Since(began))
	}

	// a context past its deadline is the caller's, not the server's, too
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	s2 := NewStore(store.Nodes(srv.URL()), store.WithContext(past))
	defer s2.Close()
	if _, err := s2.Read("k"); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Read with a context past its deadline: %v", err)
	}
}

func readValue(t *testing.T, s store.Store, key string) string {
	t.Helper()
	recs, err := s.Read(key)
	if err != nil {
		t.Fatalf("Read %q: %v", key, err)
	}
	return string(recs[0].Value)
}
