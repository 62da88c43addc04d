package client

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/transport"
)

var (
	// DefaultBackoff is the wait before retrying a node already tried in the same call:
	// exponential from 100 ms with jitter, at most 5 s.
	DefaultBackoff BackoffFunc = exponentialBackoff
	// DefaultRetry decides whether a failed attempt is retried: RetryOnError.
	DefaultRetry RetryFunc = RetryOnError
	// DefaultRetries is how many times a call may be retried (so 1+5 attempts at most).
	DefaultRetries = 5
	// DefaultRequestTimeout bounds a whole call (all attempts) whose context has no deadline.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultConnectionTimeout bounds one attempt when set; 0 (the default) lets every
	// attempt use the rest of the call's time, so slow handlers are not cut off and run
	// again as Go Micro's 5 s per-attempt limit did.
	DefaultConnectionTimeout = time.Duration(0)
	// DefaultDialTimeout bounds connecting to a node.
	DefaultDialTimeout = transport.DefaultDialTimeout
	// DefaultPoolSize is kept for Go Micro compatibility; the HTTP transport pools its
	// own connections.
	DefaultPoolSize = 100
	// DefaultPoolTTL is kept for Go Micro compatibility.
	DefaultPoolTTL = time.Minute
	// DefaultHedgeDelay is the delay of a hedged call (Hedging with delay 0) while the
	// selector knows too little of the node's latency to give its p95.
	DefaultHedgeDelay = 100 * time.Millisecond
	// DefaultPoolCloseTimeout is kept for Go Micro compatibility.
	DefaultPoolCloseTimeout = time.Second
	// DefaultContentType is the Content-Type of requests and messages when none is set.
	DefaultContentType = "application/json"
	// DefaultMaxMsgSize is the largest reply body accepted.
	DefaultMaxMsgSize int64 = 4 << 20
)

// Options configure a client. Zero fields take the defaults of NewOptions.
type Options struct {
	CallOptions CallOptions
	Router      Router
	Registry    registry.Registry
	// Selector picks nodes; by default the client makes its own over Registry.
	Selector  selector.Selector
	Transport transport.Transport
	Broker    broker.Broker
	Logger    logger.Logger
	Context   context.Context
	// Codecs adds or replaces codecs by Content-Type.
	Codecs           map[string]codec.NewCodec
	ContentType      string
	Wrappers         []Wrapper
	PoolSize         int
	PoolTTL          time.Duration
	PoolCloseTimeout time.Duration
	// MaxMsgSize is the largest reply body accepted (default 4 MiB).
	MaxMsgSize int64
	// RetryBudgetRatio is the share of calls that may be retried (default 0.2), on top
	// of RetryBudgetPerSecond retries a second (default 10). A negative ratio turns the
	// budget off.
	RetryBudgetRatio     float64
	RetryBudgetPerSecond float64
}

// CallOptions configure one call.
type CallOptions struct {
	Context context.Context
	// Backoff is the wait before an attempt on a node already tried.
	Backoff BackoffFunc
	// Retry decides whether a failed attempt is retried.
	Retry RetryFunc
	// SelectOptions are passed to the selector.
	SelectOptions []selector.SelectOption
	// Address, when set, lists the nodes to call instead of asking the selector.
	Address      []string
	CallWrappers []CallWrapper
	// ConnectionTimeout bounds each attempt when > 0.
	ConnectionTimeout time.Duration
	// RequestTimeout bounds the whole call when the context has no deadline (or, set per
	// call with WithRequestTimeout, in any case).
	RequestTimeout time.Duration
	StreamTimeout  time.Duration
	CacheExpiry    time.Duration
	// DialTimeout bounds connecting to a node.
	DialTimeout time.Duration
	// Retries is how many times a call may be retried.
	Retries      int
	ServiceToken bool
	// ConnClose closes the connection after the call.
	ConnClose bool
	// Idempotent marks the call as safe to run twice: it is then also retried after
	// failures that may have reached the handler (a lost connection, 408, 502, 503, 504).
	Idempotent bool
	// HashMetadata names a metadata key: a call whose context's metadata holds it picks
	// its node by consistent hashing of the value (selector.WithHashKey).
	HashMetadata string
	// Hedge turns on hedging of idempotent calls: when an attempt has not answered
	// after HedgeDelay, a second one goes to another node, the first success wins and
	// the other attempt is cancelled. See Hedging.
	Hedge bool
	// HedgeDelay is how long a hedged call waits before its second attempt; 0 means the
	// p95 latency of the service's quickest node (DefaultHedgeDelay while the selector
	// knows too little of it).
	HedgeDelay time.Duration

	requestTimeoutSet bool
}

