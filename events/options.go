package events

import (
	"context"
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/logger"
)

// Defaults of the memory stream's Options.
const (
	// DefaultQueueSize is Options.QueueSize's default.
	DefaultQueueSize = 1024
	// DefaultMaxInFlight is Options.MaxInFlight's default.
	DefaultMaxInFlight = 1024
	// DefaultPublishTimeout is Options.PublishTimeout's default.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultRetainEvents is Options.RetainEvents's default.
	DefaultRetainEvents = 10000
	// DefaultRetainBytes is Options.RetainBytes's default: 64 MiB.
	DefaultRetainBytes = 64 << 20
	// DefaultAckWait is how long a consumer with manual acknowledgement has to
	// acknowledge an event when WithAutoAck gives no positive ackWait: 30 s.
	DefaultAckWait = 30 * time.Second
)

// Options configure the memory stream of NewStream. The zero value of a field means its
// default.
type Options struct {
	// QueueSize bounds the events waiting to be handed to one consumer without a
	// group, or to the members of one group: Publish waits for room in every queue of
	// the topic (backpressure). Default DefaultQueueSize (1024).
	QueueSize int
	// MaxInFlight bounds the events a consumer (or group) with manual acknowledgement
	// holds unacknowledged: no more are handed over until some are acknowledged, nacked
	// or time out. Default DefaultMaxInFlight (1024).
	MaxInFlight int
	// PublishTimeout bounds how long Publish waits for room in a full queue before it
	// returns an error matching ErrFull. Default DefaultPublishTimeout (5 s).
	PublishTimeout time.Duration
	// RetainEvents and RetainBytes bound the events the stream keeps for WithOffset,
	// over all topics together: the oldest are forgotten first. Bytes count payloads,
	// IDs, topics and metadata. Defaults DefaultRetainEvents (10,000) and
	// DefaultRetainBytes (64 MiB); a negative value retains nothing.
	RetainEvents int
	RetainBytes  int
	// Logger receives dead-lettered events (warning level). Default logger.DefaultLogger.
	Logger logger.Logger
}

// Option sets a field of Options. Options only set fields: their order does not matter.
type Option func(o *Options)

// WithQueueSize sets Options.QueueSize.
func WithQueueSize(n int) Option { return func(o *Options) { o.QueueSize = n } }

// WithMaxInFlight sets Options.MaxInFlight.
func WithMaxInFlight(n int) Option { return func(o *Options) { o.MaxInFlight = n } }

// WithPublishTimeout sets Options.PublishTimeout.
func WithPublishTimeout(d time.Duration) Option { return func(o *Options) { o.PublishTimeout = d } }

// WithRetention sets Options.RetainEvents and Options.RetainBytes.
func WithRetention(events, bytes int) Option {
	return func(o *Options) { o.RetainEvents, o.RetainBytes = events, bytes }
}

// WithLogger sets Options.Logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// newOptions returns the options with defaults filled in, or an error matching
// ErrInvalidOption.
func newOptions(opts []Option) (Options, error) {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.QueueSize < 0:
		return o, fmt.Errorf("%w: negative QueueSize %d", ErrInvalidOption, o.QueueSize)
	case o.MaxInFlight < 0:
		return o, fmt.Errorf("%w: negative MaxInFlight %d", ErrInvalidOption, o.MaxInFlight)
	case o.PublishTimeout < 0:
		return o, fmt.Errorf("%w: negative PublishTimeout %s", ErrInvalidOption, o.PublishTimeout)
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.RetainEvents == 0 {
		o.RetainEvents = DefaultRetainEvents
	}
	if o.RetainBytes == 0 {
		o.RetainBytes = DefaultRetainBytes
	}
	o.Logger = logger.LoggerOrDefault(o.Logger)
	return o, nil
}

// PublishOptions configure one Publish.
type PublishOptions struct {
	// Metadata is stored with the event. Default none.
	Metadata map[string]string
	// Timestamp is the event's Timestamp. Default (zero): the time of the Publish call.
	Timestamp time.Time
	// Context bounds the Publish call (waiting for room, or for a server); when it ends
	// first, Publish returns its error. Default: only the stream's own timeout.
	Context context.Context
}

// PublishOption sets a field of PublishOptions.
type PublishOption func(o *PublishOptions)

// WithMetadata sets the event's metadata. The map is copied.
func WithMetadata(md map[string]string) PublishOption {
	return func(o *PublishOptions) { o.Metadata = md }
}

// WithTimestamp sets the event's Timestamp.
func WithTimestamp(t time.Time) PublishOption {
	return func(o *PublishOptions) { o.Timestamp = t }
}

// WithPublishContext sets PublishOptions.Context.
func WithPublishContext(ctx context.Context) PublishOption {
	return func(o *PublishOptions) { o.Context = ctx }
}

