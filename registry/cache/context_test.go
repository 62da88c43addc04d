package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
)

// ctxRegistry honours GetContext, as a network registry does.
type ctxRegistry struct{ registry.Registry }

func (r ctxRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	if o.Context != nil && o.Context.Err() != nil {
		return nil, o.Context.Err()
	}
	return r.Registry.GetService(name, opts...)
}

// TestCallerContextEndsOnlyItsLookup: a lookup whose caller's context ended returns the
// context's error to that caller, and is not taken for a registry failure by the next.
func TestCallerContextEndsOnlyItsLookup(t *testing.T) {
	mem := registry.NewMemoryRegistry()
	_ = mem.Register(node("a"))
	c := cache.New(ctxRegistry{mem}, cache.WithLogger(logger.NewLogger(logger.WithOutput(&testutil.SyncBuffer{}))))
	defer c.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetService("x", registry.GetContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: got %v, want context.Canceled", err)
	}
	res, err := c.GetService("x")
	if err != nil || sortedIDs(res) != "[1/a@a]" {
		t.Fatalf("next caller: got %v %s, want node a", err, ids(res))
	}
}

// gated holds every lookup until the gate opens or the lookup's context ends, and
// reports each lookup that started.
type gated struct {
	registry.Registry
	entered chan struct{}
	gate    chan struct{}
}

func (r *gated) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	var done <-chan struct{}
	if o.Context != nil {
		done = o.Context.Done()
	}
	select {
	case r.entered <- struct{}{}:
	default:
	}
	select {
	case <-r.gate:
	case <-done:
		return nil, o.Context.Err()
	}
	return r.Registry.GetService(name, opts...)
}

type answer struct {
	res []*registry.Service
	err error
}

func getAsync(c cache.Cache, opts ...registry.GetOption) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		res, err := c.GetService("x", opts...)
		ch <- answer{res, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan answer, what string) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting: %s", what)
		return answer{}
	}
}

// TestLeaderContextEndsMidLookup: when the caller whose lookup others wait on gives up,
// they look up again instead of sharing its context's error.
func TestLeaderContextEndsMidLookup(t *testing.T) {
	for round := 0; round < 20; round++ { // the second caller waits, or comes after
		mem := registry.NewMemoryRegistry()
		_ = mem.Register(node("a"))
		r := &gated{Registry: mem, entered: make(chan struct{}, 1), gate: make(chan struct{})}
		c := cache.New(r, cache.WithLogger(logger.NewLogger(logger.WithOutput(&testutil.SyncBuffer{}))))
		ctx, cancel := context.WithCancel(context.Background())
		leader := getAsync(c, registry.GetContext(ctx))
		recv(t, r.entered, "the leader's lookup")
		other := getAsync(c)
		cancel()
		if a := await(t, leader, "the leader"); !errors.Is(a.err, context.Canceled) {
			t.Fatalf("leader: got %v, want context.Canceled", a.err)
		}
		close(r.gate)
		if a := await(t, other, "the other caller"); a.err != nil || sortedIDs(a.res) != "[1/a@a]" {
			t.Fatalf("round %d: other caller got %v %s, want node a", round, a.err, ids(a.res))
		}
		c.Stop()
	}
}

// TestWaiterContextEnds: a caller waiting on another's lookup returns when its own
// context ends; the lookup goes on for the others.
func TestWaiterContextEnds(t *testing.T) {
	mem := registry.NewMemoryRegistry()
	_ = mem.Register(node("a"))
	r := &gated{Registry: mem, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	c := cache.New(r)
	defer c.Stop()
	leader := getAsync(c)
	recv(t, r.entered, "the leader's lookup")
	ctx, cancel := context.WithCancel(context.Background())
	waiter := getAsync(c, registry.GetContext(ctx))
	cancel()
	if a := await(t, waiter, "the waiter, while the lookup is held"); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("waiter: got %v, want context.Canceled", a.err)
	}
	close(r.gate)
	if a := await(t, leader, "the leader"); a.err != nil || sortedIDs(a.res) != "[1/a@a]" {
		t.Fatalf("leader: got %v %s", a.err, ids(a.res))
	}
}
