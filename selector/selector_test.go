package selector_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func services() []*registry.Service {
	return []*registry.Service{
		{Name: "x", Version: "1", Endpoints: []*registry.Endpoint{{Name: "A.B"}}, Nodes: []*registry.Node{
			{Id: "a", Metadata: map[string]string{"zone": "eu"}}, {Id: "b", Metadata: map[string]string{"zone": "us"}}}},
		{Name: "x", Version: "2", Endpoints: []*registry.Endpoint{{Name: "A.C"}}, Nodes: []*registry.Node{
			{Id: "c", Metadata: map[string]string{"zone": "eu"}}}},
	}
}

func ids(s []*registry.Service) string {
	out := ""
	for _, svc := range s {
		for _, n := range svc.Nodes {
			out += n.Id
		}
	}
	return out
}

func TestFilters(t *testing.T) {
	cases := []struct {
		name string
		f    selector.Filter
		want string
	}{
		{"endpoint A.B", selector.FilterEndpoint("A.B"), "ab"},
		{"endpoint A.C", selector.FilterEndpoint("A.C"), "c"},
		{"endpoint none", selector.FilterEndpoint("Z.Z"), ""},
		{"label eu", selector.FilterLabel("zone", "eu"), "ac"},
		{"label missing", selector.FilterLabel("rack", "1"), ""},
		{"version 1", selector.FilterVersion("1"), "ab"},
		{"version 3", selector.FilterVersion("3"), ""},
	}
	for _, c := range cases {
		in := services()
		got := ids(c.f(in))
		if got != c.want {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
		if ids(in) != "abc" {
			t.Errorf("%s: the filter changed its input", c.name)
		}
	}
}

func distribution(t *testing.T, strategy selector.Strategy, picks int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	next := strategy(services())
	for i := 0; i < picks; i++ {
		n, err := next()
		if err != nil {
			t.Fatal(err)
		}
		counts[n.Id]++
	}
	return counts
}

func TestRandomIsUniform(t *testing.T) {
	counts := distribution(t, selector.Random, 30000)
	for id, n := range counts {
		if share := float64(n) / 30000; share < 0.30 || share > 0.366 {
			t.Fatalf("%s got %.1f%%", id, share*100)
		}
	}
}

func TestRoundRobinIsEven(t *testing.T) {
	counts := distribution(t, selector.RoundRobin, 3000)
	for id, n := range counts {
		if n != 1000 {
			t.Fatalf("%s got %d of 3000", id, n)
		}
	}
}

func TestEmpty(t *testing.T) {
	for _, s := range []selector.Strategy{selector.Random, selector.RoundRobin, selector.LeastLoaded, selector.Hash("k")} {
		if _, err := s(nil)(); !errors.Is(err, selector.ErrNoneAvailable) {
			t.Fatalf("got %v", err)
		}
	}
}

func TestSelect(t *testing.T) {
	r := registry.NewMemoryRegistry()
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()
	if _, err := s.Select("x"); !errors.Is(err, selector.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	next, err := s.Select("x", selector.WithFilter(selector.FilterVersion("2")))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := next(); n.Id != "c" {
		t.Fatalf("got %s", n.Id)
	}
	if _, err := s.Select("x", selector.WithFilter(selector.FilterVersion("9"))); !errors.Is(err, selector.ErrNoneAvailable) {
		t.Fatalf("got %v", err)
	}
	next, _ = s.Select("x", selector.WithStrategy(selector.RoundRobin))
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		n, _ := next()
		seen[n.Id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("round robin saw %v", seen)
	}
	if s.String() != "registry" {
		t.Fatal(s.String())
	}
}

// BenchmarkSelect is a Select and one Next against a warm cache of six nodes in two
// versions, for each strategy; hash uses a different key (of 1,024) on each call.
// Without filters and ejections, only hash allocates: its Next, which holds the key.
func BenchmarkSelect(b *testing.B) {
	r := registry.NewMemoryRegistry()
	for v := 1; v <= 2; v++ {
		svc := &registry.Service{Name: "x", Version: fmt.Sprint(v)}
		for i := 0; i < 3; i++ {
			svc.Nodes = append(svc.Nodes, &registry.Node{Id: fmt.Sprintf("x-%d-%d", v, i), Address: fmt.Sprintf("127.0.0.1:%d", 8000+10*v+i)})
		}
		_ = r.Register(svc)
	}
	// The options of each key are made beforehand: WithHashKey's closure is the
	// caller's allocation, not the selector's.
	keyed := make([][]selector.SelectOption, 1024)
	for i := range keyed {
		keyed[i] = []selector.SelectOption{selector.WithHashKey(fmt.Sprint("user-", i))}
	}
	for _, st := range []struct {
		name string
		s    selector.Strategy
		key  bool
	}{
		{"random", selector.Random, false},
		{"roundrobin", selector.RoundRobin, false},
		{"leastloaded", selector.LeastLoaded, false},
		{"hash", selector.Random, true},
	} {
		b.Run(st.name, func(b *testing.B) {
			s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(st.s))
			defer s.Close()
			next, err := s.Select("x")
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < 100; i++ { // some load to learn from
				n, _ := next()
				s.(selector.Tracker).Track("x", n)(nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var next selector.Next
				if st.key {
					next, _ = s.Select("x", keyed[i%len(keyed)]...)
				} else {
					next, _ = s.Select("x")
				}
				if _, err := next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTrack is the load tracking of one attempt: Track, then done.
func BenchmarkTrack(b *testing.B) {
	r := registry.NewMemoryRegistry()
	_ = r.Register(services()[0])
	s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(selector.LeastLoaded))
	defer s.Close()
	next, _ := s.Select("x")
	n, _ := next()
	t := s.(selector.Tracker)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.Track("x", n)(nil)
	}
}

func ExampleRandom() {
	next := selector.Random([]*registry.Service{{Name: "x", Nodes: []*registry.Node{{Id: "only", Address: "127.0.0.1:8080"}}}})
	n, _ := next()
	fmt.Println(n.Address)
	// Output: 127.0.0.1:8080
}

func nodesOf(ids ...string) []*registry.Service {
	s := &registry.Service{Name: "x"}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{Id: id})
	}
	return []*registry.Service{s}
}

func TestHashIsStableAndMovesFewKeys(t *testing.T) {
	three, four := nodesOf("a", "b", "c"), nodesOf("a", "b", "c", "d")
	moved, counts := 0, map[string]int{}
	const keys = 30000
	for k := 0; k < keys; k++ {
		key := fmt.Sprint("user-", k)
		n1, _ := selector.Hash(key)(three)()
		again, _ := selector.Hash(key)(three)()
		if n1.Id != again.Id {
			t.Fatalf("key %s went to %s then %s", key, n1.Id, again.Id)
		}
		counts[n1.Id]++
		n2, _ := selector.Hash(key)(four)()
		if n2.Id != n1.Id {
			if n2.Id != "d" {
				t.Fatalf("key %s moved from %s to %s, not to the new node", key, n1.Id, n2.Id)
			}
			moved++
		}
	}
	for id, n := range counts {
		if share := float64(n) / keys; share < 0.30 || share > 0.366 {
			t.Fatalf("%s got %.1f%% of the keys", id, share*100)
		}
	}
	if share := float64(moved) / keys; share < 0.2 || share > 0.3 {
		t.Fatalf("%.1f%% of the keys moved when a fourth node joined, want about 25%%", share*100)
	}
	// retries walk the key's ranking: every node once
	next := selector.Hash("k")(three)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		n, _ := next()
		seen[n.Id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("retries saw %v", seen)
	}
}

func TestWithHashKey(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()
	first := ""
	for i := 0; i < 20; i++ {
		next, err := s.Select("x", selector.WithHashKey("user-42"))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := next()
		if first == "" {
			first = n.Id
		}
		if n.Id != first {
			t.Fatalf("the key went to %s and %s", first, n.Id)
		}
	}
}

// strategies are the ways a registry selector picks, each as the options of a Select.
var strategies = []struct {
	name string
	opts []selector.SelectOption
}{
	{"random", []selector.SelectOption{selector.WithStrategy(selector.Random)}},
	{"roundrobin", []selector.SelectOption{selector.WithStrategy(selector.RoundRobin)}},
	{"leastloaded", []selector.SelectOption{selector.WithStrategy(selector.LeastLoaded)}},
	{"hashkey", []selector.SelectOption{selector.WithHashKey("user-1")}},
	{"custom", []selector.SelectOption{selector.WithStrategy(selector.Hash("user-2"))}},
}

// picked returns the nodes 60 Selects, of three picks each, return.
func picked(t *testing.T, s selector.Selector, opts ...selector.SelectOption) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < 60; i++ {
		next, err := s.Select("x", opts...)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 3; k++ {
			n, err := next()
			if err != nil {
				t.Fatal(err)
			}
			seen[n.Id] = true
		}
	}
	return seen
}

func keys(m map[string]bool) string {
	out := ""
	for _, id := range []string{"a", "b", "c"} {
		if m[id] {
			out += id
		}
	}
	return out
}

// TestFiltersWithEveryStrategy: FilterVersion, FilterLabel and FilterEndpoint narrow the
// nodes of every strategy, through the registry selector; a filter that leaves nothing
// is ErrNoneAvailable.
func TestFiltersWithEveryStrategy(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()
	filters := []struct {
		name string
		f    selector.Filter
		want string
	}{
		{"none", nil, "abc"},
		{"version 1", selector.FilterVersion("1"), "ab"},
		{"version 2", selector.FilterVersion("2"), "c"},
		{"label eu", selector.FilterLabel("zone", "eu"), "ac"},
		{"label us", selector.FilterLabel("zone", "us"), "b"},
		{"endpoint A.C", selector.FilterEndpoint("A.C"), "c"},
		{"endpoint A.B", selector.FilterEndpoint("A.B"), "ab"},
	}
	for _, st := range strategies {
		for _, f := range filters {
			opts := st.opts
			if f.f != nil {
				opts = append(append([]selector.SelectOption(nil), st.opts...), selector.WithFilter(f.f))
			}
			if got := keys(picked(t, s, opts...)); got != f.want {
				t.Errorf("%s, %s: picked %q, want %q", st.name, f.name, got, f.want)
			}
		}
		_, err := s.Select("x", append(append([]selector.SelectOption(nil), st.opts...), selector.WithFilter(selector.FilterVersion("9")))...)
		if !errors.Is(err, selector.ErrNoneAvailable) {
			t.Errorf("%s: a filter that leaves nothing gave %v", st.name, err)
		}
	}
}

// TestEjectionWithEveryStrategy: a node ejected by Mark is picked by no strategy, and
// comes back after Reset.
func TestEjectionWithEveryStrategy(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()
	s.Mark("x", &registry.Node{Id: "b"}, &transport.NotSentError{Err: errors.New("connection refused")})
	for _, st := range strategies {
		if got := keys(picked(t, s, st.opts...)); got != "ac" {
			t.Errorf("%s: picked %q with b ejected", st.name, got)
		}
	}
	s.Reset("x")
	for _, st := range strategies {
		if got := keys(picked(t, s, st.opts...)); got != "abc" {
			t.Errorf("%s: picked %q after Reset", st.name, got)
		}
	}
}

// TestRoundRobinTakesTurnsAcrossSelects: successive Selects of the registry selector
// give successive nodes, also with a filter (Go Micro's round robin starts over at a
// random node on every Select).
func TestRoundRobinTakesTurnsAcrossSelects(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(selector.RoundRobin))
	defer s.Close()
	for _, opts := range [][]selector.SelectOption{nil, {selector.WithFilter(selector.FilterLabel("zone", "eu"))}} {
		counts := map[string]int{}
		var last string
		for i := 0; i < 300; i++ {
			next, err := s.Select("x", opts...)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := next()
			if n.Id == last {
				t.Fatalf("two Selects in a row gave %s", last)
			}
			last = n.Id
			counts[n.Id]++
		}
		for id, k := range counts {
			if k != 300/len(counts) {
				t.Fatalf("%v: %s got %d of 300", opts, id, k)
			}
		}
	}
}

// TestCustomStrategyPerSelect: a strategy the selector does not know is called on every
// Select, with the filtered services.
func TestCustomStrategyPerSelect(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	var calls atomic.Int64
	first := func(services []*registry.Service) selector.Next {
		calls.Add(1)
		return func() (*registry.Node, error) { return services[0].Nodes[0], nil }
	}
	s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(first))
	defer s.Close()
	for i := 0; i < 5; i++ {
		next, _ := s.Select("x", selector.WithFilter(selector.FilterVersion("2")))
		if n, _ := next(); n.Id != "c" {
			t.Fatalf("got %s", n.Id)
		}
	}
	if calls.Load() != 5 {
		t.Fatalf("the strategy ran %d times for 5 Selects", calls.Load())
	}
}

// TestConcurrentSelectAndTrack: Selects, picks and tracked attempts of every strategy
// run while nodes join and leave; under -race this checks the shared node sets and the
// load table.
func TestConcurrentSelectAndTrack(t *testing.T) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()
	tr := s.(selector.Tracker)
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		extra := &registry.Service{Name: "x", Version: "1", Nodes: []*registry.Node{{Id: "d"}}}
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = r.Register(extra)
			_ = r.Deregister(extra)
		}
	}()
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func(w int) {
			st := strategies[w%len(strategies)]
			for i := 0; i < 2000; i++ {
				next, err := s.Select("x", st.opts...)
				if err != nil {
					errs <- err
					return
				}
				n, err := next()
				if err != nil {
					errs <- err
					return
				}
				done := tr.Track("x", n)
				s.Mark("x", n, nil)
				done(nil)
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	<-churned
}
