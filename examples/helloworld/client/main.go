// Command client calls the helloworld service (examples/helloworld). It finds the
// service through the registry (mDNS by default), so it needs no address: start the
// service in one terminal and this in another.
//
//	go run ./examples/helloworld
//	go run ./examples/helloworld/client               # one call
//	go run ./examples/helloworld/client --every 1s    # a call a second until stopped
//
// Each call prints its reply, "no node of helloworld" when the registry knows no node
// of the service, or the error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/selector"
)

// Request is the request of Helloworld.Greeting.
type Request struct {
	Name string `json:"name"`
}

// Response is the reply of Helloworld.Greeting.
type Response struct {
	Message string `json:"message"`
}

func main() {
	var every time.Duration
	name := "alice"
	service := micro.NewService(
		micro.Name("helloworld.client"),
		micro.Flags(
			&cli.DurationFlag{Name: "every", Usage: "call again at this interval until stopped (0: call once)"},
			&cli.StringFlag{Name: "name", Value: name, Usage: "the name to greet"},
		),
		micro.Action(func(c *cli.Context) error {
			every, name = c.Duration("every"), c.String("name")
			return nil
		}),
	)
	service.Init()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	failed := false
	for {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rsp, err := client.Invoke[Request, Response](callCtx, service.Client(), "helloworld", "Helloworld.Greeting", &Request{Name: name})
		cancel()
		switch {
		case errors.Is(err, selector.ErrNotFound):
			fmt.Println("no node of helloworld")
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println(rsp.Message)
		}
		failed = err != nil
		if every <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
	if failed {
		os.Exit(1)
	}
}
