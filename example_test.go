package micro_test

import (
	"context"
	"fmt"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

type Request struct {
	Name string `json:"name"`
}

type Response struct {
	Message string `json:"message"`
}

type Helloworld struct{}

func (h *Helloworld) Greeting(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Message = "Hello " + req.Name
	return nil
}

func Example() {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	service := micro.NewService(
		micro.Name("helloworld"),
		micro.Handle(new(Helloworld)),
		micro.Address("127.0.0.1:0"),
		micro.Registry(registry.NewMemoryRegistry()),
		micro.Broker(broker.NewMemoryBroker()),
		micro.Transport(tr),
	)
	if err := service.Start(); err != nil {
		panic(err)
	}
	defer service.Stop()

	c := service.Client()
	rsp, err := client.Invoke[Request, Response](context.Background(), c, "helloworld", "Helloworld.Greeting", &Request{Name: "alice"})
	fmt.Println(rsp.Message, err)
	// Output: Hello alice <nil>
}
