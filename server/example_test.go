package server_test

import (
	"context"
	"fmt"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

type Request struct {
	Name string `json:"name"`
}

type Response struct {
	Message string `json:"message"`
}

// Helloworld is a handler: each exported method of this shape is an endpoint.
type Helloworld struct{}

func (h *Helloworld) Greeting(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Message = "Hello " + req.Name
	return nil
}

func Example() {
	reg := registry.NewMemoryRegistry()
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	srv := server.NewServer(server.Name("helloworld"), server.Address("127.0.0.1:0"),
		server.Registry(reg), server.Transport(tr), server.Broker(broker.NewMemoryBroker()))
	_ = srv.Handle(srv.NewHandler(new(Helloworld)))
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Stop()

	c := client.NewClient(client.Registry(reg), client.Transport(tr))
	defer c.(interface{ Close() error }).Close()
	var rsp Response
	err := c.Call(context.Background(), c.NewRequest("helloworld", "Helloworld.Greeting", &Request{Name: "alice"}), &rsp)
	fmt.Println(rsp.Message, err)
	// Output: Hello alice <nil>
}

func ExampleHandleFunc() {
	srv := server.NewServer(server.Name("math"))
	err := server.HandleFunc(srv, "Math.Double", func(ctx context.Context, in *int, out *int) error {
		*out = 2 * *in
		return nil
	})
	fmt.Println(err)
	// Output: <nil>
}