// PublishOptions configure one Publish.
type PublishOptions struct {
	Context context.Context
	// Exchange, when set, is the topic published to instead of the message's.
	Exchange string
}

// MessageOptions configure a Message.
type MessageOptions struct {
	ContentType string
}

// RequestOptions configure a Request.
type RequestOptions struct {
	Context     context.Context
	ContentType string
	Stream      bool
}

// Option sets a field of Options.
type Option func(*Options)

// CallOption sets a field of CallOptions.
type CallOption func(*CallOptions)

// PublishOption sets a field of PublishOptions.
type PublishOption func(*PublishOptions)

// MessageOption sets a field of MessageOptions.
type MessageOption func(*MessageOptions)

// RequestOption sets a field of RequestOptions.
type RequestOption func(*RequestOptions)

// NewOptions returns Options with defaults, then options applied. Registry, Broker and
// Transport default to their packages' Default values.
func NewOptions(options ...Option) Options {
	o := Options{
		Context:     context.Background(),
		ContentType: DefaultContentType,
		Codecs:      make(map[string]codec.NewCodec),
		CallOptions: CallOptions{
			Backoff:           DefaultBackoff,
			Retry:             DefaultRetry,
			Retries:           DefaultRetries,
			RequestTimeout:    DefaultRequestTimeout,
			ConnectionTimeout: DefaultConnectionTimeout,
			DialTimeout:       DefaultDialTimeout,
		},
		PoolSize:             DefaultPoolSize,
		PoolTTL:              DefaultPoolTTL,
		PoolCloseTimeout:     DefaultPoolCloseTimeout,
		MaxMsgSize:           DefaultMaxMsgSize,
		RetryBudgetRatio:     DefaultRetryBudgetRatio,
		RetryBudgetPerSecond: DefaultRetryBudgetPerSecond,
	}
	for _, f := range options {
		f(&o)
	}
	o.fill()
	return o
}

func (o *Options) fill() {
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.ContentType == "" {
		o.ContentType = DefaultContentType
	}
	if o.Registry == nil {
		o.Registry = registry.DefaultRegistry
	}
	if o.Broker == nil {
		o.Broker = broker.DefaultBroker
	}
	if o.Transport == nil {
		o.Transport = transport.DefaultTransport
	}
	if o.Logger == nil {
		o.Logger = logger.DefaultLogger
	}
	if o.Codecs == nil {
		o.Codecs = make(map[string]codec.NewCodec)
	}
	if o.CallOptions.Backoff == nil {
		o.CallOptions.Backoff = DefaultBackoff
	}
	if o.CallOptions.Retry == nil {
		o.CallOptions.Retry = DefaultRetry
	}
	if o.CallOptions.RequestTimeout <= 0 {
		o.CallOptions.RequestTimeout = DefaultRequestTimeout
	}
	if o.CallOptions.DialTimeout <= 0 {
		o.CallOptions.DialTimeout = DefaultDialTimeout
	}
	if o.MaxMsgSize <= 0 {
		o.MaxMsgSize = DefaultMaxMsgSize
	}
}

// Broker sets the broker messages are published to.
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

// ContentType sets the default Content-Type of requests and messages.
func ContentType(ct string) Option { return func(o *Options) { o.ContentType = ct } }

