package server

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

// Options configure a server. Zero fields take the defaults of NewOptions.
type Options struct {
	Logger    logger.Logger
	Broker    broker.Broker
	Registry  registry.Registry
	Transport transport.Transport
	// Context is the parent of every handler's context.
	Context context.Context
	// Router, when set, serves every request instead of the registered handlers.
	Router Router
	// RegisterCheck runs before every registration; while it fails the node stays
	// deregistered.
	RegisterCheck func(context.Context) error
	// Metadata is added to the node's registry metadata.
	Metadata map[string]string
	// TLSConfig turns TLS on for the listener.
	TLSConfig *tls.Config
	// Codecs adds or replaces codecs by Content-Type.
	Codecs map[string]codec.NewCodec
	Name   string
	// Id is the server's unique id; each server gets a new random one by default.
	Id      string
	Version string
	// Advertise is the address registered instead of the listen address.
	Advertise string
	// Address is where the server listens (host:port).
	Address       string
	HdlrWrappers  []HandlerWrapper
	ListenOptions []transport.ListenOption
	SubWrappers   []SubscriberWrapper
	// RegisterInterval is how often the registration is renewed (0 disables renewal).
	RegisterInterval time.Duration
	// RegisterTTL is how long a registration lives without renewal.
	RegisterTTL time.Duration
	// MaxMsgSize is the largest request body accepted (default 4 MiB); larger ones get 413.
	MaxMsgSize int64
	// DrainTimeout bounds how long Stop waits for calls in flight before it cancels them.
	DrainTimeout time.Duration
	// MaxConcurrent caps the handlers (calls and open streams) running at once; a request
	// beyond it is refused at once with 503 "server overloaded" and the Micro-Not-Started
	// header, so that clients send it to another node. 0 (the default) sets no cap.
	MaxConcurrent int
	// MaxTimeout is the longest deadline a handler gets (default 5 min), whatever the
	// caller asks for; a caller asking less gets what it asks.
	MaxTimeout time.Duration
	// WaitGroup, when set with Wait, also counts calls in flight.
	WaitGroup *sync.WaitGroup
}

// HandlerOptions configure a handler.
type HandlerOptions struct {
	// Metadata is added to the registry description of endpoints, by endpoint name.
	Metadata map[string]map[string]string
	// Internal handlers are served but not advertised in the registry.
	Internal bool
}

// SubscriberOptions configure a subscriber.
type SubscriberOptions struct {
	Context context.Context
	// Queue names a queue group: each message goes to one member of the group.
	Queue string
	// AutoAck acknowledges each message once the subscriber returns nil. Default true.
	AutoAck bool
	// Internal subscribers are not advertised in the registry.
	Internal bool
}

// Option sets a field of Options.
type Option func(*Options)

// HandlerOption sets a field of HandlerOptions.
type HandlerOption func(*HandlerOptions)

// SubscriberOption sets a field of SubscriberOptions.
type SubscriberOption func(*SubscriberOptions)

// NewOptions returns Options with defaults, then opt applied. Registry, Broker and
// Transport default to their packages' Default values; the Id is new and random unless
// set.
func NewOptions(opt ...Option) Options {
	o := Options{
		Codecs:           make(map[string]codec.NewCodec),
		Metadata:         map[string]string{},
		RegisterInterval: DefaultRegisterInterval,
		RegisterTTL:      DefaultRegisterTTL,
		RegisterCheck:    DefaultRegisterCheck,
		Address:          DefaultAddress,
		Name:             DefaultName,
		Version:          DefaultVersion,
		DrainTimeout:     DefaultDrainTimeout,
		MaxTimeout:       DefaultMaxTimeout,
		Context:          context.Background(),
	}
	for _, f := range opt {
		f(&o)
	}
	o.fill()
	return o
}

