package client_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
)

// distServers starts Greeters named by nodes on loopback, each of whose calls takes at
// least its delay.
func distServers(t *testing.T, reg registry.Registry, delays map[string]time.Duration, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		var opts []server.Option
		if d := delays[n]; d > 0 {
			opts = append(opts, server.WrapHandler(func(next server.HandlerFunc) server.HandlerFunc {
				return func(ctx context.Context, req server.Request, rsp interface{}) error {
					time.Sleep(d) // the node's latency, not synchronisation
					return next(ctx, req, rsp)
				}
			}))
		}
		testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Node: n}, opts...)
	}
}

// distCalls makes calls calls to Greeter.Hello from callers goroutines, the i-th with
// the options opts(i) and the name name(i), and counts the calls each node answered.
func distCalls(t *testing.T, c client.Client, calls, callers int, name func(i int) string, opts func(i int) []client.CallOption) map[string]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := map[string]int{}
			defer func() {
				mu.Lock()
				for n, k := range mine {
					counts[n] += k
				}
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= calls {
					return
				}
				var rsp testproto.Response
				req := c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: name(i)})
				if err := c.Call(context.Background(), req, &rsp, opts(i)...); err != nil {
					failed.Store(err)
					return
				}
				_, node, ok := strings.Cut(rsp.Message, " from ")
				if !ok {
					failed.Store(fmt.Errorf("reply %q names no node", rsp.Message))
					return
				}
				mine[node]++
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return counts
}

func anyName(int) string { return "x" }

// distShares makes calls calls with callers goroutines over three Greeters (a, b and
// c; c's calls take slowC more than the others' fast) and the strategy, and returns the
// share of the calls each node answered.
func distShares(t *testing.T, strategy selector.Strategy, calls, callers int, fast, slowC time.Duration) map[string]float64 {
	reg := registry.NewMemoryRegistry()
	distServers(t, reg, map[string]time.Duration{"a": fast, "b": fast, "c": slowC}, "a", "b", "c")
	sel := selector.NewSelector(selector.Registry(reg), selector.SetStrategy(strategy))
	t.Cleanup(func() { _ = sel.Close() })
	c := testutil.NewClient(t, reg, client.Selector(sel))
	start := time.Now()
	counts := distCalls(t, c, calls, callers, anyName, func(int) []client.CallOption { return nil })
	shares := map[string]float64{}
	for n, k := range counts {
		shares[n] = float64(k) / float64(calls)
	}
	t.Logf("%d calls in %s: %v", calls, time.Since(start).Round(time.Millisecond), counts)
	return shares
}

// distScale returns full, the number of calls a distribution test makes in the long tier
// and without the race detector, or with the detector on (CI) its reduced count.
func distScale(full, race int) int {
	if testutil.Race && !testutil.Long() {
		return race
	}
	return full
}

// distEven fails unless a, b and c each have 33 % ± 3 % of the calls.
func distEven(t *testing.T, shares map[string]float64) {
	t.Helper()
	for _, n := range []string{"a", "b", "c"} {
		if s := shares[n]; s < 0.30 || s > 0.3667 {
			t.Errorf("node %s got %.1f%% of the calls", n, s*100)
		}
	}
}

// TestDistributionRandom: with the random strategy, each of three Greeters gets 33 % ±
// 3 % of 30,000 calls from 32 callers (10,000 under the race detector, where the
// standard deviation of a share is 0.5 %, so the bound is six of them).
func TestDistributionRandom(t *testing.T) {
	testutil.Scenario(t)
	distEven(t, distShares(t, selector.Random, distScale(30000, 10000), 32, 0, 0))
}

// TestDistributionRoundRobin: with round robin, each of three Greeters gets 33 % ± 3 %
// of 30,000 calls from 32 callers (3,000 under the race detector); in fact a third to the
// call, as the selector takes turns across all its Selects of the service.
func TestDistributionRoundRobin(t *testing.T) {
	testutil.Scenario(t)
	calls := distScale(30000, 3000)
	shares := distShares(t, selector.RoundRobin, calls, 32, 0, 0)
	distEven(t, shares)
	for n, s := range shares {
		if k := math.Round(s * float64(calls)); k < float64(calls/3) || k > float64(calls/3+1) {
			t.Errorf("node %s got %.0f of %d calls, not a third", n, k, calls)
		}
	}
}