// PoolSize is kept for Go Micro compatibility.
func PoolSize(d int) Option { return func(o *Options) { o.PoolSize = d } }

// PoolTTL is kept for Go Micro compatibility.
func PoolTTL(d time.Duration) Option { return func(o *Options) { o.PoolTTL = d } }

// PoolCloseTimeout is kept for Go Micro compatibility.
func PoolCloseTimeout(d time.Duration) Option {
	return func(o *Options) { o.PoolCloseTimeout = d }
}

// Registry sets the registry services are looked up in. It does not touch any other
// component: the client's own selector reads it (unlike Go Micro, which reconfigured the
// process-wide selector).
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Transport sets the transport calls are made over.
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Selector sets the selector that picks nodes.
func Selector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// Wrap adds a client wrapper; the first added is the outermost.
func Wrap(w Wrapper) Option { return func(o *Options) { o.Wrappers = append(o.Wrappers, w) } }

// WrapCall adds call wrappers; the first added runs first.
func WrapCall(cw ...CallWrapper) Option {
	return func(o *Options) { o.CallOptions.CallWrappers = append(o.CallOptions.CallWrappers, cw...) }
}

// Backoff sets the default backoff.
func Backoff(fn BackoffFunc) Option { return func(o *Options) { o.CallOptions.Backoff = fn } }

// Retries sets the default number of retries.
func Retries(i int) Option { return func(o *Options) { o.CallOptions.Retries = i } }

// Retry sets the default retry policy.
func Retry(fn RetryFunc) Option { return func(o *Options) { o.CallOptions.Retry = fn } }

// RequestTimeout sets the default bound of a whole call.
func RequestTimeout(d time.Duration) Option {
	return func(o *Options) { o.CallOptions.RequestTimeout = d }
}

// StreamTimeout sets the default stream timeout.
func StreamTimeout(d time.Duration) Option {
	return func(o *Options) { o.CallOptions.StreamTimeout = d }
}

// DialTimeout sets the default bound of connecting.
func DialTimeout(d time.Duration) Option { return func(o *Options) { o.CallOptions.DialTimeout = d } }

// ConnectionTimeout sets the default bound of one attempt.
func ConnectionTimeout(d time.Duration) Option {
	return func(o *Options) { o.CallOptions.ConnectionTimeout = d }
}

// WithRouter is kept for Go Micro compatibility.
func WithRouter(r Router) Option { return func(o *Options) { o.Router = r } }

// WithLogger sets the client's logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// RetryBudget caps retries at ratio of the calls plus perSecond a second; a negative
// ratio turns the cap off.
func RetryBudget(ratio, perSecond float64) Option {
	return func(o *Options) {
		o.RetryBudgetRatio = ratio
		o.RetryBudgetPerSecond = perSecond
	}
}

// MaxMsgSize sets the largest reply body accepted.
func MaxMsgSize(n int64) Option { return func(o *Options) { o.MaxMsgSize = n } }

// WithExchange publishes to topic e instead of the message's topic.
func WithExchange(e string) PublishOption { return func(o *PublishOptions) { o.Exchange = e } }

// PublishContext sets the context of a Publish.
func PublishContext(ctx context.Context) PublishOption {
	return func(o *PublishOptions) { o.Context = ctx }
}

// WithAddress calls these addresses instead of asking the selector.
func WithAddress(a ...string) CallOption { return func(o *CallOptions) { o.Address = a } }

// WithSelectOption passes options to the selector.
func WithSelectOption(so ...selector.SelectOption) CallOption {
	return func(o *CallOptions) { o.SelectOptions = append(o.SelectOptions, so...) }
}

// WithCallWrapper adds call wrappers to one call.
func WithCallWrapper(cw ...CallWrapper) CallOption {
	return func(o *CallOptions) { o.CallWrappers = append(o.CallWrappers, cw...) }
}

