// Package client is the RPC client: it finds a node of the called service through the
// selector (registry, cache, strategy), sends the request over the transport with the
// caller's metadata and deadline, and retries on another node when a request could not be
// delivered.
//
//	req := c.NewRequest("helloworld", "Helloworld.Greeting", &Request{Name: "alice"})
//	var rsp Response
//	err := c.Call(ctx, req, &rsp)
//
// Invoke does the same with real types and no interface{}:
//
//	rsp, err := client.Invoke[Request, Response](ctx, c, "helloworld", "Helloworld.Greeting", &Request{Name: "alice"})
//
// Errors returned by the handler arrive as *errors.Error with their id, code and detail;
// a cancelled or expired context stays matchable with errors.Is(err, context.Canceled) or
// context.DeadlineExceeded.
package client

import (
	"context"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/registry"
)

// Client makes calls and publishes messages. Implementations are safe for concurrent use.
type Client interface {
	Init(...Option) error
	Options() Options
	NewMessage(topic string, msg interface{}, opts ...MessageOption) Message
	NewRequest(service, endpoint string, req interface{}, reqOpts ...RequestOption) Request
	Call(ctx context.Context, req Request, rsp interface{}, opts ...CallOption) error
	Stream(ctx context.Context, req Request, opts ...CallOption) (Stream, error)
	Publish(ctx context.Context, msg Message, opts ...PublishOption) error
	String() string
}

// Router is kept for Go Micro compatibility; the RPC client does not use it.
type Router interface {
	SendRequest(context.Context, Request) (Response, error)
}

// Message is a message to publish.
type Message interface {
	Topic() string
	Payload() interface{}
	ContentType() string
}

// Request is a call to make.
type Request interface {
	// Service is the name of the service to call.
	Service() string
	// Method is the method to call ("Type.Method").
	Method() string
	// Endpoint is the endpoint to call ("Type.Method").
	Endpoint() string
	// ContentType selects the codec of the request and reply.
	ContentType() string
	// Body is the request value.
	Body() interface{}
	// Codec is nil: the RPC client encodes bodies with Marshalers.
	Codec() codec.Writer
	// Stream reports whether the request opens a stream.
	Stream() bool
}

// Response is a reply as a Router sees it.
type Response interface {
	Codec() codec.Reader
	Header() map[string]string
	Read() ([]byte, error)
}

// Stream is a bidirectional stream of messages of one call.
type Stream interface {
	Closer
	Context() context.Context
	Request() Request
	Response() Response
	Send(interface{}) error
	Recv(interface{}) error
	Error() error
	Close() error
}

// Closer half-closes a stream: the peer sees the end of the messages sent.
type Closer interface {
	CloseSend() error
}

// CallFunc makes one attempt of a call to one node.
type CallFunc func(ctx context.Context, node *registry.Node, req Request, rsp interface{}, opts CallOptions) error

// CallWrapper wraps every attempt of a call.
type CallWrapper func(CallFunc) CallFunc

// Wrapper wraps a whole Client.
type Wrapper func(Client) Client

// StreamWrapper wraps a client stream.
type StreamWrapper func(Stream) Stream

// DefaultClient is the client of the package-level functions.
var DefaultClient Client = NewClient()

// NewClient makes a client; it is the RPC client.
var NewClient func(...Option) Client = newRPCClient

// Call calls with DefaultClient.
func Call(ctx context.Context, request Request, response interface{}, opts ...CallOption) error {
	return DefaultClient.Call(ctx, request, response, opts...)
}

// Publish publishes with DefaultClient.
func Publish(ctx context.Context, msg Message, opts ...PublishOption) error {
	return DefaultClient.Publish(ctx, msg, opts...)
}

// NewMessage makes a message with DefaultClient.
func NewMessage(topic string, payload interface{}, opts ...MessageOption) Message {
	return DefaultClient.NewMessage(topic, payload, opts...)
}

// NewRequest makes a request with DefaultClient.
func NewRequest(service, endpoint string, request interface{}, reqOpts ...RequestOption) Request {
	return DefaultClient.NewRequest(service, endpoint, request, reqOpts...)
}

// NewStream opens a stream with DefaultClient.
func NewStream(ctx context.Context, request Request, opts ...CallOption) (Stream, error) {
	return DefaultClient.Stream(ctx, request, opts...)
}

// String names DefaultClient's implementation.
func String() string { return DefaultClient.String() }

type clientKey struct{}

// FromContext returns the Client stored in ctx.
func FromContext(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// NewContext returns a context holding c.
func NewContext(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// Invoke calls endpoint of service with a typed request and returns the typed reply.
func Invoke[Req, Rsp any](ctx context.Context, c Client, service, endpoint string, req *Req, opts ...CallOption) (*Rsp, error) {
	rsp := new(Rsp)
	if err := c.Call(ctx, c.NewRequest(service, endpoint, req), rsp, opts...); err != nil {
		return nil, err
	}
	return rsp, nil
}
