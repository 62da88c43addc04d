package registry

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/seed-b3892490/micro/logger"
)

// Options configure a Registry.
type Options struct {
	Logger    logger.Logger
	Context   context.Context
	TLSConfig *tls.Config
	Addrs     []string
	Timeout   time.Duration
	Secure    bool
}

// RegisterOptions configure one Register call.
type RegisterOptions struct {
	Context context.Context
	// TTL is how long the registration lives without being renewed; 0 means forever.
	TTL time.Duration
}

// WatchOptions configure a Watch.
type WatchOptions struct {
	Context context.Context
	// Service limits the watch to one service name; empty watches all.
	Service string
}

// DeregisterOptions configure one Deregister call.
type DeregisterOptions struct{ Context context.Context }

// GetOptions configure one GetService call.
type GetOptions struct{ Context context.Context }

// ListOptions configure one ListServices call.
type ListOptions struct{ Context context.Context }

// Option sets a field of Options.
type Option func(*Options)

// RegisterOption sets a field of RegisterOptions.
type RegisterOption func(*RegisterOptions)

// WatchOption sets a field of WatchOptions.
type WatchOption func(*WatchOptions)

// DeregisterOption sets a field of DeregisterOptions.
type DeregisterOption func(*DeregisterOptions)

// GetOption sets a field of GetOptions.
type GetOption func(*GetOptions)

// ListOption sets a field of ListOptions.
type ListOption func(*ListOptions)

// NewOptions returns Options with defaults applied, then opts.
func NewOptions(opts ...Option) *Options {
	o := &Options{Context: context.Background(), Logger: logger.DefaultLogger}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Addrs sets the addresses of the registry's servers.
func Addrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// Timeout sets the timeout of the registry's requests.
func Timeout(t time.Duration) Option { return func(o *Options) { o.Timeout = t } }

// Secure turns TLS on for the registry's connections.
func Secure(b bool) Option { return func(o *Options) { o.Secure = b } }

// TLSConfig sets the TLS configuration of the registry's connections.
func TLSConfig(t *tls.Config) Option { return func(o *Options) { o.TLSConfig = t } }

// Logger sets the registry's logger.
func Logger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// RegisterTTL sets the TTL of a registration.
func RegisterTTL(t time.Duration) RegisterOption { return func(o *RegisterOptions) { o.TTL = t } }

// RegisterContext sets the context of a Register call.
func RegisterContext(ctx context.Context) RegisterOption {
	return func(o *RegisterOptions) { o.Context = ctx }
}

// WatchService limits a watch to one service name.
func WatchService(name string) WatchOption { return func(o *WatchOptions) { o.Service = name } }

// WatchContext sets the context of a watch.
func WatchContext(ctx context.Context) WatchOption {
	return func(o *WatchOptions) { o.Context = ctx }
}

// DeregisterContext sets the context of a Deregister call.
func DeregisterContext(ctx context.Context) DeregisterOption {
	return func(o *DeregisterOptions) { o.Context = ctx }
}

// GetContext sets the context of a GetService call.
func GetContext(ctx context.Context) GetOption { return func(o *GetOptions) { o.Context = ctx } }

// ListContext sets the context of a ListServices call.
func ListContext(ctx context.Context) ListOption {
	return func(o *ListOptions) { o.Context = ctx }
}
