package breaker_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/wrapper/breaker"
)

type HelloRequest struct{ Name string }

type HelloResponse struct{ Message string }

// A service whose database is down: after two failed calls the circuit opens, and the
// third call fails at once with the breaker's 503, without reaching the service.
func ExampleNewClientWrapper() {
	reg := registry.NewMemoryRegistry()
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	srv := server.NewServer(server.Name("greeter"), server.Address("127.0.0.1:0"),
		server.Registry(reg), server.Transport(tr), server.Broker(broker.NewMemoryBroker()))
	_ = server.HandleFunc(srv, "Greeter.Hello", func(ctx context.Context, in *HelloRequest, out *HelloResponse) error {
		return errors.InternalServerError("greeter", "database down")
	})
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Stop()

	c := client.NewClient(client.Registry(reg), client.Transport(tr), client.Broker(broker.NewMemoryBroker()),
		client.Wrap(breaker.NewClientWrapper(
			breaker.WithConsecutiveFailures(2),
			breaker.WithStateChangeFunc(func(ch breaker.Change) {
				fmt.Printf("%s: %s -> %s\n", ch.Service, ch.From, ch.To)
			}),
		)))
	defer c.(io.Closer).Close()

	for i := 1; i <= 3; i++ {
		err := c.Call(context.Background(), c.NewRequest("greeter", "Greeter.Hello", &HelloRequest{Name: "alice"}), &HelloResponse{})
		fmt.Println(i, errors.Code(err), stderrors.Is(err, breaker.ErrOpen))
	}
	// Output:
	// 1 500 false
	// greeter: closed -> open
	// 2 500 false
	// 3 503 true
}
