package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
)

const (
	churnNodes    = 10
	churnTTL      = 2 * time.Second // registration TTL of the churning nodes
	churnTick     = 100 * time.Millisecond
	churnReaders  = 40 // goroutines looking the service up
	churnWatchers = 10 // goroutines watching: half for the whole run, half restarting
	// maxIterations bounds every loop of the test by count; the churn deadline bounds it
	// by time.
	maxIterations = 10_000_000
)

// truth is the test's record of the registry: each change is made and recorded under mu,
// so a reader that locks mu after receiving an answer sees every change the answer can
// reflect.
type truth struct {
	mu         sync.Mutex
	nodes      [churnNodes]nodeTruth
	violations []string
	failures   int // violations, counting those not kept
	answers    int // answers checked
	nonEmpty   int // of which with nodes
}

type nodeTruth struct {
	addr string // address of the last registration; "" before the first
	// liveUntil is the latest time the node can be in the registry: its expiry while
	// registered (in the future while live), else when it was deregistered or expired.
	liveUntil time.Time
	oldAddr   string    // the address before addr
	oldUntil  time.Time // the latest time the node can have been in the registry at oldAddr
}

var forever = time.Now().Add(100 * 365 * 24 * time.Hour)

func churnService(i int, addr string) *registry.Service {
	return &registry.Service{Name: "x", Version: "1", Nodes: []*registry.Node{{Id: "n" + strconv.Itoa(i), Address: addr}}}
}

// register registers node i at addr with ttl (0: forever) and records it.
func (g *truth) register(t *testing.T, r registry.Registry, i int, addr string, ttl time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var opts []registry.RegisterOption
	if ttl > 0 {
		opts = append(opts, registry.RegisterTTL(ttl))
	}
	if err := r.Register(churnService(i, addr), opts...); err != nil {
		t.Errorf("register n%d: %v", i, err)
	}
	now := time.Now() // the registry set its expiry before: now+ttl is no earlier
	n := &g.nodes[i]
	if n.addr != "" && n.addr != addr {
		n.oldAddr, n.oldUntil = n.addr, minTime(now, n.liveUntil)
	}
	n.addr = addr
	n.liveUntil = forever
	if ttl > 0 {
		n.liveUntil = now.Add(ttl)
	}
}

// deregister deregisters node i (which may have expired already) and records it.
func (g *truth) deregister(t *testing.T, r registry.Registry, i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := &g.nodes[i]
	if err := r.Deregister(churnService(i, n.addr)); err != nil {
		t.Errorf("deregister n%d: %v", i, err)
	}
	n.liveUntil = minTime(n.liveUntil, time.Now())
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (g *truth) violation(format string, args ...interface{}) {
	g.failures++
	if len(g.violations) < 20 {
		g.violations = append(g.violations, fmt.Sprintf(format, args...))
	}
}

// check records a violation for every node of an answer obtained by a call that began at
// t0 that is neither live nor dead (or moved from that address) for less than the TTL.
func (g *truth) check(from string, t0 time.Time, services []*registry.Service) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.answers++
	floor := t0.Add(-churnTTL)
	seen := make(map[string]bool, churnNodes)
	for _, s := range services {
		if s.Name != "x" || s.Version != "1" {
			g.violation("%s: service %s version %s in the answer", from, s.Name, s.Version)
			continue
		}
		if len(s.Nodes) > 0 {
			g.nonEmpty++
		}
		for _, nd := range s.Nodes {
			i, err := strconv.Atoi(strings.TrimPrefix(nd.Id, "n"))
			if err != nil || i < 0 || i >= churnNodes || !strings.HasPrefix(nd.Id, "n") {
				g.violation("%s: unknown node %q", from, nd.Id)
				continue
			}
			if seen[nd.Id] {
				g.violation("%s: node %s twice in one answer %s", from, nd.Id, ids(services))
			}
			seen[nd.Id] = true
			n := g.nodes[i]
			if !n.liveUntil.After(floor) {
				g.violation("%s: node %s served %v after it left the registry", from, nd.Id, t0.Sub(n.liveUntil).Round(time.Millisecond))
			}
			if nd.Address != n.addr && !(nd.Address == n.oldAddr && n.oldUntil.After(floor)) {
				g.violation("%s: node %s served at %s, %v after it moved to %s", from, nd.Id, nd.Address, t0.Sub(n.oldUntil).Round(time.Millisecond), n.addr)
			}
		}
	}
}

