// Command grpc is the hello-world over grpc-go, with no generated code: the service is a
// hand-written grpc.ServiceDesc, and the payload is either JSON (a codec registered
// under the content-subtype "json" that marshals the structs with encoding/json) or
// protobuf (wrapperspb.StringValue in and out, grpc's default proto codec). One
// grpc.ClientConn shared by all callers, as grpc-go users usually do. With -stream each
// caller opens one bidirectional stream (Echo, EchoProto) on that connection and sends
// its messages on it, one at a time, reading each echo before the next send.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-b3892490/micro/bench/harness"
)

// jsonCodec is a grpc codec for plain Go structs.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return "json" }

func init() { encoding.RegisterCodec(jsonCodec{}) }

// greeter is the service implementation; the desc below routes to it.
type greeter interface{}

type greeterImpl struct{}

func helloJSON(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var req harness.Request
	if err := dec(&req); err != nil {
		return nil, err
	}
	return &harness.Reply{Message: "Hello " + req.Name}, nil
}

func helloProto(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	req := new(wrapperspb.StringValue)
	if err := dec(req); err != nil {
		return nil, err
	}
	return wrapperspb.String("Hello " + req.GetValue()), nil
}

// echoJSON answers every message of a bidirectional stream until the client closes its
// side.
func echoJSON(_ any, stream grpc.ServerStream) error {
	for {
		var req harness.Request
		if err := stream.RecvMsg(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.SendMsg(&harness.Reply{Message: "Hello " + req.Name}); err != nil {
			return err
		}
	}
}

func echoProto(_ any, stream grpc.ServerStream) error {
	for {
		req := new(wrapperspb.StringValue)
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.SendMsg(wrapperspb.String("Hello " + req.GetValue())); err != nil {
			return err
		}
	}
}

var desc = grpc.ServiceDesc{
	ServiceName: "greeter.Greeter",
	HandlerType: (*greeter)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Hello", Handler: helloJSON},
		{MethodName: "HelloProto", Handler: helloProto},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Echo", Handler: echoJSON, ServerStreams: true, ClientStreams: true},
		{StreamName: "EchoProto", Handler: echoProto, ServerStreams: true, ClientStreams: true},
	},
}

func main() {
	f := harness.ParseFlags()
	switch f.Mode {
	case "server":
		ln, err := net.Listen("tcp", f.Addr)
		if err != nil {
			harness.Fail("listen: %v", err)
		}
		srv := grpc.NewServer()
		srv.RegisterService(&desc, greeterImpl{})
		go srv.Serve(ln)
		harness.Serve(ln.Addr().String(), srv.Stop)
	case "client":
		conn, err := grpc.NewClient(f.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			harness.Fail("dial: %v", err)
		}
		ctx := context.Background()
		harness.RunClient(f, func(int) (harness.Call, error) {
			if f.Stream {
				return openEcho(ctx, conn, f.Payload)
			}
			switch f.Payload {
			case "json":
				return func() error {
					var rep harness.Reply
					if err := conn.Invoke(ctx, "/greeter.Greeter/Hello", &harness.Request{Name: harness.Name}, &rep, grpc.CallContentSubtype("json")); err != nil {
						return err
					}
					if rep.Message != harness.Want {
						return fmt.Errorf("reply %q", rep.Message)
					}
					return nil
				}, nil
			case "proto":
				return func() error {
					rep := new(wrapperspb.StringValue)
					if err := conn.Invoke(ctx, "/greeter.Greeter/HelloProto", wrapperspb.String(harness.Name), rep); err != nil {
						return err
					}
					if rep.GetValue() != harness.Want {
						return fmt.Errorf("reply %q", rep.GetValue())
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
func openEcho(ctx context.Context, conn *grpc.ClientConn, payload string) (harness.Call, error) {
	switch payload {
	case "json":
		stream, err := conn.NewStream(ctx, &desc.Streams[0], "/greeter.Greeter/Echo", grpc.CallContentSubtype("json"))
		if err != nil {
			return nil, err
		}
		return func() error {
			if err := stream.SendMsg(&harness.Request{Name: harness.Name}); err != nil {
				return err
			}
			var rep harness.Reply
			if err := stream.RecvMsg(&rep); err != nil {
				return err
			}
			if rep.Message != harness.Want {
				return fmt.Errorf("reply %q", rep.Message)
			}
			return nil
		}, nil
	case "proto":
		stream, err := conn.NewStream(ctx, &desc.Streams[1], "/greeter.Greeter/EchoProto")
		if err != nil {
			return nil, err
		}
		return func() error {
			if err := stream.SendMsg(wrapperspb.String(harness.Name)); err != nil {
				return err
			}
			rep := new(wrapperspb.StringValue)
			if err := stream.RecvMsg(rep); err != nil {
				return err
			}
			if rep.GetValue() != harness.Want {
				return fmt.Errorf("reply %q", rep.GetValue())
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown -payload %q", payload)
}
