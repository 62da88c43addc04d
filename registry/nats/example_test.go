package nats_test

import (
	"fmt"
	"io"

	"github.com/seed-b3892490/micro/registry"
	natsreg "github.com/seed-b3892490/micro/registry/nats"
)

// A registry connects on first use: constructing one needs no server.
func ExampleNewNatsRegistry() {
	r := natsreg.NewNatsRegistry(
		registry.Addrs("127.0.0.1:4222"),
		natsreg.Quorum(1), // return a lookup at the first answering node
	)
	defer r.(io.Closer).Close()
	fmt.Println(r.String(), r.Options().Timeout)
	// Output: nats 100ms
}
