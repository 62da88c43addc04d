package broker

import (
	"context"
	"crypto/tls"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
)

// Options configure a Broker.
type Options struct {
	// Codec encodes Messages where a broker needs to (for example on the network).
	Codec  codec.Marshaler
	Logger logger.Logger
	// Registry is where network brokers find each other's subscribers.
	Registry registry.Registry
	Context  context.Context
	// ErrorHandler, when set, receives the events whose handler failed.
	ErrorHandler Handler
	TLSConfig    *tls.Config
	Addrs        []string
	Secure       bool
}

// PublishOptions configure one Publish.
type PublishOptions struct {
	Context context.Context
}

// SubscribeOptions configure one Subscribe.
type SubscribeOptions struct {
	Context context.Context
	// Queue names a queue group: each message goes to one member of the group. Empty
	// means every subscriber receives every message.
	Queue string
	// AutoAck acknowledges each event once its handler returns nil. Default true.
	AutoAck bool
}

// Option sets a field of Options.
type Option func(*Options)

// PublishOption sets a field of PublishOptions.
type PublishOption func(*PublishOptions)

// SubscribeOption sets a field of SubscribeOptions.
type SubscribeOption func(*SubscribeOptions)

// NewOptions returns Options with defaults, then opts applied.
func NewOptions(opts ...Option) *Options {
	o := &Options{Context: context.Background(), Logger: logger.DefaultLogger}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// NewSubscribeOptions returns SubscribeOptions with AutoAck on, then opts applied.
func NewSubscribeOptions(opts ...SubscribeOption) SubscribeOptions {
	o := SubscribeOptions{AutoAck: true, Context: context.Background()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Addrs sets the broker's addresses.
func Addrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// Codec sets the broker's codec.
func Codec(c codec.Marshaler) Option { return func(o *Options) { o.Codec = c } }

// ErrorHandler sets the handler of failed deliveries.
func ErrorHandler(h Handler) Option { return func(o *Options) { o.ErrorHandler = h } }

// Registry sets the broker's registry.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Secure turns TLS on.
func Secure(b bool) Option { return func(o *Options) { o.Secure = b } }

// TLSConfig sets the TLS configuration.
func TLSConfig(t *tls.Config) Option { return func(o *Options) { o.TLSConfig = t } }

// Logger sets the broker's logger.
func Logger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// PublishContext sets the context of one Publish. Values that options given before it
// stored in the options' context (a backend's settings) are kept.
func PublishContext(ctx context.Context) PublishOption {
	return func(o *PublishOptions) { o.Context = withValuesOf(ctx, o.Context) }
}

// DisableAutoAck leaves acknowledging to the handler (Event.Ack).
func DisableAutoAck() SubscribeOption { return func(o *SubscribeOptions) { o.AutoAck = false } }

// Queue puts the subscription in a queue group.
func Queue(name string) SubscribeOption { return func(o *SubscribeOptions) { o.Queue = name } }

// SubscribeContext sets the context of a subscription: when it ends, the subscription
// does. Values that options given before it stored in the options' context (a backend's
// settings, such as rabbitmq.DurableQueue) are kept.
func SubscribeContext(ctx context.Context) SubscribeOption {
	return func(o *SubscribeOptions) { o.Context = withValuesOf(ctx, o.Context) }
}

// withValuesOf returns ctx, whose values are looked up in prev when ctx has none, so
// that replacing an options' context keeps the settings stored in the old one.
func withValuesOf(ctx, prev context.Context) context.Context {
	if ctx == nil {
		return prev
	}
	if prev == nil || prev == context.Background() || prev == context.TODO() || prev == ctx {
		return ctx
	}
	return &valuesContext{Context: ctx, prev: prev}
}

// valuesContext is a context whose Value falls back to another context's.
type valuesContext struct {
	context.Context
	prev context.Context
}

func (c *valuesContext) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.prev.Value(key)
}
