package testutil

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

// Greeter is the test handler. Its endpoints:
//
//	Greeter.Hello     replies "Hello <name>" (plus the node name when Node is set)
//	Greeter.Fail      returns errors.NotFound("greeter", "no such name: <name>")
//	Greeter.Panic     panics
//	Greeter.Meta      replies with the metadata key named in the request, and the
//	                  handler's remaining deadline in milliseconds, as "value|ms"
//	Greeter.Block     waits for Release or its context, counting calls in flight
type Greeter struct {
	Node     string
	Calls    atomic.Int64
	InFlight atomic.Int64
	Started  chan struct{} // when set, receives once per Block call that started
	Release  chan struct{} // closing it ends every Block call
	Ended    chan error    // when set, receives each Block call's context error
}

// Hello greets.
func (g *Greeter) Hello(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	g.Calls.Add(1)
	rsp.Message = "Hello " + req.Name
	if g.Node != "" {
		rsp.Message += " from " + g.Node
	}
	return nil
}

// Fail returns a 404.
func (g *Greeter) Fail(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	g.Calls.Add(1)
	return errors.NotFound("greeter", "no such name: %s", req.Name)
}

// Panic panics.
func (g *Greeter) Panic(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	g.Calls.Add(1)
	panic("greeter panics on purpose")
}

// Meta reports a metadata value and the remaining deadline.
func (g *Greeter) Meta(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	g.Calls.Add(1)
	v, _ := metadata.Get(ctx, req.Name)
	ms := int64(-1)
	if dl, ok := ctx.Deadline(); ok {
		ms = time.Until(dl).Milliseconds()
	}
	rsp.Message = fmt.Sprintf("%s|%d", v, ms)
	return nil
}

// Block waits for Release or the end of its context.
func (g *Greeter) Block(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	g.Calls.Add(1)
	g.InFlight.Add(1)
	defer g.InFlight.Add(-1)
	if g.Started != nil {
		g.Started <- struct{}{}
	}
	select {
	case <-g.Release:
		rsp.Message = "released"
		if g.Ended != nil {
			g.Ended <- nil
		}
		return nil
	case <-ctx.Done():
		if g.Ended != nil {
			g.Ended <- ctx.Err()
		}
		return ctx.Err()
	}
}

// NewServer starts a server named name on 127.0.0.1:0 with the given registry, a memory
// broker and its own HTTP transport, stopped at the end of the test.
func NewServer(t testing.TB, reg registry.Registry, name string, h interface{}, opts ...server.Option) server.Server {
	t.Helper()
	base := []server.Option{
		server.Name(name),
		server.Address("127.0.0.1:0"),
		server.Registry(reg),
		server.Broker(broker.NewMemoryBroker()),
		server.Transport(transport.NewHTTPTransport()),
	}
	srv := server.NewServer(append(base, opts...)...)
	if h != nil {
		if err := srv.Handle(srv.NewHandler(h)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// NewClient returns a client on its own HTTP transport, closed at the end of the test.
func NewClient(t testing.TB, reg registry.Registry, opts ...client.Option) client.Client {
	t.Helper()
	tr := transport.NewHTTPTransport()
	base := []client.Option{client.Registry(reg), client.Transport(tr), client.Broker(broker.NewMemoryBroker())}
	c := client.NewClient(append(base, opts...)...)
	t.Cleanup(func() {
		if cl, ok := c.(io.Closer); ok {
			_ = cl.Close()
		}
		tr.CloseIdleConnections()
	})
	return c
}
