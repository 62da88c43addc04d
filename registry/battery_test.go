package registry_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
)

// TestD1MemoryNodeStopsHeartbeating is battery row D1 for the memory registry, which
// lives in its process, so its "crash" is a node that stops renewing: with TTL 2 s and
// renewals every 0.5 s, the node is gone from GetService, a watcher has seen its
// delete, and a selector no longer picks it within TTL + interval + 0.5 s (3 s) of its
// last renewal.
func TestD1MemoryNodeStopsHeartbeating(t *testing.T) {
	testutil.Scenario(t)
	const ttl, interval = 2 * time.Second, 500 * time.Millisecond
	r := registry.NewMemoryRegistry()
	w, err := r.Watch(registry.WatchService("d1"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deleted := make(chan time.Time, 1)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			if res.Action == "delete" && len(res.Service.Nodes) == 1 && res.Service.Nodes[0].Id == "crash" {
				deleted <- time.Now()
				return
			}
		}
	}()
	live := svc("d1", "1", "live")
	crash := svc("d1", "1", "crash")
	sel := selector.NewSelector(selector.Registry(r))
	defer sel.Close()

	var crashed atomic.Bool
	crashedAt := make(chan time.Time, 1)
	done, finished := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-finished }()
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; i < 40; i++ { // at most 20 s
			_ = r.Register(live, registry.RegisterTTL(ttl))
			if !crashed.Load() {
				_ = r.Register(crash, registry.RegisterTTL(ttl))
			} else {
				select {
				case crashedAt <- time.Now():
				default:
				}
			}
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	testutil.Eventually(t, time.Second, func() bool {
		next, err := sel.Select("d1")
		return err == nil && next != nil
	}, "the selector sees the service")
	// the crash: the node's renewals stop; the live node renews on
	crashed.Store(true)
	lastRenewal := (<-crashedAt).Add(-interval)
	bound := ttl + interval + 500*time.Millisecond
	testutil.Eventually(t, bound, func() bool {
		got, err := r.GetService("d1")
		if err != nil {
			return false
		}
		return len(got) == 1 && len(got[0].Nodes) == 1 && got[0].Nodes[0].Id == "live"
	}, "the node that stopped renewing is gone from GetService")
	select {
	case at := <-deleted:
		t.Logf("watcher saw the delete %s after the last renewal", at.Sub(lastRenewal).Round(time.Millisecond))
	case <-time.After(bound - time.Since(lastRenewal)):
		t.Fatal("no delete event within the bound")
	}
	testutil.Eventually(t, bound-time.Since(lastRenewal), func() bool {
		next, err := sel.Select("d1")
		if err != nil {
			return false
		}
		for i := 0; i < 20; i++ {
			if n, err := next(); err != nil || n.Id == "crash" {
				return false
			}
		}
		return true
	}, "the selector stops picking the node")
	if _, err := r.GetService("nothing"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal(err)
	}
}
