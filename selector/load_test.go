package selector

import (
	"context"
	"errors"
	"testing"
	"time"

	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

// fakeClock is a selector clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// loadSelector returns a registry selector on a fake clock, and services of the nodes.
func loadSelector(ids ...string) (*registrySelector, *fakeClock, []*registry.Service) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := NewSelector(Registry(registry.NewMemoryRegistry())).(*registrySelector)
	s.now, s.base = clock.now, clock.now()
	svc := &registry.Service{Name: "x"}
	for _, id := range ids {
		svc.Nodes = append(svc.Nodes, &registry.Node{Id: id})
	}
	return s, clock, []*registry.Service{svc}
}

// simulate makes calls one after another: each picks a node with LeastLoaded, takes the
// node's latency on the fake clock, and reports its end. It returns the picks per node.
func simulate(s *registrySelector, clock *fakeClock, services []*registry.Service, calls int, latency map[string]time.Duration) map[string]int {
	_, set := s.state("x", services)
	next := set.next(leastLoaded)
	picks := map[string]int{}
	for i := 0; i < calls; i++ {
		n, _ := next()
		done := s.Track("x", n)
		clock.t = clock.t.Add(latency[n.Id])
		done(nil)
		picks[n.Id]++
	}
	return picks
}

// TestLeastLoadedAvoidsSlowNodeAndTakesItBack: a node ten times slower than two others
// gets almost no calls (only probes, as its average decays while it is idle); once it
// is fast again it regains its share within 10 s, even with calls made one at a time,
// where no node is ever busy and the slow node's average must decay below the others'
// for it to get a call.
func TestLeastLoadedAvoidsSlowNodeAndTakesItBack(t *testing.T) {
	s, clock, services := loadSelector("a", "b", "c")
	defer s.Close()
	latency := map[string]time.Duration{"a": time.Millisecond, "b": time.Millisecond, "c": 10 * time.Millisecond}
	simulate(s, clock, services, 1000, latency) // learn
	picks := simulate(s, clock, services, 10000, latency)
	t.Logf("slow: %v", picks)
	if share := float64(picks["c"]) / 10000; share > 0.01 {
		t.Fatalf("the slow node got %.2f%% of the calls: %v", share*100, picks)
	}
	if picks["c"] == 0 {
		t.Fatalf("the slow node was never tried again in %s", 10000*time.Millisecond)
	}
	// c recovers; 10 s later
	latency["c"] = time.Millisecond
	simulate(s, clock, services, 10000, latency)
	picks = simulate(s, clock, services, 3000, latency)
	t.Logf("recovered: %v", picks)
	if share := float64(picks["c"]) / 3000; share < 0.25 {
		t.Fatalf("the recovered node got %.1f%% of the calls: %v", share*100, picks)
	}
}

// TestLeastLoadedNewNode: a node that joins, with no latency data, gets calls at once,
// but a node with no data and more calls in flight loses to one with data.
func TestLeastLoadedNewNode(t *testing.T) {
	s, clock, services := loadSelector("a", "b")
	defer s.Close()
	latency := map[string]time.Duration{"a": time.Millisecond, "b": time.Millisecond, "d": 5 * time.Millisecond}
	simulate(s, clock, services, 100, latency)
	joined := []*registry.Service{{Name: "x", Nodes: append(append([]*registry.Node(nil), services[0].Nodes...), &registry.Node{Id: "d"})}}
	picks := simulate(s, clock, joined, 60, latency)
	t.Logf("after d joined: %v", picks)
	if picks["d"] == 0 {
		t.Fatalf("the new node got no call: %v", picks)
	}
	a, d := new(nodeLoad), new(nodeLoad)
	a.observe(0, 1e6, true)
	d.begin()
	if lighter(d, a, at(0)) || !lighter(a, d, at(0)) {
		t.Fatal("a node without data and with a call in flight was taken over an idle one")
	}
}