// TestDistributionLeastLoaded: least loaded, learning each node's latency and calls in
// flight from the calls, sends under 10 % of 15,000 calls from 32 callers (6,000 under
// the race detector) to a Greeter ten times slower than the two others (100 ms a call
// against 10 ms). The latencies are long enough for the client's own queueing on a
// loaded CPU, which every node's latency includes, not to blur the difference between
// the nodes (with 1 ms against 10 ms, 32 callers under -race measure about 14 ms against
// 23 ms).
func TestDistributionLeastLoaded(t *testing.T) {
	testutil.Scenario(t)
	shares := distShares(t, selector.LeastLoaded, distScale(15000, 6000), 32, 10*time.Millisecond, 100*time.Millisecond)
	if s := shares["c"]; s >= 0.10 {
		t.Errorf("the slow node got %.1f%% of the calls", s*100)
	}
}

// TestDistributionHash: with WithHashKey, every call with one key goes to one node (2
// calls for each of 3,000 keys over three nodes, 1,500 keys under the race detector);
// when a fourth node joins, only the keys it takes over move (a quarter in theory;
// 20–45 % allowed: the standard deviation at 1,500 keys is 1.1 %), and each of them
// moves to it.
func TestDistributionHash(t *testing.T) {
	testutil.Scenario(t)
	reg := registry.NewMemoryRegistry()
	distServers(t, reg, nil, "a", "b", "c")
	sel := selector.NewSelector(selector.Registry(reg))
	t.Cleanup(func() { _ = sel.Close() })
	c := testutil.NewClient(t, reg, client.Selector(sel))
	keys, callers := distScale(3000, 1500), 32
	key := func(i int) string { return fmt.Sprint("user-", i%keys) }
	byKey := func(i int) []client.CallOption {
		return []client.CallOption{client.WithSelectOption(selector.WithHashKey(key(i)))}
	}
	// placement makes calls with the keys in turn (the request's name is the key) and
	// returns the node of each key, failing if one key went to two nodes.
	placement := func(calls int) map[string]string {
		var mu sync.Mutex
		where := map[string]string{}
		var bad atomic.Value
		kc := &keyClient{Client: c, seen: func(key, node string) {
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := where[key]; ok && prev != node {
				bad.Store(fmt.Sprintf("key %s went to %s and %s", key, prev, node))
			}
			where[key] = node
		}}
		distCalls(t, kc, calls, callers, key, byKey)
		if msg, _ := bad.Load().(string); msg != "" {
			t.Fatal(msg)
		}
		if len(where) != keys {
			t.Fatalf("%d keys placed, want %d", len(where), keys)
		}
		return where
	}
	before := placement(2 * keys)
	per := map[string]int{}
	for _, n := range before {
		per[n]++
	}
	t.Logf("keys per node: %v", per)
	for _, n := range []string{"a", "b", "c"} {
		if share := float64(per[n]) / float64(keys); share < 0.25 || share > 0.42 {
			t.Errorf("node %s holds %.1f%% of the keys", n, share*100)
		}
	}

	distServers(t, reg, nil, "d")
	testutil.Eventually(t, 5*time.Second, func() bool {
		next, err := sel.Select("greeter")
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for i := 0; i < 64; i++ {
			if n, err := next(); err == nil {
				seen[n.Id] = true
			}
		}
		return len(seen) == 4
	}, "the selector sees the fourth node")
	after := placement(keys)
	moved := 0
	for k, n := range after {
		if n == before[k] {
			continue
		}
		if n != "d" {
			t.Fatalf("key %s moved from %s to %s, not to the new node", k, before[k], n)
		}
		moved++
	}
	share := float64(moved) / float64(keys)
	t.Logf("%.1f%% of the keys moved to the new node", share*100)
	if share < 0.20 || share > 0.45 {
		t.Fatalf("%.1f%% of the keys moved when a fourth node joined", share*100)
	}
}

// keyClient reports, for each call, the key it was made with (the request's name) and
// the node that answered.
type keyClient struct {
	client.Client
	seen func(key, node string)
}

func (k *keyClient) Call(ctx context.Context, req client.Request, rsp interface{}, opts ...client.CallOption) error {
	err := k.Client.Call(ctx, req, rsp, opts...)
	if err == nil {
		_, node, _ := strings.Cut(rsp.(*testproto.Response).Message, " from ")
		k.seen(req.Body().(*testproto.Request).Name, node)
	}
	return err
}

