package client_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
)

func benchCall(b *testing.B, contentType string, parallel bool) {
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(b, reg, "greeter", new(testutil.Greeter), server.WithLogger(logger.NewLogger(logger.WithOutput(io.Discard))))
	c := testutil.NewClient(b, reg)
	call := func() {
		req := c.NewRequest("greeter", "Greeter.Hello", &testproto.Request{Name: "alice"}, client.WithContentType(contentType))
		var rsp testproto.Response
		if err := c.Call(context.Background(), req, &rsp); err != nil {
			b.Fatal(err)
		}
		if rsp.Message != "Hello alice" {
			b.Fatalf("got %q", rsp.Message)
		}
	}
	call() // connect and fill the cache
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for i := 0; i < b.N; i++ {
			call()
		}
		return
	}
	b.SetParallelism(16) // 16 callers per CPU, as under load
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			call()
		}
	})
}

// BenchmarkCallJSON is a hello-world call with JSON bodies, client and server in this
// process over loopback HTTP/2.
func BenchmarkCallJSON(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchCall(b, "application/json", false) })
	b.Run("parallel", func(b *testing.B) { benchCall(b, "application/json", true) })
}

// BenchmarkCallProto is the same call with protobuf bodies.
func BenchmarkCallProto(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchCall(b, "application/protobuf", false) })
	b.Run("parallel", func(b *testing.B) { benchCall(b, "application/protobuf", true) })
}

type PlainRequest struct {
	Name string `json:"name"`
}

type PlainReply struct {
	Message string `json:"message"`
}

type PlainGreeter struct{}

func (PlainGreeter) Hello(ctx context.Context, req *PlainRequest, rsp *PlainReply) error {
	rsp.Message = "Hello " + req.Name
	return nil
}

// benchAddress measures call, made against a server of handler in this process by its
// address; call returns what went wrong with the reply, if anything.
func benchAddress(b *testing.B, handler interface{}, call func(c client.Client, addr string) error) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(b, reg, "greeter", handler, server.WithLogger(logger.NewLogger(logger.WithOutput(io.Discard))))
	c := testutil.NewClient(b, reg)
	addr := srv.Options().Address
	if err := call(c, addr); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := call(c, addr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallAddressJSON is the benchmark suite's hello-world (bench/): plain structs
// as JSON, called by address, client and server in this process.
func BenchmarkCallAddressJSON(b *testing.B) { benchAddressJSON(b, context.Background()) }

// BenchmarkCallAddressJSONCancellable is BenchmarkCallAddressJSON with a context that
// can be cancelled, as a handler's calls have: the caller still reads its own reply.
func BenchmarkCallAddressJSONCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchAddressJSON(b, ctx)
}

func benchAddressJSON(b *testing.B, ctx context.Context) {
	benchAddress(b, PlainGreeter{}, func(c client.Client, addr string) error {
		req := c.NewRequest("greeter", "PlainGreeter.Hello", &PlainRequest{Name: "alice"}, client.WithContentType("application/json"))
		var rsp PlainReply
		if err := c.Call(ctx, req, &rsp, client.WithAddress(addr)); err != nil {
			return err
		}
		if rsp.Message != "Hello alice" {
			return fmt.Errorf("got %q", rsp.Message)
		}
		return nil
	})
}

// PlainGreeterProto serves protobuf bodies for BenchmarkCallAddressProto.
type PlainGreeterProto struct{}

// Hello replies "Hello <text>".
func (PlainGreeterProto) Hello(ctx context.Context, req *testproto.Echo, rsp *testproto.Echo) error {
	rsp.Text = "Hello " + req.Text
	return nil
}

// BenchmarkCallAddressProto is BenchmarkCallAddressJSON with protobuf bodies.
func BenchmarkCallAddressProto(b *testing.B) {
	benchAddress(b, PlainGreeterProto{}, func(c client.Client, addr string) error {
		req := c.NewRequest("greeter", "PlainGreeterProto.Hello", &testproto.Echo{Text: "alice"}, client.WithContentType("application/protobuf"))
		rsp := new(testproto.Echo)
		if err := c.Call(context.Background(), req, rsp, client.WithAddress(addr)); err != nil {
			return err
		}
		if rsp.Text != "Hello alice" {
			return fmt.Errorf("got %q", rsp.Text)
		}
		return nil
	})
}
