// Command client calls the auth example's greeter three ways: the protected endpoint with
// the token in TOKEN, the public endpoint without one, and the protected endpoint without
// one, which is refused with 401.
//
//	TOKEN=<token printed by the server> go run ./examples/auth/client
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/client"
	authwrapper "github.com/seed-b3892490/micro/wrapper/auth"
)

// Request is the greeter's request.
type Request struct {
	Name string `json:"name"`
}

// Response is the greeter's reply.
type Response struct {
	Message string `json:"message"`
}

func main() {
	addr := flag.String("address", "", "the greeter's host:port (default: found through the registry)")
	flag.Parse()
	token := os.Getenv("TOKEN")
	var opts []client.CallOption
	if *addr != "" {
		opts = append(opts, client.WithAddress(*addr))
	}

	withToken := micro.NewService(micro.Name("greeter.client"), micro.WrapClient(authwrapper.FromToken(token))).Client()
	plain := micro.NewService(micro.Name("greeter.anonymous")).Client()
	call := func(c client.Client, endpoint string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var rsp Response
		err := c.Call(ctx, c.NewRequest("greeter", endpoint, &Request{Name: "John"}), &rsp, opts...)
		return rsp.Message, err
	}

	if msg, err := call(withToken, "Greeter.Hello"); err != nil {
		fmt.Println("with token: error:", err)
	} else {
		fmt.Println("with token:", msg)
	}
	if msg, err := call(plain, "Greeter.Health"); err != nil {
		fmt.Println("public: error:", err)
	} else {
		fmt.Println("public:", msg)
	}
	if _, err := call(plain, "Greeter.Hello"); err != nil {
		fmt.Println("without token: refused:", err)
	} else {
		fmt.Println("without token: unexpectedly served")
	}
}
