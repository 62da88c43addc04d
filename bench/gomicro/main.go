// Command greeter is the hello-world as ordinary Go Micro v5 user code: a Greeter handler
// served by server.NewServer and called with client.Call and client.WithAddress, and a
// bidirectional stream handler (Echo) called with client.Stream. The
// same file is built twice: in bench/gomicro against the real go-micro.dev/v5, and in
// bench/micro against micro under the go-micro.dev/v5 path (cmd/gomicro-compat). The
// runner refuses to run if the two copies differ.
//
// No mDNS: the server and the client get an in-memory registry and broker, and the
// client calls the server's address directly. -payload json sends JSON bodies
// (application/json) to Greeter.Hello; -payload proto sends wrapperspb.StringValue
// (application/protobuf) to GreeterProto.Hello. With -stream each caller opens one
// stream to Greeter.Echo (GreeterProto.Echo) and sends its messages on it, one at a
// time, reading each echo before the next send.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// Echo answers every message of a bidirectional stream with "Hello <name>", until the
// client closes its side of the stream.
func (g *Greeter) Echo(ctx context.Context, stream server.Stream) error {
	for {
		var req harness.Request
		if err := stream.Recv(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(&harness.Reply{Message: "Hello " + req.Name}); err != nil {
			return err
		}
	}
}

// GreeterProto serves protobuf bodies.
type GreeterProto struct{}

// Hello replies "Hello <name>".
func (g *GreeterProto) Hello(ctx context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	rsp.Value = "Hello " + req.Value
	return nil
}

// Echo answers every message of a bidirectional stream with "Hello <value>", until the
// client closes its side of the stream.
func (g *GreeterProto) Echo(ctx context.Context, stream server.Stream) error {
	for {
		req := new(wrapperspb.StringValue)
		if err := stream.Recv(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(wrapperspb.String("Hello " + req.Value)); err != nil {
			return err
		}
	}
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
			if f.Stream {
				return openEcho(ctx, c, f)
			}
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

// openEcho opens one caller's stream; each call of the Call it returns sends one message
// on it and checks the echo.
func openEcho(ctx context.Context, c client.Client, f harness.Flags) (harness.Call, error) {
	switch f.Payload {
	case "json":
		stream, err := c.Stream(ctx, c.NewRequest("greeter", "Greeter.Echo", &harness.Request{}, client.WithContentType("application/json")), client.WithAddress(f.Addr))
		if err != nil {
			return nil, err
		}
		return func() error {
			if err := stream.Send(&harness.Request{Name: harness.Name}); err != nil {
				return err
			}
			var rsp harness.Reply
			if err := stream.Recv(&rsp); err != nil {
				return err
			}
			if rsp.Message != harness.Want {
				return fmt.Errorf("reply %q", rsp.Message)
			}
			return nil
		}, nil
	case "proto":
		stream, err := c.Stream(ctx, c.NewRequest("greeter", "GreeterProto.Echo", &wrapperspb.StringValue{}, client.WithContentType("application/protobuf")), client.WithAddress(f.Addr))
		if err != nil {
			return nil, err
		}
		return func() error {
			if err := stream.Send(wrapperspb.String(harness.Name)); err != nil {
				return err
			}
			rsp := new(wrapperspb.StringValue)
			if err := stream.Recv(rsp); err != nil {
				return err
			}
			if rsp.GetValue() != harness.Want {
				return fmt.Errorf("reply %q", rsp.GetValue())
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown -payload %q", f.Payload)
}