// checkResult checks what a watcher of the cache handed over: changes of the service, of
// known nodes.
func (g *truth) checkResult(from string, r *registry.Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case r == nil || r.Service == nil:
		g.violation("%s: empty result %+v", from, r)
		return
	case r.Action != "create" && r.Action != "update" && r.Action != "delete":
		g.violation("%s: action %q", from, r.Action)
	case r.Service.Name != "x":
		g.violation("%s: result for service %q", from, r.Service.Name)
	}
	for _, nd := range r.Service.Nodes {
		i, err := strconv.Atoi(strings.TrimPrefix(nd.Id, "n"))
		if err != nil || i < 0 || i >= churnNodes || g.nodes[i].addr == "" {
			g.violation("%s: %s result names node %q, never registered", from, r.Action, nd.Id)
		}
	}
}

// churnBackend is a memory registry that counts lookups and can break the cache's own
// watch (the one asked for without options), as a lost registry connection would.
type churnBackend struct {
	registry.Registry
	lookups atomic.Int64

	mu    sync.Mutex
	watch *breakable
}

func (b *churnBackend) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	b.lookups.Add(1)
	return b.Registry.GetService(name, opts...)
}

func (b *churnBackend) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := b.Registry.Watch(opts...)
	if err != nil || len(opts) > 0 {
		return w, err
	}
	bw := &breakable{Watcher: w, broken: make(chan struct{})}
	b.mu.Lock()
	b.watch = bw
	b.mu.Unlock()
	return bw, nil
}

// breakWatch breaks the cache's current watch; it reports false when there is none (the
// cache has not started a new one since the last break).
func (b *churnBackend) breakWatch() bool {
	b.mu.Lock()
	w := b.watch
	b.watch = nil
	b.mu.Unlock()
	if w == nil {
		return false
	}
	w.fail()
	return true
}

