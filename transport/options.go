package transport

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/logger"
)

var (
	// DefaultDialTimeout is how long a dial may take when no timeout is given.
	DefaultDialTimeout = 5 * time.Second
	// DefaultBufSizeH2 is kept for Go Micro compatibility; HTTP/2 flow control windows
	// are sized by the transport itself.
	DefaultBufSizeH2 = 4 * 1024 * 1024
	// DefaultKeepAliveTime is how long a client connection of the HTTP transport may
	// receive nothing before it is sent a ping (see KeepAlive).
	DefaultKeepAliveTime = 15 * time.Second
	// DefaultKeepAliveTimeout is how long the HTTP transport waits for the answer to a
	// ping before it closes the connection (see KeepAlive).
	DefaultKeepAliveTimeout = 10 * time.Second
)

// Options configure a Transport.
type Options struct {
	// Codec is kept for Go Micro compatibility; the HTTP transport sends bodies as they are.
	Codec codec.Marshaler
	// Context holds implementation-specific options.
	Context context.Context
	// Logger receives the transport's rare log records. Default logger.DefaultLogger.
	Logger logger.Logger
	// TLSConfig turns on TLS for dialling and listening.
	TLSConfig *tls.Config
	// Addrs are not used by the HTTP transport.
	Addrs []string
	// Timeout, when set, bounds each Send and Recv.
	Timeout time.Duration
	// BuffSizeH2 is kept for Go Micro compatibility.
	BuffSizeH2 int
	// Secure requires TLS; it needs TLSConfig.
	Secure bool
	// Limits are the listener limits used when Listen is given none.
	Limits Limits
	// KeepAliveTime is how long a client connection may receive nothing before it is
	// sent an HTTP/2 ping. Default DefaultKeepAliveTime; set it with KeepAlive.
	KeepAliveTime time.Duration
	// KeepAliveTimeout is how long an answer to that ping may take before the connection
	// is closed (failing the calls on it, which a new connection then carries). Default
	// DefaultKeepAliveTimeout; set it with KeepAlive.
	KeepAliveTimeout time.Duration
	// NativeOff turns micro's native protocol off: listeners serve HTTP only and clients
	// speak HTTP/2 to every server. Set it with Native(false). A client process also
	// speaks only HTTP when its environment has MICRO_NATIVE=0.
	NativeOff bool
}

// Native turns micro's native binary protocol on (the default) or off. With it on, a
// listener without TLS serves it beside HTTP/1.1 and HTTP/2 on the same port, recognised
// by its first bytes, and a client uses it for every server that answers it, HTTP for
// the others. It carries the same calls, streams, limits and errors as HTTP, with far
// less work per call.
func Native(on bool) Option { return func(o *Options) { o.NativeOff = !on } }

// Limits bound what a listener accepts from its peers, so that no peer can make it use
// unbounded memory or hold connections forever. A zero field takes its default.
type Limits struct {
	// MaxMsgSize is the largest message body accepted, in bytes. Default 4 MiB; a larger
	// body is refused with a 413 error without being read into memory.
	MaxMsgSize int64
	// MaxHeaderBytes bounds the size of a request's header block. Default 1 MiB; a larger
	// one is refused with 431.
	MaxHeaderBytes int
	// MaxHeaderCount bounds the number of request header fields. Default 1000; more are
	// refused with 431.
	MaxHeaderCount int
	// ReadHeaderTimeout is how long a peer may take to send a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a peer may take to send a unary request's body. Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout is how long a peer may take to read a reply. Default 10 s.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that carries no request for this long. Default 2 min.
	IdleTimeout time.Duration
	// MaxConcurrentStreams bounds the HTTP/2 streams (calls) in flight on one connection.
	// Default 250.
	MaxConcurrentStreams uint32
	// MaxConns bounds the connections a listener keeps open at once. A connection
	// accepted while MaxConns are open is closed at once, unread, so that a flood of
	// connections costs the server no more than this many. Default 10,000 (zero); a
	// negative value removes the cap.
	MaxConns int
}

