package micro_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/transport"
)

func identity(t *testing.T, c *ca.CA, service string) *ca.Identity {
	t.Helper()
	id, err := c.NewIdentity(service)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestServiceIdentityMTLS is issue 9's acceptance 4 at the service level: services with
// certificates from the built-in CA call each other and deliver messages over mutual TLS;
// the callee's rules see the caller's service from its certificate; a client with no
// certificate, or one from another CA, is refused at the handshake.
func TestServiceIdentityMTLS(t *testing.T) {
	root, err := ca.New("micro-test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := jwt.NewAuth(auth.Store(store.NewMemoryStore()))
	if err != nil {
		t.Fatal(err)
	}
	rules := auth.NewRules()
	_ = rules.Grant(&auth.Rule{ID: "teller", Scope: "service:teller", Access: auth.AccessGranted,
		Resource: &auth.Resource{Type: "*", Name: "*", Endpoint: "*"}})
	reg := registry.NewMemoryRegistry()
	v := &Vault{seen: make(chan string, 4)}
	ledger := micro.NewService(micro.Name("ledger"), micro.Address("127.0.0.1:0"), micro.Registry(reg),
		micro.Broker(broker.NewHttpBroker(broker.Addrs("127.0.0.1:0"))), micro.Handle(v),
		micro.Auth(a), micro.AuthRules(rules), micro.ServiceIdentity(identity(t, root, "ledger")))
	if err := micro.RegisterSubscriber("ledger.events", ledger.Server(), func(ctx context.Context, msg *testproto.Request) error {
		acc, _ := auth.AccountFromContext(ctx)
		v.seen <- acc.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := ledger.Start(); err != nil {
		t.Fatal(err)
	}
	defer ledger.Stop()

	// The caller has a certificate but no auth, so no token: its certificate is all it
	// shows.
	teller := micro.NewService(micro.Name("teller"), micro.Registry(reg),
		micro.Broker(broker.NewHttpBroker(broker.Addrs("127.0.0.1:0"))), micro.ServiceIdentity(identity(t, root, "teller")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := teller.Client()
	var rsp testproto.Response
	if err := c.Call(ctx, c.NewRequest("ledger", "Vault.Open", &testproto.Request{}), &rsp); err != nil || rsp.Message != "opened for teller" {
		t.Fatalf("call with a certificate: %q %v", rsp.Message, err)
	}
	if err := c.Publish(ctx, c.NewMessage("ledger.events", &testproto.Request{Name: "x"})); err != nil {
		t.Fatalf("publish with a certificate: %v", err)
	}
	if got := <-v.seen; got != "teller" {
		t.Fatalf("the subscriber saw %q", got)
	}
	defer teller.Stop()
	// the client connected the broker it was given to publish; the service never ran
	defer teller.Options().Broker.Disconnect()

	// Another service of the same CA, that the rules do not name: 403.
	shop := micro.NewService(micro.Name("shop"), micro.Registry(reg), micro.Broker(broker.NewMemoryBroker()),
		micro.ServiceIdentity(identity(t, root, "shop")))
	if err := shop.Client().Call(ctx, shop.Client().NewRequest("ledger", "Vault.Open", &testproto.Request{}), &rsp); merrors.Code(err) != 403 {
		t.Fatalf("a service the rules do not name: %v", err)
	}
	_ = shop.Stop()

	// No certificate, or one from another CA: the handshake fails, nothing reaches the
	// handler.
	before := v.calls.Load()
	other, _ := ca.New("other")
	for name, tr := range map[string]transport.Transport{
		"plain":    transport.NewHTTPTransport(),
		"other CA": transport.NewHTTPTransport(transport.TLSConfig(identity(t, other, "teller").ClientTLSConfig())),
	} {
		cl := client.NewClient(client.Registry(reg), client.Transport(tr), client.Broker(broker.NewMemoryBroker()), client.Retries(0))
		err := cl.Call(ctx, cl.NewRequest("ledger", "Vault.Open", &testproto.Request{}), &rsp)
		if c, ok := cl.(io.Closer); ok {
			_ = c.Close()
		}
		if err == nil {
			t.Fatalf("%s: call succeeded", name)
		}
		t.Logf("%s: %v", name, err)
	}
	if v.calls.Load() != before {
		t.Fatal("a call without a valid certificate reached the handler")
	}
}
