// Command server is a protected service: Greeter.Hello needs a token, Greeter.Health is
// public. At start it prints a token for the client.
//
//	go run ./examples/auth/server
//	TOKEN=<the printed token> go run ./examples/auth/client
//
// The signing key is kept in the service's store (a file under ~/micro/store), so tokens
// stay valid across restarts. With MICRO_AUTH_PRIVATE_KEY and MICRO_AUTH_PUBLIC_KEY set
// (base64 PEM) it uses those instead.
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/store"
)

// Request is the request of Greeter.Hello and Greeter.Health.
type Request struct {
	Name string `json:"name"`
}

// Response is their reply.
type Response struct {
	Message string `json:"message"`
}

// Greeter greets authenticated callers by their account.
type Greeter struct{}

// Hello is protected: the auth wrapper lets it run only for a valid token.
func (g *Greeter) Hello(ctx context.Context, req *Request, rsp *Response) error {
	acc, ok := auth.AccountFromContext(ctx)
	if !ok {
		rsp.Message = "Hello, anonymous!" // not reached: auth is on
		return nil
	}
	rsp.Message = "Hello " + req.Name + ", you are " + acc.ID
	return nil
}

// Health is public.
func (g *Greeter) Health(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Message = "ok"
	return nil
}

func main() {
	keys := store.NewStore(store.Table("greeter-auth"))
	defer keys.Close()
	a, err := jwt.NewAuth(auth.Issuer("micro-example"), auth.Store(keys))
	if err != nil {
		log.Fatal(err)
	}
	service := micro.NewService(
		micro.Name("greeter"),
		micro.Address(":8080"),
		micro.Handle(new(Greeter)),
		micro.Auth(a),
		micro.PublicEndpoints("Greeter.Health"),
	)
	service.Init()

	acc, err := a.Generate("alice", auth.WithType("user"))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := a.Token(auth.WithCredentials(acc.ID, acc.Secret), auth.WithExpiry(24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("TOKEN=%s\n", tok.AccessToken)

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}