// fill sets the defaults of fields an option may have cleared.
func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = logger.DefaultLogger
	}
	if o.Broker == nil {
		o.Broker = broker.DefaultBroker
	}
	if o.Registry == nil {
		o.Registry = registry.DefaultRegistry
	}
	if o.Transport == nil {
		o.Transport = transport.DefaultTransport
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.RegisterCheck == nil {
		o.RegisterCheck = DefaultRegisterCheck
	}
	if o.Id == "" {
		o.Id = uuid.New().String()
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Codecs == nil {
		o.Codecs = make(map[string]codec.NewCodec)
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
}

// Name sets the service name.
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Id sets the server's unique id.
func Id(id string) Option { return func(o *Options) { o.Id = id } }

// Version sets the service version.
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// Address sets the listen address.
func Address(a string) Option { return func(o *Options) { o.Address = a } }

// Advertise sets the address registered for the node.
func Advertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// Broker sets the broker subscribers use.
func Broker(b broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// Codec adds a codec for a Content-Type.
func Codec(contentType string, c codec.NewCodec) Option {
	return func(o *Options) {
		if o.Codecs == nil {
			o.Codecs = make(map[string]codec.NewCodec)
		}
		o.Codecs[contentType] = c
	}
}

// Context sets the parent of every handler's context.
func Context(ctx context.Context) Option { return func(o *Options) { o.Context = ctx } }

// Registry sets the registry the node is registered in.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Transport sets the transport the server listens on.
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Metadata sets the node's registry metadata.
func Metadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// RegisterCheck sets the check run before every registration.
func RegisterCheck(fn func(context.Context) error) Option {
	return func(o *Options) { o.RegisterCheck = fn }
}

// RegisterTTL sets how long a registration lives without renewal.
func RegisterTTL(t time.Duration) Option { return func(o *Options) { o.RegisterTTL = t } }

// RegisterInterval sets how often the registration is renewed.
func RegisterInterval(t time.Duration) Option {
	return func(o *Options) { o.RegisterInterval = t }
}

// TLSConfig turns TLS on for the listener.
func TLSConfig(t *tls.Config) Option { return func(o *Options) { o.TLSConfig = t } }

// WithRouter sets a router that serves every request.
func WithRouter(r Router) Option { return func(o *Options) { o.Router = r } }

// WithLogger sets the server's logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// Wait makes Stop also count calls in flight in wg (Go Micro compatibility: micro always
// drains calls in flight on Stop).
func Wait(wg *sync.WaitGroup) Option {
	return func(o *Options) {
		if wg == nil {
			wg = new(sync.WaitGroup)
		}
		o.WaitGroup = wg
	}
}

// WrapHandler adds a handler wrapper; the first added runs first.
func WrapHandler(w HandlerWrapper) Option {
	return func(o *Options) { o.HdlrWrappers = append(o.HdlrWrappers, w) }
}

// WrapSubscriber adds a subscriber wrapper; the first added runs first.
func WrapSubscriber(w SubscriberWrapper) Option {
	return func(o *Options) { o.SubWrappers = append(o.SubWrappers, w) }
}

// ListenOption adds a transport listen option.
func ListenOption(l transport.ListenOption) Option {
	return func(o *Options) { o.ListenOptions = append(o.ListenOptions, l) }
}

// MaxMsgSize sets the largest request body accepted.
func MaxMsgSize(n int64) Option { return func(o *Options) { o.MaxMsgSize = n } }

// MaxConcurrent caps the handlers running at once (0: no cap); requests beyond it are
// refused with a 503 that clients retry on another node.
func MaxConcurrent(n int) Option { return func(o *Options) { o.MaxConcurrent = n } }

// DrainTimeout bounds how long Stop waits for calls in flight.
func DrainTimeout(d time.Duration) Option { return func(o *Options) { o.DrainTimeout = d } }

// MaxTimeout sets the longest deadline a handler gets.
func MaxTimeout(d time.Duration) Option { return func(o *Options) { o.MaxTimeout = d } }

// EndpointMetadata adds registry metadata to the endpoint name ("Type.Method").
func EndpointMetadata(name string, md map[string]string) HandlerOption {
	return func(o *HandlerOptions) {
		if o.Metadata == nil {
			o.Metadata = make(map[string]map[string]string)
		}
		o.Metadata[name] = md
	}
}

// InternalHandler keeps a handler out of the registry.
func InternalHandler(b bool) HandlerOption { return func(o *HandlerOptions) { o.Internal = b } }

// NewSubscriberOptions returns SubscriberOptions with AutoAck on, then opts applied.
func NewSubscriberOptions(opts ...SubscriberOption) SubscriberOptions {
	o := SubscriberOptions{AutoAck: true, Context: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// InternalSubscriber keeps a subscriber out of the registry.
func InternalSubscriber(b bool) SubscriberOption {
	return func(o *SubscriberOptions) { o.Internal = b }
}

// DisableAutoAck leaves acknowledging to the subscriber: its handler calls Ack on the
// event EventFromContext(ctx) returns.
func DisableAutoAck() SubscriberOption { return func(o *SubscriberOptions) { o.AutoAck = false } }

// SubscriberQueue puts the subscriber in a queue group.
func SubscriberQueue(n string) SubscriberOption { return func(o *SubscriberOptions) { o.Queue = n } }

// SubscriberContext sets the subscriber's context.
func SubscriberContext(ctx context.Context) SubscriberOption {
	return func(o *SubscriberOptions) { o.Context = ctx }
}
