// Package server is the RPC server: it registers handlers and subscribers, serves calls
// arriving through a transport, and registers its node in a registry while it runs.
//
// A handler is any value whose exported methods have the shape
//
//	func (h *T) Method(ctx context.Context, req *Req, rsp *Rsp) error
//
// each of which becomes the endpoint "T.Method"; HandleFunc registers one typed function
// without reflection. The request is decoded by the codec of its Content-Type, the
// handler's context carries the caller's metadata and deadline, and an error returned by
// the handler reaches the caller as an *errors.Error with its HTTP status.
package server

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/registry"
)

// Server serves handlers and subscribers. Implementations are safe for concurrent use.
type Server interface {
	// Init applies options; it fails when called while the server runs with options
	// that cannot change then.
	Init(...Option) error
	Options() Options
	// Handle registers a handler.
	Handle(Handler) error
	// NewHandler wraps a value as a Handler.
	NewHandler(interface{}, ...HandlerOption) Handler
	// NewSubscriber wraps a function or value as a Subscriber of a topic.
	NewSubscriber(string, interface{}, ...SubscriberOption) Subscriber
	// Subscribe registers a subscriber.
	Subscribe(Subscriber) error
	// Start listens, registers the node and serves, returning once serving has begun.
	Start() error
	// Stop deregisters, stops accepting, drains the calls in flight and returns.
	Stop() error
	String() string
}

// Router routes requests and messages to handlers and subscribers.
type Router interface {
	// ProcessMessage delivers a message to the subscribers of a topic.
	ProcessMessage(ctx context.Context, topic string, msg Message) error
	// ServeRequest serves one request.
	ServeRequest(context.Context, Request, Response) error
}

// Message is a published message as a subscriber sees it.
type Message interface {
	Topic() string
	Payload() interface{}
	ContentType() string
	Header() map[string]string
	Body() []byte
	Codec() codec.Reader
}

// Request is a call as a handler wrapper sees it.
type Request interface {
	// Service is the called service's name.
	Service() string
	// Method is the called method ("Type.Method").
	Method() string
	// Endpoint is the called endpoint ("Type.Method").
	Endpoint() string
	ContentType() string
	Header() map[string]string
	// Body is the decoded request value.
	Body() interface{}
	// Read returns the raw request body.
	Read() ([]byte, error)
	Codec() codec.Reader
	Stream() bool
}

// Response is written by a Router's ServeRequest.
type Response interface {
	Codec() codec.Writer
	WriteHeader(map[string]string)
	Write([]byte) error
}

// Stream is a stream of messages of one call, as a stream handler sees it.
type Stream interface {
	Context() context.Context
	Request() Request
	Send(interface{}) error
	Recv(interface{}) error
	Error() error
	Close() error
}

// Handler is a registered handler value and its endpoints.
type Handler interface {
	Name() string
	Handler() interface{}
	Endpoints() []*registry.Endpoint
	Options() HandlerOptions
}

// Subscriber is a registered subscriber and its endpoints.
type Subscriber interface {
	Topic() string
	Subscriber() interface{}
	Endpoints() []*registry.Endpoint
	Options() SubscriberOptions
}

// HandlerFunc is the shape handler wrappers wrap: rsp is the pointer the reply is
// decoded into.
type HandlerFunc func(ctx context.Context, req Request, rsp interface{}) error

// SubscriberFunc is the shape subscriber wrappers wrap.
type SubscriberFunc func(ctx context.Context, msg Message) error

// HandlerWrapper wraps every handler call.
type HandlerWrapper func(HandlerFunc) HandlerFunc

// SubscriberWrapper wraps every subscriber call.
type SubscriberWrapper func(SubscriberFunc) SubscriberFunc

// StreamWrapper wraps a server stream.
type StreamWrapper func(Stream) Stream

var (
	// DefaultAddress is where a server listens when given no address: any free port.
	DefaultAddress = ":0"
	// DefaultName is a server's name when given none.
	DefaultName = "go.micro.server"
	// DefaultVersion is a server's version when given none.
	DefaultVersion = "latest"
	// DefaultId is the id of DefaultServer. Every other server gets its own new id.
	DefaultId = uuid.New().String()
	// DefaultServer is the server of the package-level functions.
	DefaultServer Server = NewRPCServer(Id(DefaultId))
	// DefaultRegisterCheck is the check run before every registration: none.
	DefaultRegisterCheck = func(context.Context) error { return nil }
	// DefaultRegisterInterval is how often a running server renews its registration.
	DefaultRegisterInterval = 30 * time.Second
	// DefaultRegisterTTL is how long a registration lives without renewal.
	DefaultRegisterTTL = 90 * time.Second
	// DefaultDrainTimeout bounds how long Stop waits for calls in flight.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultMaxTimeout is the longest deadline a handler gets, whatever the caller asks.
	DefaultMaxTimeout = 5 * time.Minute
	// DefaultContentType is assumed for a request with no Content-Type (Go Micro's choice).
	DefaultContentType = "application/protobuf"
	// NewServer makes a server; it is NewRPCServer.
	NewServer func(...Option) Server = NewRPCServer
)

// Init applies options to DefaultServer.
func Init(opt ...Option) { _ = DefaultServer.Init(opt...) }

// NewHandler wraps h as a Handler of DefaultServer.
func NewHandler(h interface{}, opts ...HandlerOption) Handler {
	return DefaultServer.NewHandler(h, opts...)
}

// NewSubscriber wraps h as a Subscriber of DefaultServer.
func NewSubscriber(topic string, h interface{}, opts ...SubscriberOption) Subscriber {
	return DefaultServer.NewSubscriber(topic, h, opts...)
}

// Handle registers h with DefaultServer.
func Handle(h Handler) error { return DefaultServer.Handle(h) }

// Subscribe registers s with DefaultServer.
func Subscribe(s Subscriber) error { return DefaultServer.Subscribe(s) }

// Start starts DefaultServer.
func Start() error { return DefaultServer.Start() }

// Stop stops DefaultServer.
func Stop() error { return DefaultServer.Stop() }

// String names DefaultServer's implementation.
func String() string { return DefaultServer.String() }

type serverKey struct{}

// FromContext returns the Server stored in ctx.
func FromContext(ctx context.Context) (Server, bool) {
	s, ok := ctx.Value(serverKey{}).(Server)
	return s, ok
}

// NewContext returns a context holding s.
func NewContext(ctx context.Context, s Server) context.Context {
	return context.WithValue(ctx, serverKey{}, s)
}
