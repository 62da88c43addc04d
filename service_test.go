package micro_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

// TestGracefulStopOnSIGTERM: 100 calls in flight when SIGTERM arrives all complete; the
// service is deregistered before its listener closes; nothing leaks.
func TestGracefulStopOnSIGTERM(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := &testutil.DeregisterProbe{Registry: registry.NewMemoryRegistry()}
	g := &testutil.Greeter{Started: make(chan struct{}, 100), Release: make(chan struct{})}
	tr := transport.NewHTTPTransport()
	started := make(chan struct{})
	svc := micro.NewService(
		micro.Name("greeter"),
		micro.Address("127.0.0.1:0"),
		micro.Registry(reg),
		micro.Broker(broker.NewMemoryBroker()),
		micro.Transport(tr),
		micro.Handle(g),
		micro.AfterStart(func() error { close(started); return nil }),
	)
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run() }()
	<-started
	reg.Probe(svc.Server().Options().Address)

	c := testutil.NewClient(t, reg)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rsp testproto.Response
			if err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Block", &testproto.Request{}), &rsp); err != nil || rsp.Message != "released" {
				failed.Add(1)
				t.Log(err)
			}
		}()
	}
	for i := 0; i < 100; i++ {
		<-g.Started
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, func() { close(g.Release) })
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls in flight failed", failed.Load())
	}
	if !reg.AcceptedAtDeregister() {
		t.Fatal("the listener closed before the service was deregistered")
	}
	if _, err := reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("still registered: %v", err)
	}
	c.(interface{ Close() error }).Close()
	c.Options().Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	tr.CloseIdleConnections()
}

func TestOptionsOrderDoesNotMatter(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	a := micro.NewService(micro.Name("one"), micro.Registry(reg))
	srv := a.Server()
	b := micro.NewService(micro.Name("two"), micro.Server(srv))
	if got := b.Server().Options().Name; got != "two" {
		t.Fatalf("name %q", got)
	}
	if b.Server().Options().Registry != reg {
		t.Fatal("the registry given earlier was lost")
	}
	if b.Name() != "two" || b.String() != "micro" {
		t.Fatal(b.Name(), b.String())
	}
}

func TestHooksOrderAndErrors(t *testing.T) {
	var order []string
	add := func(s string, err error) func() error {
		return func() error { order = append(order, s); return err }
	}
	svc := micro.NewService(
		micro.Address("127.0.0.1:0"),
		micro.Registry(registry.NewMemoryRegistry()),
		micro.Broker(broker.NewMemoryBroker()),
		micro.Transport(transport.NewHTTPTransport()),
		micro.BeforeStart(add("bs1", nil)), micro.BeforeStart(add("bs2", nil)),
		micro.AfterStart(add("as1", nil)),
		micro.BeforeStop(add("bst1", errors.New("b1"))), micro.BeforeStop(add("bst2", errors.New("b2"))),
		micro.AfterStop(add("ast1", errors.New("a1"))),
	)
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	err := svc.Stop()
	for _, want := range []string{"b1", "b2", "a1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Stop error %v lacks %s", err, want)
		}
	}
	if got := strings.Join(order, ","); got != "bs1,bs2,as1,bst2,bst1,ast1" {
		t.Fatalf("order %s", got)
	}
}