// WithBackoff sets the backoff of one call.
func WithBackoff(fn BackoffFunc) CallOption { return func(o *CallOptions) { o.Backoff = fn } }

// WithRetry sets the retry policy of one call.
func WithRetry(fn RetryFunc) CallOption { return func(o *CallOptions) { o.Retry = fn } }

// WithRetries sets how many times one call may be retried.
func WithRetries(i int) CallOption { return func(o *CallOptions) { o.Retries = i } }

// WithRequestTimeout bounds one call, even when its context allows longer.
func WithRequestTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) {
		o.RequestTimeout = d
		o.requestTimeoutSet = true
	}
}

// WithConnectionTimeout bounds each attempt of one call.
func WithConnectionTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) { o.ConnectionTimeout = d }
}

// WithConnClose closes the connection after the call.
func WithConnClose() CallOption { return func(o *CallOptions) { o.ConnClose = true } }

// WithStreamTimeout sets the stream timeout of one call.
func WithStreamTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) { o.StreamTimeout = d }
}

// WithDialTimeout bounds connecting for one call.
func WithDialTimeout(d time.Duration) CallOption { return func(o *CallOptions) { o.DialTimeout = d } }

// WithServiceToken is kept for Go Micro compatibility (auth arrives later).
func WithServiceToken() CallOption { return func(o *CallOptions) { o.ServiceToken = true } }

// WithCache is kept for Go Micro compatibility; responses are not cached.
func WithCache(c time.Duration) CallOption { return func(o *CallOptions) { o.CacheExpiry = c } }

// HashMetadata makes calls whose context's metadata holds key pick their node by
// consistent hashing of its value (selector.WithHashKey), so that, say, the calls of
// one user (key "User-Id") go to one node while the node set is stable. Calls without
// the key use the selector's strategy; a WithHashKey select option given to a call
// comes first.
func HashMetadata(key string) Option { return func(o *Options) { o.CallOptions.HashMetadata = key } }

// WithHashMetadata sets the hashing metadata key of one call, as HashMetadata does for
// every call of a client.
func WithHashMetadata(key string) CallOption { return func(o *CallOptions) { o.HashMetadata = key } }

// Hedging turns on hedging for the client's idempotent calls (those made with
// WithIdempotent): an attempt that has not answered after delay is joined by a second
// one on another node, the first success is the call's reply and the other attempt is
// cancelled. delay 0 waits for the p95 latency of the service's quickest node as the
// selector has learnt it (selector.Latencies): among nodes alike, about one call in
// twenty sends a second request, and a call to a node slower than the rest is hedged
// as soon as another node would most likely have answered. Below 0 it turns hedging
// off. Hedged attempts are paid from the retry budget, so a
// sick service gets at most the budget's share of extra requests. Calls not marked
// idempotent are never hedged.
func Hedging(delay time.Duration) Option {
	return func(o *Options) { o.CallOptions.Hedge, o.CallOptions.HedgeDelay = delay >= 0, max(delay, 0) }
}

// WithHedging sets hedging for one call, as Hedging does for every call of a client;
// the call must be idempotent too (WithIdempotent).
func WithHedging(delay time.Duration) CallOption {
	return func(o *CallOptions) { o.Hedge, o.HedgeDelay = delay >= 0, max(delay, 0) }
}

// WithIdempotent marks one call as safe to run twice, so that failures which may have
// reached the handler are retried too.
func WithIdempotent() CallOption { return func(o *CallOptions) { o.Idempotent = true } }

// WithMessageContentType sets a message's Content-Type.
func WithMessageContentType(ct string) MessageOption {
	return func(o *MessageOptions) { o.ContentType = ct }
}

// WithContentType sets a request's Content-Type.
func WithContentType(ct string) RequestOption {
	return func(o *RequestOptions) { o.ContentType = ct }
}

// StreamingRequest marks a request as opening a stream.
func StreamingRequest() RequestOption { return func(o *RequestOptions) { o.Stream = true } }
