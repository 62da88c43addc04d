package broker_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/brokertest"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
)

// httpBrokers returns a constructor of HTTP brokers on loopback sharing one registry.
func httpBrokers(reg registry.Registry, opts ...broker.Option) func(testing.TB) broker.Broker {
	return func(testing.TB) broker.Broker {
		return broker.NewHttpBroker(append([]broker.Option{broker.Registry(reg), broker.Addrs("127.0.0.1:0")}, opts...)...)
	}
}

func TestHTTPConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Suite{New: httpBrokers(registry.NewMemoryRegistry()), Shared: true, SyncErrors: true})
}

func connectedHTTP(t *testing.T, reg registry.Registry) broker.Broker {
	t.Helper()
	b := httpBrokers(reg)(t)
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Disconnect() })
	return b
}

// A subscription advertises itself in the registry as Go Micro's HTTP broker does, and
// is gone from it after Unsubscribe.
func TestHTTPRegistryLayout(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	b := connectedHTTP(t, reg)
	sub, err := b.Subscribe("layout", func(broker.Event) error { return nil }, broker.Queue("workers"))
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := reg.GetService(broker.HTTPBrokerService)
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("registry: %+v, %v", svcs, err)
	}
	n := svcs[0].Nodes[0]
	if svcs[0].Version != "workers" || n.Metadata["broker"] != "http" || n.Metadata["topic"] != "layout" || n.Address != b.Address() || !strings.HasPrefix(n.Id, "layout-") {
		t.Fatalf("registered %s %+v, broker at %s", svcs[0].Version, n, b.Address())
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if svcs, err := reg.GetService(broker.HTTPBrokerService); err == nil && len(svcs) > 0 && len(svcs[0].Nodes) > 0 {
		t.Fatalf("still registered after Unsubscribe: %+v", svcs[0].Nodes)
	}
}

// A subscriber that cannot be reached makes Publish fail, naming it: no silent loss.
func TestHTTPUnreachableSubscriber(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub := connectedHTTP(t, reg)
	dead := &registry.Node{Id: "lost-1", Address: "127.0.0.1:1", Metadata: map[string]string{"broker": "http", "topic": "lost"}}
	if err := reg.Register(&registry.Service{Name: broker.HTTPBrokerService, Version: broker.HTTPBroadcastVersion, Nodes: []*registry.Node{dead}}); err != nil {
		t.Fatal(err)
	}
	err := pub.Publish("lost", &broker.Message{Body: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), "lost-1") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Publish to an unreachable subscriber: %v", err)
	}
}