// TestLoadTable: the table keeps the records of nodes that stay, adds those that join,
// forgets those that leave, and forgets a service that is gone.
func TestLoadTable(t *testing.T) {
	s, _, services := loadSelector("a", "b", "c")
	defer s.Close()
	st, _ := s.state("x", services)
	recA := st.loads["a"]
	s.Track("x", services[0].Nodes[0]) // in flight on a
	fewer := []*registry.Service{{Name: "x", Nodes: services[0].Nodes[:2]}}
	st, set := s.state("x", fewer)
	if len(st.loads) != 2 || st.loads["c"] != nil || st.loads["a"] != recA || set.loads[0] != recA {
		t.Fatalf("after c left: %v", st.loads)
	}
	if recA.inflight.Load() != 1 {
		t.Fatal("a's record lost its call in flight")
	}
	s.Track("x", &registry.Node{Id: "c"})(nil) // a node that left: not tracked
	if st.loads["c"] != nil {
		t.Fatal("a node that left came back into the table")
	}
	if _, again := s.state("x", fewer); again != set {
		t.Fatal("the same slice made a new set")
	}
	s.forget("x")
	if len(s.states) != 0 {
		t.Fatal("a service that is gone is still kept")
	}
	if _, err := s.Select("x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

// at returns a clock stopped at t.
func at(t int64) func() int64 { return func() int64 { return t } }

// TestLoadSamples: what an attempt's outcome teaches.
func TestLoadSamples(t *testing.T) {
	ms := float64(time.Millisecond)
	cases := []struct {
		name string
		err  error
		want float64 // the average after one 2 ms attempt; 0: none
	}{
		{"success", nil, 2 * ms},
		{"application error", merrors.NotFound("x", "no"), 2 * ms},
		{"cancelled by the caller", merrors.Wrap(context.Canceled, "c", merrors.StatusClientClosedRequest, ""), 0},
		{"not sent", &transport.NotSentError{Err: errors.New("refused")}, float64(failurePenalty)},
		{"server error", merrors.InternalServerError("x", "boom"), float64(failurePenalty)},
		{"deadline", merrors.Wrap(context.DeadlineExceeded, "c", 408, ""), 2 * ms},
	}
	for _, c := range cases {
		l := new(nodeLoad)
		l.begin()
		l.end(0, int64(2*time.Millisecond), c.err)
		if got := l.latency(0, 0); got != c.want || l.inflight.Load() != 0 {
			t.Errorf("%s: average %.0f in flight %d, want %.0f and 0", c.name, got, l.inflight.Load(), c.want)
		}
	}
	// the average decays while idle, not while calls are in flight, and moves by the
	// time between samples
	l := new(nodeLoad)
	l.observe(0, 10*ms, true)
	if got := l.latency(int64(loadDecay), 0); got < 3.6*ms || got > 3.7*ms {
		t.Fatalf("after one decay time idle: %.0f", got)
	}
	if got := l.latency(int64(loadDecay), 1); got != 10*ms {
		t.Fatalf("busy: %.0f", got)
	}
	l.observe(0, 0, true) // a sample at the same instant weighs nothing
	l.observe(int64(100*loadDecay), 1*ms, true)
	if got := l.latency(int64(100*loadDecay), 1); got < 0.99*ms || got > 1.01*ms {
		t.Fatalf("a sample long after the last one: %.0f", got)
	}
}

func TestRanked(t *testing.T) {
	ns := &nodeSet{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		ns.nodes = append(ns.nodes, &registry.Node{Id: id})
		ns.hashes = append(ns.hashes, nodeHash(id))
	}
	hk := keyHash("k")
	seen := map[int]bool{}
	prev := ^uint64(0)
	for k := 0; k < len(ns.nodes); k++ {
		i := ns.ranked(hk, k)
		score := mix(hk ^ ns.hashes[i])
		if seen[i] || score > prev {
			t.Fatalf("rank %d is node %d (score %x after %x)", k, i, score, prev)
		}
		seen[i], prev = true, score
	}
}

func TestLatencyHistogram(t *testing.T) {
	for _, ns := range []int64{1, 1 << 14, 20000, 1e6, 1234567, 1e9, 1 << 36, 1 << 40} {
		i := histBucket(ns)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucket of %d: %d", ns, i)
		}
		if ns < 1<<histMaxShift && histUpper(i) <= ns {
			t.Fatalf("%d ns in bucket %d whose upper bound is %d", ns, i, histUpper(i))
		}
		if i > 0 && histUpper(i-1) > ns {
			t.Fatalf("%d ns in bucket %d, but bucket %d ends at %d", ns, i, i-1, histUpper(i-1))
		}
	}
	var h latencyHist
	if _, ok := h.quantile(0.95); ok {
		t.Fatal("a quantile without samples")
	}
	ms := int64(time.Millisecond)
	for i := 0; i < 100; i++ {
		v := ms
		if i >= 90 {
			v = 100 * ms // the slowest 10 %
		}
		h.add(0, v)
	}
	p50, _ := h.quantile(0.5)
	p95, ok := h.quantile(0.95)
	if !ok || p50 < time.Millisecond || p50 > 1300*time.Microsecond {
		t.Fatalf("p50 %v, want about 1 ms", p50)
	}
	if p95 < 100*time.Millisecond || p95 > 130*time.Millisecond {
		t.Fatalf("p95 %v, want about 100 ms", p95)
	}
	// old samples fade: after 10 half-lives, 100 new fast ones decide
	for i := 0; i < 100; i++ {
		h.add(int64(10*histHalfLife), 2*ms)
	}
	if p95, _ := h.quantile(0.95); p95 > 3*time.Millisecond {
		t.Fatalf("p95 %v after the slow samples faded, want about 2 ms", p95)
	}
}

func TestLatencyOfNode(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	node := &registry.Node{Id: "n1", Address: "127.0.0.1:1"}
	if err := reg.Register(&registry.Service{Name: "lat", Nodes: []*registry.Node{node}}); err != nil {
		t.Fatal(err)
	}
	s := NewSelector(Registry(reg))
	defer s.Close()
	if _, err := s.Select("lat"); err != nil {
		t.Fatal(err)
	}
	lat := s.(Latencies)
	if _, ok := lat.Latency("lat", node, 0.95); ok {
		t.Fatal("a latency before any attempt")
	}
	tr := s.(Tracker)
	for i := 0; i < 20; i++ {
		tr.Track("lat", node)(nil)
	}
	tr.Track("lat", node)(&transport.NotSentError{Err: errors.New("refused")}) // not an answer
	d, ok := lat.Latency("lat", node, 0.95)
	if !ok || d <= 0 || d > time.Second {
		t.Fatalf("p95 of 20 instant attempts: %v %v", d, ok)
	}
	if all, ok := lat.Latency("lat", nil, 0.95); !ok || all != d {
		t.Fatalf("the service's least p95 %v %v, want its one node's %v", all, ok, d)
	}
	if _, ok := lat.Latency("lat", &registry.Node{Id: "other"}, 0.95); ok {
		t.Fatal("a latency of a node the selector does not list")
	}
}
