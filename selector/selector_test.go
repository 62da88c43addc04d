package selector_test

import (
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
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
	for _, s := range []selector.Strategy{selector.Random, selector.RoundRobin} {
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

func BenchmarkSelect(b *testing.B) {
	r := registry.NewMemoryRegistry()
	for _, svc := range services() {
		_ = r.Register(svc)
	}
	for _, st := range []struct {
		name string
		s    selector.Strategy
	}{{"random", selector.Random}, {"roundrobin", selector.RoundRobin}} {
		b.Run(st.name, func(b *testing.B) {
			s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(st.s))
			defer s.Close()
			_, _ = s.Select("x")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				next, _ := s.Select("x")
				_, _ = next()
			}
		})
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