// A queue group member that cannot be reached is skipped for one that can.
func TestHTTPQueueGroupSkipsDeadMember(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub, sub := connectedHTTP(t, reg), connectedHTTP(t, reg)
	var got atomic.Int64
	if _, err := sub.Subscribe("grp", func(broker.Event) error { got.Add(1); return nil }, broker.Queue("g")); err != nil {
		t.Fatal(err)
	}
	dead := &registry.Node{Id: "grp-dead", Address: "127.0.0.1:1", Metadata: map[string]string{"broker": "http", "topic": "grp"}}
	if err := reg.Register(&registry.Service{Name: broker.HTTPBrokerService, Version: "g", Nodes: []*registry.Node{dead}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := pub.Publish("grp", &broker.Message{Body: []byte("x")}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if got.Load() != 50 {
		t.Fatalf("the live member got %d of 50", got.Load())
	}
}

// A handler's error reaches the publisher as the *errors.Error it returned; a panicking
// handler is an error, and the receiver keeps serving.
func TestHTTPHandlerErrorReachesPublisher(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub, sub := connectedHTTP(t, reg), connectedHTTP(t, reg)
	if _, err := sub.Subscribe("fail", func(broker.Event) error { return errors.Conflict("orders", "order 7 exists") }); err != nil {
		t.Fatal(err)
	}
	var panicked atomic.Int64
	if _, err := sub.Subscribe("panic", func(broker.Event) error { panicked.Add(1); panic("boom") }); err != nil {
		t.Fatal(err)
	}
	err := pub.Publish("fail", &broker.Message{Body: []byte("{}")})
	var e *errors.Error
	if !stderrors.As(err, &e) || e.Code != 409 || e.Detail != "order 7 exists" || e.Id != "orders" {
		t.Fatalf("Publish: %v (as *errors.Error: %+v)", err, e)
	}
	for i := 0; i < 3; i++ {
		if err := pub.Publish("panic", &broker.Message{}); errors.Code(err) != 500 {
			t.Fatalf("a panicking handler: %v", err)
		}
	}
	if panicked.Load() != 3 {
		t.Fatalf("the panicking subscriber ran %d times, want 3", panicked.Load())
	}
}

// The receiver answers bad deliveries with clear errors and never runs a handler for
// them.
func TestHTTPReceiverBadInput(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	b := connectedHTTP(t, reg)
	var ran atomic.Int64
	if _, err := b.Subscribe("in", func(broker.Event) error { ran.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	svcs, _ := reg.GetService(broker.HTTPBrokerService)
	id := svcs[0].Nodes[0].Id
	url := "http://" + b.Address() + "/?id=" + id
	big := strings.Repeat("A", 6<<20)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, tc := range []struct {
		name, method, url, body string
		code                    int
		detail                  string
	}{
		{"get", http.MethodGet, url, "", 405, "POST"},
		{"not json", http.MethodPost, url, "hello", 400, "cannot decode"},
		{"no topic", http.MethodPost, url, `{"Header":{},"Body":""}`, 400, "Micro-Topic"},
		{"bad base64", http.MethodPost, url, `{"Header":{"Micro-Topic":"in"},"Body":"!!"}`, 400, "cannot decode"},
		{"unknown id", http.MethodPost, "http://" + b.Address() + "/?id=nope", `{"Header":{"Micro-Topic":"in"}}`, 404, "no subscription"},
		{"wrong topic", http.MethodPost, url, `{"Header":{"Micro-Topic":"other"}}`, 404, "no subscription"},
		{"too big", http.MethodPost, url, `{"Header":{"Micro-Topic":"in"},"Body":"` + big + `"}`, 413, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			rsp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer rsp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(rsp.Body, 1<<20))
			e := errors.Parse(string(body))
			if rsp.StatusCode != tc.code || !strings.Contains(e.Detail, tc.detail) {
				t.Fatalf("%d %q, want %d with %q", rsp.StatusCode, body, tc.code, tc.detail)
			}
		})
	}
	if ran.Load() != 0 {
		t.Fatalf("a handler ran %d times for bad deliveries", ran.Load())
	}
}

// A slow subscriber slows its publishers down (Publish waits for the handler): nothing
// queues, so memory stays bounded (battery E5 for the HTTP broker).
func TestHTTPBackpressure(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub, sub := connectedHTTP(t, reg), connectedHTTP(t, reg)
	var inflight, peak atomic.Int64
	if _, err := sub.Subscribe("slow", func(broker.Event) error {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // the slow consumer's work
		inflight.Add(-1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const publishers, each = 4, 25
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := pub.Publish("slow", &broker.Message{Body: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > publishers {
		t.Fatalf("%d deliveries ran at once with %d publishers: something queued", p, publishers)
	}
}

// A Publish is bounded by its context.
func TestHTTPPublishContext(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub, sub := connectedHTTP(t, reg), connectedHTTP(t, reg)
	release := make(chan struct{})
	if _, err := sub.Subscribe("stuck", func(broker.Event) error { <-release; return nil }); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := pub.Publish("stuck", &broker.Message{}, broker.PublishContext(ctx))
	if !stderrors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish past its deadline: %v", err)
	}
}

// TestE1Delivery is battery row E1 (and issue 6's acceptance 2) for the HTTP broker:
// 10,000 messages from 4 publishers to two broadcast subscribers and a queue group of
// three, each on a broker of its own. Each broadcast subscriber gets all 10,000 in each
// publisher's order; the group gets 10,000 in all, none twice.
func TestE1Delivery(t *testing.T) {
	testutil.Scenario(t)
	reg := registry.NewMemoryRegistry()
	pub := connectedHTTP(t, reg)
	const publishers, each = 4, 2500
	type seen struct {
		mu    sync.Mutex
		ids   map[string]int
		last  [publishers]int
		order bool // out of order seen
	}
	record := func(s *seen) broker.Handler {
		return func(e broker.Event) error {
			h := e.Message().Header
			var p, i int
			if _, err := fmt.Sscanf(h["Seq"], "%d/%d", &p, &i); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.ids[h["Seq"]]++
			if i < s.last[p] {
				s.order = true
			}
			s.last[p] = i
			return nil
		}
	}
	var all []*seen
	for i := 0; i < 5; i++ {
		s := &seen{ids: map[string]int{}}
		all = append(all, s)
		var opts []broker.SubscribeOption
		if i >= 2 {
			opts = append(opts, broker.Queue("group"))
		}
		if _, err := connectedHTTP(t, reg).Subscribe("e1", record(s), opts...); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				m := &broker.Message{Header: map[string]string{"Seq": fmt.Sprintf("%d/%d", p, i)}, Body: []byte("e1")}
				if err := pub.Publish("e1", m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)
	const total = publishers * each
	for i, s := range all[:2] {
		s.mu.Lock()
		if len(s.ids) != total || s.order {
			t.Errorf("broadcast subscriber %d: %d distinct of %d, out of order %v", i, len(s.ids), total, s.order)
		}
		for id, n := range s.ids {
			if n > 1 {
				t.Errorf("broadcast subscriber %d got %s %d times", i, id, n)
				break
			}
		}
		s.mu.Unlock()
	}
	group := map[string]int{}
	var shares []int
	for _, s := range all[2:] {
		s.mu.Lock()
		shares = append(shares, len(s.ids))
		for id, n := range s.ids {
			group[id] += n
		}
		s.mu.Unlock()
	}
	dups := 0
	for _, n := range group {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d messages in %v (%.0f/s); group members got %v", total, took.Round(time.Millisecond), total/took.Seconds(), shares)
	if len(group) != total || dups > 0 {
		t.Fatalf("the group got %d distinct of %d, %d duplicated", len(group), total, dups)
	}
}

// Disconnect lets a delivery in progress finish: its handler completes and its Publish
// returns nil (battery C4's in-flight part, for the HTTP broker).
func TestHTTPDisconnectFinishesDeliveries(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	pub := connectedHTTP(t, reg)
	sub := httpBrokers(reg)(t)
	if err := sub.Connect(); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	if _, err := sub.Subscribe("inflight", func(broker.Event) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- pub.Publish("inflight", &broker.Message{Body: []byte("x")}) }()
	<-started
	disconnected := make(chan error, 1)
	go func() { disconnected <- sub.Disconnect() }()
	// the subscription leaves the registry at once; the delivery goes on
	for i := 0; i < 1000; i++ {
		if svcs, err := reg.GetService(broker.HTTPBrokerService); err != nil || len(svcs) == 0 || len(svcs[0].Nodes) == 0 {
			break
		}
		time.Sleep(time.Millisecond) // polling the registry, bounded
	}
	close(release)
	if err := <-published; err != nil || !finished.Load() {
		t.Fatalf("the delivery in progress at Disconnect: %v (handler finished: %v)", err, finished.Load())
	}
	if err := <-disconnected; err != nil {
		t.Fatal(err)
	}
}