// DefaultLimits returns the default listener limits.
func DefaultLimits() Limits {
	return Limits{
		MaxMsgSize:           4 << 20,
		MaxHeaderBytes:       1 << 20,
		MaxHeaderCount:       1000,
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          10 * time.Second,
		WriteTimeout:         10 * time.Second,
		IdleTimeout:          2 * time.Minute,
		MaxConcurrentStreams: 250,
		MaxConns:             10000,
	}
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMsgSize <= 0 {
		l.MaxMsgSize = d.MaxMsgSize
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxHeaderCount <= 0 {
		l.MaxHeaderCount = d.MaxHeaderCount
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if l.MaxConns == 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

// DialOptions configure one Dial.
type DialOptions struct {
	// Context is the context of the call the Socket carries: cancelling it aborts Send
	// and Recv.
	Context context.Context
	// Timeout bounds connecting. Default DefaultDialTimeout.
	Timeout time.Duration
	// Stream asks for a streaming Socket.
	Stream bool
	// ConnClose asks that the connection be closed after the exchange.
	ConnClose bool
	// InsecureSkipVerify skips TLS certificate verification. Never set it outside tests.
	InsecureSkipVerify bool
	// MaxMsgSize bounds the reply body accepted. Default 4 MiB.
	MaxMsgSize int64
	// HTTPOnly speaks HTTP to the server without asking whether it speaks micro's native
	// protocol (the client sets it for registered nodes that do not advertise it).
	HTTPOnly bool
}

// ListenOptions configure one Listen.
type ListenOptions struct {
	Context context.Context
	// Listener, when set, is served instead of a new listener on the address.
	Listener net.Listener
	// Limits override the transport's Limits for this listener; zero fields take defaults.
	Limits Limits
	// TLSConfig, when set, serves TLS on this listener (overriding the transport's).
	TLSConfig *tls.Config
}

// Option sets a field of Options.
type Option func(*Options)

// DialOption sets a field of DialOptions.
type DialOption func(*DialOptions)

// ListenOption sets a field of ListenOptions.
type ListenOption func(*ListenOptions)

// Addrs sets Options.Addrs.
func Addrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// Codec sets Options.Codec.
func Codec(c codec.Marshaler) Option { return func(o *Options) { o.Codec = c } }

// Timeout bounds each Send and Recv.
func Timeout(t time.Duration) Option { return func(o *Options) { o.Timeout = t } }

// Secure requires TLS.
func Secure(b bool) Option { return func(o *Options) { o.Secure = b } }

// TLSConfig sets the TLS configuration.
func TLSConfig(t *tls.Config) Option { return func(o *Options) { o.TLSConfig = t } }

// Logger sets the transport's logger.
func Logger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// BuffSizeH2 is kept for Go Micro compatibility.
func BuffSizeH2(size int) Option { return func(o *Options) { o.BuffSizeH2 = size } }

// WithLimits sets the default listener limits of the transport.
func WithLimits(l Limits) Option { return func(o *Options) { o.Limits = l } }

// KeepAlive sets the health check of the HTTP transport's client connections: one that
// has received nothing (no frame, not even for a call in flight) for idle is sent an
// HTTP/2 ping, and one whose ping gets no answer within timeout is closed, with the
// calls on it, so that a peer that went silent (a partition, a dead host that sent no
// reset) is noticed within idle + timeout. Defaults DefaultKeepAliveTime (15 s) and
// DefaultKeepAliveTimeout (10 s); zero or less keeps a default. It applies to
// connections made after it: Init closes the older ones once idle.
func KeepAlive(idle, timeout time.Duration) Option {
	return func(o *Options) { o.KeepAliveTime, o.KeepAliveTimeout = idle, timeout }
}

// WithStream asks for a streaming Socket.
func WithStream() DialOption { return func(o *DialOptions) { o.Stream = true } }

// WithTimeout bounds connecting.
func WithTimeout(d time.Duration) DialOption { return func(o *DialOptions) { o.Timeout = d } }

// WithConnClose asks that the connection be closed after the exchange.
func WithConnClose() DialOption { return func(o *DialOptions) { o.ConnClose = true } }

// WithInsecureSkipVerify skips TLS certificate verification (tests only).
func WithInsecureSkipVerify(b bool) DialOption {
	return func(o *DialOptions) { o.InsecureSkipVerify = b }
}

// WithHTTPOnly sets DialOptions.HTTPOnly: speak HTTP without asking the server about
// the native protocol.
func WithHTTPOnly(b bool) DialOption { return func(o *DialOptions) { o.HTTPOnly = b } }

// WithContext sets the context of the call a dialled Socket carries.
func WithContext(ctx context.Context) DialOption {
	return func(o *DialOptions) { o.Context = ctx }
}

// WithMaxMsgSize bounds the reply body a dialled Socket accepts.
func WithMaxMsgSize(n int64) DialOption { return func(o *DialOptions) { o.MaxMsgSize = n } }

// NetListener serves l instead of listening on the address.
func NetListener(l net.Listener) ListenOption {
	return func(o *ListenOptions) { o.Listener = l }
}

// ListenLimits sets the limits of one listener.
func ListenLimits(l Limits) ListenOption { return func(o *ListenOptions) { o.Limits = l } }

// ListenTLSConfig serves TLS with t on one listener.
func ListenTLSConfig(t *tls.Config) ListenOption {
	return func(o *ListenOptions) { o.TLSConfig = t }
}
