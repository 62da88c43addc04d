// Package micro is a framework for building services of a distributed system: RPC with
// bidirectional streaming, service discovery, load balancing, pub/sub, storage, config
// and auth, each behind an interface with a default that needs no setup.
//
// The first program:
//
//	type Helloworld struct{}
//
//	func (h *Helloworld) Greeting(ctx context.Context, req *Request, rsp *Response) error {
//		rsp.Message = "Hello " + req.Name
//		return nil
//	}
//
//	func main() {
//		service := micro.NewService(micro.Name("helloworld"), micro.Handle(new(Helloworld)), micro.Address(":8080"))
//		service.Init() // flags and MICRO_* environment variables
//		service.Run()  // registers, serves, deregisters and drains on SIGTERM
//	}
//
// and its first call:
//
//	curl -XPOST -H 'Content-Type: application/json' -H 'Micro-Endpoint: Helloworld.Greeting' \
//	     -d '{"name": "alice"}' http://localhost:8080
//
// The API follows Go Micro v5 (go-micro.dev/v5): its code builds against this module with
// a replace directive.
package micro

import (
	"context"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/server"
)

// Service is a service: a server with its handlers, a client to call others, and the
// components both use.
type Service interface {
	// Name is the service name.
	Name() string
	// Init applies options; the first call also reads flags and MICRO_* environment
	// variables.
	Init(...Option)
	// Options returns the service's options.
	Options() Options
	// Client returns the service's client.
	Client() client.Client
	// Server returns the service's server.
	Server() server.Server
	// Run starts the service, waits for SIGINT, SIGTERM or SIGQUIT (or the Context to end)
	// and stops it.
	Run() error
	// String returns "micro".
	String() string
	// Handle registers a handler with the service's server.
	Handle(v interface{}, opts ...server.HandlerOption) error
	// Start runs the BeforeStart hooks, starts the server, then runs the AfterStart hooks.
	Start() error
	// Stop runs the BeforeStop hooks, stops the server (draining calls in flight), then
	// runs the AfterStop hooks.
	Stop() error
}

// Event publishes messages to one topic.
type Event interface {
	// Publish encodes msg by the client's Content-Type and publishes it.
	Publish(ctx context.Context, msg interface{}, opts ...client.PublishOption) error
}

// Publisher is an Event.
type Publisher = Event

type serviceKey struct{}

// NewService returns a service made of a new server and a new client.
func NewService(opts ...Option) Service { return newService(opts...) }

// New returns a service with the given name.
func New(name string, opts ...Option) Service {
	return newService(append([]Option{Name(name)}, opts...)...)
}

// FromContext returns the Service stored in ctx.
func FromContext(ctx context.Context) (Service, bool) {
	s, ok := ctx.Value(serviceKey{}).(Service)
	return s, ok
}

// NewContext returns a context holding s.
func NewContext(ctx context.Context, s Service) context.Context {
	return context.WithValue(ctx, serviceKey{}, s)
}

// NewEvent returns an Event publishing to topic with c (client.DefaultClient when nil).
func NewEvent(topic string, c client.Client) Event {
	if c == nil {
		c = client.DefaultClient
	}
	return &event{c: c, topic: topic}
}

// RegisterHandler registers h with s.
func RegisterHandler(s server.Server, h interface{}, opts ...server.HandlerOption) error {
	return s.Handle(s.NewHandler(h, opts...))
}

// RegisterSubscriber registers h as a subscriber of topic with s.
func RegisterSubscriber(topic string, s server.Server, h interface{}, opts ...server.SubscriberOption) error {
	return s.Subscribe(s.NewSubscriber(topic, h, opts...))
}

type event struct {
	c     client.Client
	topic string
}

func (e *event) Publish(ctx context.Context, msg interface{}, opts ...client.PublishOption) error {
	return e.c.Publish(ctx, e.c.NewMessage(e.topic, msg), opts...)
}
