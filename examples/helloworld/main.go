// Command helloworld is the first micro service: one endpoint, Helloworld.Greeting,
// served on :8080 with the embedded defaults.
//
//	go run ./examples/helloworld
//	curl -XPOST -H 'Content-Type: application/json' -H 'Micro-Endpoint: Helloworld.Greeting' \
//	     -d '{"name": "alice"}' http://localhost:8080
package main

import (
	"context"
	"log"

	"github.com/seed-b3892490/micro"
)

// Request is the request of Helloworld.Greeting.
type Request struct {
	Name string `json:"name"`
}

// Response is the reply of Helloworld.Greeting.
type Response struct {
	Message string `json:"message"`
}

// Helloworld is the handler.
type Helloworld struct{}

// Greeting greets the caller by name.
func (h *Helloworld) Greeting(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Message = "Hello " + req.Name
	return nil
}

func main() {
	service := micro.NewService(micro.Name("helloworld"), micro.Handle(new(Helloworld)), micro.Address(":8080"))
	service.Init()
	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}
