// Command greeter is the hello-world as ordinary Go Micro v5 user code: a Greeter handler
// served by server.NewServer and called with client.Call and client.WithAddress. The
// same file is built twice: in bench/gomicro against the real go-micro.dev/v5, and in
// bench/micro against micro under the go-micro.dev/v5 path (cmd/gomicro-compat). The
// runner refuses to run if the two copies differ.
//
// No mDNS: the server and the client get an in-memory registry and broker, and the
// client calls the server's address directly. -payload json sends JSON bodies
// (application/json) to Greeter.Hello; -payload proto sends wrapperspb.StringValue
// (application/protobuf) to GreeterProto.Hello.
package main

import (
	"context"
	"fmt"

	"go-micro.dev/v5/broker"
	"go-micro.dev/v5/client"
	"go-micro.dev/v5/registry"
	"go-micro.dev/v5/server"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-b3892490/micro/bench/harness"
)

// Greeter serves JSON bodies.
type Greeter struct{}

// Hello replies "Hello <name>".
func (g *Greeter) Hello(ctx context.Context, req *harness.Request, rsp *harness.Reply) error {
	rsp.Message = "Hello " + req.Name
	return nil
}

// GreeterProto serves protobuf bodies.
type GreeterProto struct{}

// Hello replies "Hello <name>".
func (g *GreeterProto) Hello(ctx context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	rsp.Value = "Hello " + req.Value
	return nil
}

func main() {
	f := harness.ParseFlags()
	reg := registry.NewMemoryRegistry()
	switch f.Mode {
	case "server":
		srv := server.NewServer(
			server.Name("greeter"),
			server.Address(f.Addr),
			server.Registry(reg),
			server.Broker(broker.NewMemoryBroker()),
		)
		if err := srv.Handle(srv.NewHandler(new(Greeter))); err != nil {
			harness.Fail("handle: %v", err)
		}
		if err := srv.Handle(srv.NewHandler(new(GreeterProto))); err != nil {
			harness.Fail("handle: %v", err)
		}
		if err := srv.Start(); err != nil {
			harness.Fail("start: %v", err)
		}
		harness.Serve(srv.Options().Address, func() { srv.Stop() })
	case "client":
		c := client.NewClient(client.Registry(reg), client.Broker(broker.NewMemoryBroker()))
		ctx := context.Background()
		harness.RunClient(f, func(int) (harness.Call, error) {
			switch f.Payload {
			case "json":
				return func() error {
					req := c.NewRequest("greeter", "Greeter.Hello", &harness.Request{Name: harness.Name}, client.WithContentType("application/json"))
					var rsp harness.Reply
					if err := c.Call(ctx, req, &rsp, client.WithAddress(f.Addr)); err != nil {
						return err
					}
					if rsp.Message != harness.Want {
						return fmt.Errorf("reply %q", rsp.Message)
					}
					return nil
				}, nil
			case "proto":
				return func() error {
					req := c.NewRequest("greeter", "GreeterProto.Hello", wrapperspb.String(harness.Name), client.WithContentType("application/protobuf"))
					rsp := new(wrapperspb.StringValue)
					if err := c.Call(ctx, req, rsp, client.WithAddress(f.Addr)); err != nil {
						return err
					}
					if rsp.GetValue() != harness.Want {
						return fmt.Errorf("reply %q", rsp.GetValue())
					}
					return nil
				}, nil
			}
			return nil, fmt.Errorf("unknown -payload %q", f.Payload)
		})
	default:
		harness.Fail("unknown -mode %q", f.Mode)
	}
}