// TestD5CacheUnderChurn is battery row D5 (docs/reliability.md): ten nodes of one service
// register with a 2 s TTL and deregister every 100 ms for 10 s (30 s in the long tier);
// some stop renewing without deregistering, as after a crash, and expire; some move to a
// new address. Meanwhile 40 goroutines look the service up through the cache and 10 watch
// it through the cache, half of them starting and stopping watches repeatedly. Every 2 s
// all nodes that are up leave at once (the service is gone for a while), and the cache's
// own watch of the registry breaks (it must start a new one and look again). Every
// answer must be a subset of the nodes live, or gone for less than the TTL, when the call
// began; once churn stops the cache must hold exactly the live nodes within 1 s.
func TestD5CacheUnderChurn(t *testing.T) {
	churnFor := 10 * time.Second
	if testutil.Long() {
		churnFor = 30 * time.Second
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, churn for %s", seed, churnFor)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	backend := &churnBackend{Registry: registry.NewMemoryRegistry()}
	c := cache.New(backend)
	defer c.Stop()
	g := &truth{}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // also when a check below ends the test early
	var lookups, results atomic.Int64

	// Churn state, one per node; all start registered.
	type nodeState struct {
		up      bool
		crashed int // ticks to go without renewal or goodbye
		addr    int
	}
	var st [churnNodes]nodeState
	addr := func(i int) string { return fmt.Sprintf("10.0.%d.%d:80", st[i].addr, i) }
	for i := range st {
		st[i].up = true
		g.register(t, backend, i, addr(i), churnTTL)
	}

	for r := 0; r < churnReaders; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxIterations && ctx.Err() == nil; i++ {
				t0 := time.Now()
				got, err := c.GetService("x")
				if err != nil && !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("GetService: %v", err)
					return
				}
				g.check("GetService", t0, got)
				lookups.Add(1)
				runtime.Gosched() // with -cpu 1, let the churn keep its pace
			}
		}()
	}
	longWatched := make([]atomic.Int64, churnWatchers/2)
	for w := 0; w < churnWatchers/2; w++ {
		wg.Add(1)
		go func() { // one watch for the whole run
			defer wg.Done()
			wt, err := c.Watch(registry.WatchContext(ctx), registry.WatchService("x"))
			if err != nil {
				t.Errorf("Watch: %v", err)
				return
			}
			defer wt.Stop()
			for i := 0; i < maxIterations; i++ {
				r, err := wt.Next()
				if err != nil {
					if !errors.Is(err, registry.ErrWatcherStopped) || ctx.Err() == nil {
						t.Errorf("long watch ended: %v", err)
					}
					return
				}
				g.checkResult("long watch", r)
				longWatched[w].Add(1)
				results.Add(1)
			}
		}()
	}
	for w := 0; w < churnWatchers-churnWatchers/2; w++ {
		wg.Add(1)
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		go func() { // watch, look up, take a few results, stop; again
			defer wg.Done()
			for i := 0; i < maxIterations && ctx.Err() == nil; i++ {
				wctx, cancel := context.WithTimeout(ctx, time.Duration(10+wrng.IntN(190))*time.Millisecond)
				opts := []registry.WatchOption{registry.WatchContext(wctx)}
				if i%2 == 0 {
					opts = append(opts, registry.WatchService("x"))
				}
				wt, err := c.Watch(opts...)
				if err != nil {
					cancel()
					t.Errorf("Watch: %v", err)
					return
				}
				t0 := time.Now()
				got, err := c.GetService("x")
				if err != nil && !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("GetService: %v", err)
				}
				g.check("GetService after Watch", t0, got)
				lookups.Add(1)
				for k, n := 0, wrng.IntN(8); k < n; k++ {
					r, err := wt.Next()
					if err != nil {
						if !errors.Is(err, registry.ErrWatcherStopped) {
							t.Errorf("short watch ended: %v", err)
						}
						break
					}
					g.checkResult("short watch", r)
					results.Add(1)
				}
				if i%3 == 0 {
					wt.Stop() // sometimes Stop first, sometimes the context alone
				}
				cancel()
				wt.Stop()
			}
		}()
	}

	// Churn, paced by the ticker: each tick every node may come, go, move, renew or crash.
	var crashes, blackouts, breaks int
	ticker := time.NewTicker(churnTick)
	start := time.Now()
	ticks := int(churnFor / churnTick)
	for tk := 0; tk < ticks && time.Since(start) < churnFor+churnFor/2; tk++ {
		<-ticker.C
		if tk%20 == 10 {
			for i := range st {
				if st[i].up && st[i].crashed == 0 {
					g.deregister(t, backend, i)
					st[i].up = false
				}
			}
			blackouts++
			continue
		}
		if tk%20 == 15 && backend.breakWatch() {
			breaks++
		}
		for i := range st {
			s := &st[i]
			switch {
			case s.crashed > 1:
				s.crashed-- // the registry expires it meanwhile
			case s.crashed == 1:
				s.crashed, s.up = 0, false
				if rng.IntN(2) == 0 {
					g.deregister(t, backend, i) // a late goodbye for an expired node
				}
			case s.up:
				switch p := rng.IntN(100); {
				case p < 40:
					g.deregister(t, backend, i)
					s.up = false
				case p < 43:
					s.crashed = int((churnTTL+500*time.Millisecond)/churnTick) + rng.IntN(10)
					crashes++
				case p < 53:
					s.addr ^= 1
					g.register(t, backend, i, addr(i), churnTTL)
				default:
					g.register(t, backend, i, addr(i), churnTTL)
				}
			case rng.IntN(2) == 0:
				s.up = true
				g.register(t, backend, i, addr(i), churnTTL)
			}
		}
	}
	ticker.Stop()
	churned := time.Since(start)

	// Final state: even nodes registered for good at their last address, odd ones gone.
	want := make(map[string]string)
	for i := range st {
		if i%2 == 0 {
			g.register(t, backend, i, addr(i), 0)
			want["n"+strconv.Itoa(i)] = addr(i)
		} else {
			g.deregister(t, backend, i)
		}
	}
	settled := time.Now()
	var last []*registry.Service
	testutil.Eventually(t, time.Second, func() bool {
		got, err := c.GetService("x")
		last = got
		if err != nil || len(got) != 1 || len(got[0].Nodes) != len(want) {
			return false
		}
		for _, n := range got[0].Nodes {
			if want[n.Id] != n.Address {
				return false
			}
		}
		return true
	}, "the cache holds exactly the live nodes")
	converged := time.Since(settled)
	stop()
	wg.Wait()

	g.mu.Lock()
	defer g.mu.Unlock()
	t.Logf("churn %s, %d crashes, %d blackouts, %d broken watches; converged in %s on %s; %d answers (%d with nodes), %d watch results, %d backend lookups",
		churned.Round(time.Millisecond), crashes, blackouts, breaks, converged.Round(time.Microsecond), ids(last), g.answers, g.nonEmpty, results.Load(), backend.lookups.Load())
	if g.failures > 0 {
		t.Errorf("%d answers broke the invariant; the first ones:\n%s", g.failures, strings.Join(g.violations, "\n"))
	}
	if g.nonEmpty == 0 || lookups.Load() == 0 {
		t.Error("no answer had nodes: the test exercised nothing")
	}
	for w := range longWatched {
		if longWatched[w].Load() == 0 {
			t.Errorf("long watcher %d saw no result", w)
		}
	}
}
