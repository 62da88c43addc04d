package client_test

import (
	"context"
	"fmt"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

type Numbers struct {
	A, B int
}

type Sum struct {
	Total int
}

func ExampleInvoke() {
	reg := registry.NewMemoryRegistry()
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	srv := server.NewServer(server.Name("calc"), server.Address("127.0.0.1:0"),
		server.Registry(reg), server.Transport(tr), server.Broker(broker.NewMemoryBroker()))
	_ = server.HandleFunc(srv, "Calc.Add", func(ctx context.Context, in *Numbers, out *Sum) error {
		out.Total = in.A + in.B
		return nil
	})
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Stop()

	c := client.NewClient(client.Registry(reg), client.Transport(tr))
	defer c.(interface{ Close() error }).Close()
	sum, err := client.Invoke[Numbers, Sum](context.Background(), c, "calc", "Calc.Add", &Numbers{A: 2, B: 3})
	fmt.Println(sum.Total, err)
	// Output: 5 <nil>
}