func TestBadHandlerFailsRun(t *testing.T) {
	type Nothing struct{}
	svc := micro.NewService(micro.Handle(new(Nothing)), micro.Registry(registry.NewMemoryRegistry()))
	err := svc.Run()
	if err == nil || !strings.Contains(err.Error(), "Nothing") {
		t.Fatalf("got %v", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	svc := micro.NewService(
		micro.Context(ctx), micro.HandleSignal(false), micro.Address("127.0.0.1:0"),
		micro.Registry(registry.NewMemoryRegistry()), micro.Broker(broker.NewMemoryBroker()),
		micro.Transport(transport.NewHTTPTransport()),
		micro.AfterStart(func() error { cancel(); return nil }),
	)
	if err := svc.Run(); err != nil {
		t.Fatal(err)
	}
}

func TestEventAndSubscriber(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	b := broker.NewMemoryBroker()
	svc := micro.NewService(micro.Name("sub"), micro.Address("127.0.0.1:0"), micro.Registry(reg), micro.Broker(b), micro.Transport(transport.NewHTTPTransport()))
	got := make(chan string, 1)
	if err := micro.RegisterSubscriber("greetings", svc.Server(), func(ctx context.Context, msg *testproto.Request) error {
		got <- msg.Name
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	ev := micro.NewEvent("greetings", svc.Client())
	if err := ev.Publish(context.Background(), &testproto.Request{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	if name := <-got; name != "carol" {
		t.Fatalf("got %q", name)
	}
	svcs, err := reg.GetService("sub")
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs[0].Endpoints) != 1 || svcs[0].Endpoints[0].Metadata["topic"] != "greetings" {
		t.Fatalf("subscriber not advertised: %+v", svcs[0].Endpoints)
	}
	_ = client.DefaultClient
}

// Greetings is a struct subscriber: each exported method receives the topic's messages.
type Greetings struct {
	got chan string
}

// Hello receives a greeting.
func (g *Greetings) Hello(ctx context.Context, msg *testproto.Request) error {
	if msg.Name == "refuse" {
		return merrors.BadRequest("greetings", "refused %s", msg.Name)
	}
	g.got <- msg.Name
	return nil
}

// Two services on HTTP brokers (the default kind) over one registry: a struct subscriber
// in a queue group and a function subscriber get events published with micro.NewEvent;
// a payload that does not decode, and a subscriber's error, reach the publisher with
// their codes, and the subscription goes on.
func TestEventsOverHTTPBroker(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	newSvc := func(name string) micro.Service {
		return micro.NewService(micro.Name(name), micro.Address("127.0.0.1:0"), micro.Registry(reg),
			micro.Broker(broker.NewHttpBroker(broker.Addrs("127.0.0.1:0"))), micro.Transport(transport.NewHTTPTransport()))
	}
	sub, pub := newSvc("sub"), newSvc("pub")
	g := &Greetings{got: make(chan string, 10)}
	if err := micro.RegisterSubscriber("greetings", sub.Server(), g, server.SubscriberQueue("greeters")); err != nil {
		t.Fatal(err)
	}
	fn := make(chan string, 10)
	if err := micro.RegisterSubscriber("greetings", sub.Server(), func(ctx context.Context, msg *testproto.Request) error {
		fn <- msg.Name
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []micro.Service{sub, pub} {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
	}
	ev := micro.NewEvent("greetings", pub.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ev.Publish(ctx, &testproto.Request{Name: "dave"}); err != nil {
		t.Fatal(err)
	}
	if a, b := <-g.got, <-fn; a != "dave" || b != "dave" {
		t.Fatalf("struct subscriber got %q, function subscriber %q", a, b)
	}
	// a payload that is not the subscriber's type
	bad := pub.Client().NewMessage("greetings", map[string]any{"name": 42})
	err := pub.Client().Publish(ctx, bad)
	if merrors.Code(err) != 400 || !strings.Contains(err.Error(), "cannot decode") {
		t.Fatalf("publishing an undecodable payload: %v", err)
	}
	if err := ev.Publish(ctx, &testproto.Request{Name: "refuse"}); merrors.Code(err) != 400 || !strings.Contains(err.Error(), "refused refuse") {
		t.Fatalf("a subscriber's error: %v", err)
	}
	<-fn // the function subscriber took "refuse"
	if err := ev.Publish(ctx, &testproto.Request{Name: "erin"}); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	if a, b := <-g.got, <-fn; a != "erin" || b != "erin" {
		t.Fatalf("after the failures: %q, %q", a, b)
	}
}

// TestStopDisconnectsTheBrokerItMade: a service that only publishes (it never runs)
// leaves nothing behind after Stop: the HTTP broker it made for itself, which its client
// connected to publish, is disconnected.
func TestStopDisconnectsTheBrokerItMade(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := registry.NewMemoryRegistry()
	sub := micro.NewService(micro.Name("sub"), micro.Address("127.0.0.1:0"), micro.Registry(reg),
		micro.Broker(broker.NewHttpBroker(broker.Addrs("127.0.0.1:0"))), micro.Transport(transport.NewHTTPTransport()))
	got := make(chan string, 1)
	if err := micro.RegisterSubscriber("news", sub.Server(), func(ctx context.Context, msg *testproto.Request) error {
		got <- msg.Name
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	pub := micro.NewService(micro.Name("pub"), micro.Registry(reg), micro.Transport(transport.NewHTTPTransport()))
	if err := micro.NewEvent("news", pub.Client()).Publish(context.Background(), &testproto.Request{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != "x" {
		t.Fatal(n)
	}
	if err := pub.Stop(); err != nil {
		t.Fatal(err)
	}
}