// trackCounter is a selector that counts the attempts it is told of, and the reports of
// their ends, by node.
type trackCounter struct {
	selector.Selector
	mu           sync.Mutex
	begun, ended map[string]int
	failed       int
}

func (c *trackCounter) Track(service string, node *registry.Node) func(error) {
	c.mu.Lock()
	c.begun[node.Id]++
	c.mu.Unlock()
	inner := c.Selector.(selector.Tracker).Track(service, node)
	return func(err error) {
		c.mu.Lock()
		c.ended[node.Id]++
		if err != nil {
			c.failed++
		}
		c.mu.Unlock()
		inner(err)
	}
}

// TestTrackEveryAttempt: the client reports every attempt to a selector.Tracker, once at
// its start and once at its end: calls, retries past a node that refuses connections,
// and the opening of streams; calls to given addresses are not reported.
func TestTrackEveryAttempt(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "greeter", &testutil.Greeter{Node: "a"})
	if err := srv.Handle(srv.NewHandler(new(testutil.Streamer))); err != nil {
		t.Fatal(err)
	}
	dead := testutil.FreeAddr(t)
	if err := reg.Register(&registry.Service{Name: "greeter", Version: "dead", Nodes: []*registry.Node{{Id: "dead", Address: dead, Metadata: map[string]string{"protocol": "mucp"}}}}); err != nil {
		t.Fatal(err)
	}
	inner := selector.NewSelector(selector.Registry(reg), selector.SetStrategy(selector.RoundRobin))
	t.Cleanup(func() { _ = inner.Close() })
	sel := &trackCounter{Selector: inner, begun: map[string]int{}, ended: map[string]int{}}
	c := testutil.NewClient(t, reg, client.Selector(sel))
	for i := 0; i < 10; i++ {
		if _, err := hello(c); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Stream(context.Background(), c.NewRequest("greeter", "Streamer.Count", &testproto.Request{Name: "1"}))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	if _, err := hello(c, client.WithAddress(srv.Options().Address)); err != nil {
		t.Fatal(err)
	}
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if sel.begun["dead"] == 0 || sel.failed != sel.begun["dead"] {
		t.Fatalf("attempts on the dead node: %d begun, %d failures reported", sel.begun["dead"], sel.failed)
	}
	live := 0
	for id, n := range sel.begun {
		if sel.ended[id] != n {
			t.Fatalf("node %s: %d attempts begun, %d ended", id, n, sel.ended[id])
		}
		if id != "dead" {
			live += n
		}
	}
	if live != 11 {
		t.Fatalf("%d attempts on the live node, want 10 calls and 1 stream", live)
	}
}

// With HashMetadata, calls carrying the metadata key go to the node their value hashes
// to, every time; different values spread over the nodes; a call's own WithHashKey
// overrides the metadata.
func TestHashMetadata(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	distServers(t, reg, nil, "a", "b", "c")
	c := testutil.NewClient(t, reg, client.HashMetadata("User-Id"))
	call := func(user string, opts ...client.CallOption) string {
		t.Helper()
		ctx := metadata.Set(context.Background(), "User-Id", user)
		var rsp testproto.Response
		if err := c.Call(ctx, c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: user}), &rsp, opts...); err != nil {
			t.Fatal(err)
		}
		_, node, _ := strings.Cut(rsp.Message, " from ")
		return node
	}
	where := map[string]string{}
	nodes := map[string]bool{}
	for round := 0; round < 4; round++ {
		for u := 0; u < 30; u++ {
			user := fmt.Sprint("user-", u)
			n := call(user)
			if prev, ok := where[user]; ok && prev != n {
				t.Fatalf("%s went to %s and then %s", user, prev, n)
			}
			where[user] = n
			nodes[n] = true
		}
	}
	if len(nodes) != 3 {
		t.Fatalf("30 users placed on %d nodes", len(nodes))
	}
	// the call's own key wins: all users with key "k" go to one node
	forced := map[string]bool{}
	for u := 0; u < 30; u++ {
		forced[call(fmt.Sprint("user-", u), client.WithSelectOption(selector.WithHashKey("k")))] = true
	}
	if len(forced) != 1 {
		t.Fatalf("calls with one WithHashKey went to %d nodes", len(forced))
	}
}