// NewPublishOptions returns the PublishOptions opts set. Streams use it.
func NewPublishOptions(opts ...PublishOption) PublishOptions {
	var o PublishOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ConsumeOptions configure one Consume.
type ConsumeOptions struct {
	// Group names a consumer group: consumers of a topic with the same group share its
	// events, each event going to one of them. Empty (the default): the consumer
	// receives every event.
	Group string
	// Offset, when set, starts consuming at the events retained since that time
	// (Timestamp at or after it, in publish order), then goes on with new ones. A
	// group's offset is that of the consumer that created it. Default (zero): only
	// events published from the Consume call on.
	Offset time.Time
	// AutoAck acknowledges each event as it is handed to the consumer. Default true.
	AutoAck bool
	// AckWait is how long a consumer with AutoAck false has to acknowledge an event
	// before it is delivered again. Zero or negative: DefaultAckWait (30 s).
	AckWait time.Duration
	// RetryLimit is how many times an event is delivered again after its first
	// delivery, when CustomRetries is set (WithRetryLimit); once exceeded the event is
	// dead-lettered. Without it there is no limit.
	RetryLimit int
	// CustomRetries records that WithRetryLimit was given.
	CustomRetries bool
	// Context ends consuming when it is done: the channel is closed. Default: consuming
	// ends only with the stream.
	Context context.Context
}

// ConsumeOption sets a field of ConsumeOptions.
type ConsumeOption func(o *ConsumeOptions)

// WithGroup sets ConsumeOptions.Group.
func WithGroup(q string) ConsumeOption { return func(o *ConsumeOptions) { o.Group = q } }

// WithOffset sets ConsumeOptions.Offset.
func WithOffset(t time.Time) ConsumeOption { return func(o *ConsumeOptions) { o.Offset = t } }

// WithAutoAck sets ConsumeOptions.AutoAck and AckWait: with ack false, each event must
// be acknowledged within ackWait (Event.Ack) or it is delivered again.
func WithAutoAck(ack bool, ackWait time.Duration) ConsumeOption {
	return func(o *ConsumeOptions) { o.AutoAck, o.AckWait = ack, ackWait }
}

// WithRetryLimit sets ConsumeOptions.RetryLimit (and CustomRetries): an event is
// delivered at most retries + 1 times. A negative value means no limit.
func WithRetryLimit(retries int) ConsumeOption {
	return func(o *ConsumeOptions) { o.RetryLimit, o.CustomRetries = retries, true }
}

// WithContext sets ConsumeOptions.Context.
func WithContext(ctx context.Context) ConsumeOption {
	return func(o *ConsumeOptions) { o.Context = ctx }
}

// GetRetryLimit returns the retry limit: RetryLimit when WithRetryLimit was given and
// not negative, otherwise -1 (no limit).
func (o ConsumeOptions) GetRetryLimit() int {
	if !o.CustomRetries || o.RetryLimit < 0 {
		return -1
	}
	return o.RetryLimit
}

// NewConsumeOptions returns ConsumeOptions with AutoAck on and the default AckWait,
// then opts applied, and AckWait replaced by DefaultAckWait if not positive. Streams
// use it.
func NewConsumeOptions(opts ...ConsumeOption) ConsumeOptions {
	o := ConsumeOptions{AutoAck: true, AckWait: DefaultAckWait}
	for _, f := range opts {
		f(&o)
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	return o
}

// StoreOptions configure the memory store of NewStore.
type StoreOptions struct {
	// MaxEvents bounds the events the store holds (unexpired ones): Write returns an
	// error matching ErrStoreFull beyond it. Zero (the default): no bound.
	MaxEvents int
}

// StoreOption sets a field of StoreOptions.
type StoreOption func(o *StoreOptions)

// WithMaxEvents sets StoreOptions.MaxEvents.
func WithMaxEvents(n int) StoreOption { return func(o *StoreOptions) { o.MaxEvents = n } }

// WriteOptions configure one Store.Write.
type WriteOptions struct {
	// TTL is how long the event is kept. Zero (the default) or negative: for good.
	TTL time.Duration
}

// WriteOption sets a field of WriteOptions.
type WriteOption func(o *WriteOptions)

// WithTTL sets WriteOptions.TTL.
func WithTTL(d time.Duration) WriteOption { return func(o *WriteOptions) { o.TTL = d } }

// ReadOptions configure one Store.Read.
type ReadOptions struct {
	// Limit is the most events returned. Zero (the default): all.
	Limit uint
	// Offset skips that many events, oldest first, for paging. Default 0.
	Offset uint
}

// ReadOption sets a field of ReadOptions.
type ReadOption func(o *ReadOptions)

// ReadLimit sets ReadOptions.Limit.
func ReadLimit(l uint) ReadOption { return func(o *ReadOptions) { o.Limit = l } }

// ReadOffset sets ReadOptions.Offset.
func ReadOffset(l uint) ReadOption { return func(o *ReadOptions) { o.Offset = l } }
