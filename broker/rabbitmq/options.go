package rabbitmq

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/seed-b3892490/micro/broker"
)

// The defaults, applied through the same path as options.
const (
	// DefaultURL is the server used when broker.Addrs gives none.
	DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"
	// DefaultExchangeName is the exchange every topic is published to and bound on.
	DefaultExchangeName = "micro"
	// DefaultExchangeType is the kind of that exchange: a topic exchange, so that a topic
	// is a routing key and subscriptions may use the "*" and "#" wildcards.
	DefaultExchangeType = ExchangeTypeTopic
	// DefaultPrefetchCount bounds the messages the server sends a subscription before it
	// acknowledges them: the memory a slow subscriber holds, and the duplicates one that
	// crashes may cause.
	DefaultPrefetchCount = 64
	// DefaultTimeout bounds Connect, and each Publish and Subscribe whose context has no
	// deadline, including the time they wait for a lost connection to come back.
	DefaultTimeout = 5 * time.Second
	// DefaultDeliveryMode is the delivery mode of published messages: persistent, so that
	// a durable queue keeps them across a server restart. The server ignores it for
	// queues that are not durable.
	DefaultDeliveryMode = amqp.Persistent
)

// MQExchangeType is the kind of a RabbitMQ exchange.
type MQExchangeType string

// The exchange kinds of RabbitMQ. The server also accepts the kinds its plugins add.
const (
	// ExchangeTypeTopic routes on the topic, with wildcards (the default).
	ExchangeTypeTopic MQExchangeType = amqp.ExchangeTopic
	// ExchangeTypeFanout delivers every message to every bound queue, whatever its topic.
	ExchangeTypeFanout MQExchangeType = amqp.ExchangeFanout
	// ExchangeTypeDirect routes on the exact topic.
	ExchangeTypeDirect MQExchangeType = amqp.ExchangeDirect
	// ExchangeTypeHeaders routes on message headers, matched against the binding
	// arguments given with Headers.
	ExchangeTypeHeaders MQExchangeType = amqp.ExchangeHeaders
)

// brokerKey, subscribeKey and publishKey hold this package's settings in the Context of
// broker.Options, broker.SubscribeOptions and broker.PublishOptions. Each option stores
// a changed copy, so options never share state and their order does not matter.
type (
	brokerKey    struct{}
	subscribeKey struct{}
	publishKey   struct{}
)

// brokerSettings are the values set by this package's broker.Options.
type brokerSettings struct {
	exchange        string
	exchangeType    MQExchangeType
	durableExchange bool
	prefetch        int
	prefetchSet     bool
	prefetchGlobal  bool
	timeout         time.Duration
	deliveryMode    uint8
	deliverySet     bool
}

// subscribeSettings are the values set by this package's broker.SubscribeOptions.
type subscribeSettings struct {
	durableQueue bool
	queueArgs    amqp.Table
	bindArgs     amqp.Table
	noRequeue    bool
	ctx          context.Context // from SubscribeContext of this package
}

// publishSettings are the values set by this package's broker.PublishOptions: the AMQP
// properties of the message.
type publishSettings struct {
	props       amqp.Publishing // Headers and Body unused
	deliverySet bool
}

func withBroker(f func(*brokerSettings)) broker.Option {
	return func(o *broker.Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		s, _ := o.Context.Value(brokerKey{}).(*brokerSettings)
		n := brokerSettings{}
		if s != nil {
			n = *s
		}
		f(&n)
		o.Context = context.WithValue(o.Context, brokerKey{}, &n)
	}
}

func withSubscribe(f func(*subscribeSettings)) broker.SubscribeOption {
	return func(o *broker.SubscribeOptions) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		s, _ := o.Context.Value(subscribeKey{}).(*subscribeSettings)
		n := subscribeSettings{}
		if s != nil {
			n = *s
		}
		f(&n)
		o.Context = context.WithValue(o.Context, subscribeKey{}, &n)
	}
}

func withPublish(f func(*publishSettings)) broker.PublishOption {
	return func(o *broker.PublishOptions) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		s, _ := o.Context.Value(publishKey{}).(*publishSettings)
		n := publishSettings{}
		if s != nil {
			n = *s
		}
		f(&n)
		o.Context = context.WithValue(o.Context, publishKey{}, &n)
	}
}

// ExchangeName sets the exchange messages are published to and subscriptions bind to
// (default DefaultExchangeName, "micro"). Every broker of a deployment must use the same
// one. It must not be empty, and names beginning "amq." are the server's own.
func ExchangeName(name string) broker.Option {
	return withBroker(func(s *brokerSettings) { s.exchange = name })
}

// ExchangeType sets the kind of the exchange (default ExchangeTypeTopic). The broker
// declares the exchange when it connects; if it exists with another kind, Connect fails.
func ExchangeType(t MQExchangeType) broker.Option {
	return withBroker(func(s *brokerSettings) { s.exchangeType = t })
}

// DurableExchange declares the exchange durable, so that it and its bindings to durable
// queues survive a server restart; by default it is not (as in Go Micro), and after a
// restart it exists again only once a broker reconnects. Every broker using the exchange
// must agree: if it exists with the other durability, Connect fails. Use it with
// DurableQueue for messages that outlive a server restart.
func DurableExchange() broker.Option {
	return withBroker(func(s *brokerSettings) { s.durableExchange = true })
}

// PrefetchCount sets how many messages the server sends each subscription before the
// subscription acknowledges them (default DefaultPrefetchCount, 64). It bounds the memory
// a slow subscriber holds (prefetch × message size) and, for queue groups, the messages
// redelivered after a subscriber crash. 0 removes the bound: a slow subscriber then
// buffers everything the server sends it. At most 65535.
func PrefetchCount(n int) broker.Option {
	return withBroker(func(s *brokerSettings) { s.prefetch, s.prefetchSet = n, true })
}

// PrefetchGlobal applies the PrefetchCount to the subscription's channel rather than to
// its consumer (AMQP basic.qos global). Each subscription has a channel of its own with a
// single consumer, so both bound the same messages; the option exists for source
// compatibility with Go Micro.
func PrefetchGlobal() broker.Option {
	return withBroker(func(s *brokerSettings) { s.prefetchGlobal = true })
}

// Timeout bounds Connect (dial and handshake), and each Publish and Subscribe whose
// context has no deadline (default DefaultTimeout, 5 s). While the connection is lost,
// Publish and Subscribe wait for it to come back until then, and fail with an error
// matching ErrUnavailable.
func Timeout(d time.Duration) broker.Option {
	return withBroker(func(s *brokerSettings) { s.timeout = d })
}

// MessageDeliveryMode sets the delivery mode of the messages the broker publishes:
// amqp091.Persistent (2, the default) or amqp091.Transient (1), which a durable queue
// loses in a server restart but costs no disk write. DeliveryMode overrides it for one
// Publish. (Go Micro's PublishDeliveryMode is a client.PublishOption; a backend does
// not depend on package client, so this one has its own name.)
func MessageDeliveryMode(mode uint8) broker.Option {
	return withBroker(func(s *brokerSettings) { s.deliveryMode, s.deliverySet = mode, true })
}

// ConfirmPublish exists for source compatibility with Go Micro, where it turns publisher
// confirms on: here they are always on, and Publish returns nil only once the server has
// taken the message.
func ConfirmPublish() broker.Option {
	return withBroker(func(*brokerSettings) {})
}

// DurableQueue declares the queue of a queue group (broker.Queue) durable, so that it
// and its persistent messages survive a server restart. Without it the group's queue
// survives its subscribers (they may crash and come back without losing a message) but
// not a server restart. Subscriptions without a queue ignore it: theirs is private to
// the subscriber. All members of a group must agree: a queue that exists with the other
// durability makes Subscribe fail.
func DurableQueue() broker.SubscribeOption {
	return withSubscribe(func(s *subscribeSettings) { s.durableQueue = true })
}

// QueueArguments sets the arguments the subscription's queue is declared with, such as
// "x-queue-type": "quorum" (which needs DurableQueue), "x-expires" (milliseconds after
// which an unused queue is deleted), "x-message-ttl", "x-max-length" or
// "x-dead-letter-exchange". Values must be of the types AMQP tables hold (see
// amqp091.Table); Subscribe fails otherwise. The map is copied.
func QueueArguments(args map[string]interface{}) broker.SubscribeOption {
	t := amqp.Table(maps.Clone(args))
	return withSubscribe(func(s *subscribeSettings) { s.queueArgs = t })
}

// Headers sets the arguments of the binding of the subscription's queue to the exchange:
// with ExchangeTypeHeaders, the headers a message must carry ("x-match": "all" or "any"
// and the header values). The map is copied.
func Headers(h map[string]interface{}) broker.SubscribeOption {
	t := amqp.Table(maps.Clone(h))
	return withSubscribe(func(s *subscribeSettings) { s.bindArgs = t })
}

// RequeueOnError returns a message to its queue when the handler returns an error, so
// that it is delivered again (to this subscriber or another member of its group). This is
// the default; the option exists for source compatibility with Go Micro, where it is not.
// A message whose handler always fails is redelivered until the handler stops failing:
// use NoRequeueOnError with a dead-letter exchange, or a quorum queue's
// "x-delivery-limit" (QueueArguments), for poison messages.
func RequeueOnError() broker.SubscribeOption {
	return withSubscribe(func(s *subscribeSettings) { s.noRequeue = false })
}

// NoRequeueOnError rejects a message whose handler returns an error without returning it
// to the queue: the server drops it, or moves it to the queue's dead-letter exchange if
// it has one ("x-dead-letter-exchange" in QueueArguments).
func NoRequeueOnError() broker.SubscribeOption {
	return withSubscribe(func(s *subscribeSettings) { s.noRequeue = true })
}

// AckOnSuccess acknowledges each message once its handler returns nil. That is the
// default (broker.NewSubscribeOptions turns AutoAck on); the option undoes
// broker.DisableAutoAck and exists for source compatibility with Go Micro.
func AckOnSuccess() broker.SubscribeOption {
	return func(o *broker.SubscribeOptions) { o.AutoAck = true }
}

// SubscribeContext sets the context of the subscription, as broker.SubscribeContext does
// (both keep the options of this package given before them). When ctx ends, the
// subscription is unsubscribed.
func SubscribeContext(ctx context.Context) broker.SubscribeOption {
	return withSubscribe(func(s *subscribeSettings) { s.ctx = ctx })
}

// DeliveryMode sets the delivery mode of one message: amqp091.Persistent (2) or
// amqp091.Transient (1); see MessageDeliveryMode.
func DeliveryMode(mode uint8) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.DeliveryMode, s.deliverySet = mode, true })
}

// Priority sets the priority of one message, 0 to 9, for queues declared with
// "x-max-priority" (QueueArguments).
func Priority(p uint8) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.Priority = p })
}

// ContentType sets the AMQP content-type property of one message. A subscriber sees it as
// the message's "Content-Type" header when the message has none of its own.
func ContentType(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.ContentType = v })
}

// ContentEncoding sets the AMQP content-encoding property of one message.
func ContentEncoding(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.ContentEncoding = v })
}

// CorrelationID sets the AMQP correlation-id property of one message.
func CorrelationID(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.CorrelationId = v })
}

// ReplyTo sets the AMQP reply-to property of one message.
func ReplyTo(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.ReplyTo = v })
}

// Expiration sets the AMQP expiration property of one message: its time to live in the
// queue, in milliseconds, as a decimal string.
func Expiration(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.Expiration = v })
}

// MessageId sets the AMQP message-id property of one message.
func MessageId(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.MessageId = v })
}

// Timestamp sets the AMQP timestamp property of one message (whole seconds).
func Timestamp(t time.Time) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.Timestamp = t })
}

// TypeMsg sets the AMQP type property of one message.
func TypeMsg(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.Type = v })
}

// UserID sets the AMQP user-id property of one message; the server checks that it is the
// connection's user.
func UserID(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.UserId = v })
}

// AppID sets the AMQP app-id property of one message.
func AppID(v string) broker.PublishOption {
	return withPublish(func(s *publishSettings) { s.props.AppId = v })
}

// config is what a connected broker uses, worked out from broker.Options.
type config struct {
	urls            []string
	exchange        string
	exchangeType    string
	durableExchange bool
	prefetch        int
	prefetchGlobal  bool
	timeout         time.Duration
	deliveryMode    uint8
	opts            broker.Options
}

// newConfig applies the defaults to o's values and validates them.
func newConfig(o broker.Options) (*config, error) {
	s := brokerSettings{}
	if o.Context != nil {
		if v, ok := o.Context.Value(brokerKey{}).(*brokerSettings); ok {
			s = *v
		}
	}
	c := &config{
		exchange:        s.exchange,
		exchangeType:    string(s.exchangeType),
		durableExchange: s.durableExchange,
		prefetch:        DefaultPrefetchCount,
		prefetchGlobal:  s.prefetchGlobal,
		timeout:         s.timeout,
		deliveryMode:    DefaultDeliveryMode,
		opts:            o,
	}
	if c.exchange == "" {
		c.exchange = DefaultExchangeName
	}
	if c.exchangeType == "" {
		c.exchangeType = string(DefaultExchangeType)
	}
	if s.prefetchSet {
		c.prefetch = s.prefetch
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if s.deliverySet {
		c.deliveryMode = s.deliveryMode
	}
	switch {
	case c.prefetch < 0 || c.prefetch > 65535:
		return nil, fmt.Errorf("%w: PrefetchCount %d (want 0 to 65535)", ErrInvalidOption, c.prefetch)
	case c.timeout < 0:
		return nil, fmt.Errorf("%w: negative Timeout %s", ErrInvalidOption, c.timeout)
	case len(c.exchange) > 255:
		return nil, fmt.Errorf("%w: ExchangeName of %d bytes (at most 255)", ErrInvalidOption, len(c.exchange))
	case c.deliveryMode > amqp.Persistent:
		return nil, fmt.Errorf("%w: MessageDeliveryMode %d (want 0, 1 or 2)", ErrInvalidOption, c.deliveryMode)
	}
	secure := o.Secure || o.TLSConfig != nil
	for _, a := range o.Addrs {
		for _, u := range strings.Split(a, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.urls = append(c.urls, u)
			}
		}
	}
	if len(c.urls) == 0 {
		c.urls = []string{DefaultURL}
	}
	for i, u := range c.urls {
		if !strings.Contains(u, "://") {
			u = "amqp://" + u
		}
		if secure && strings.HasPrefix(u, "amqp://") {
			u = "amqps://" + strings.TrimPrefix(u, "amqp://")
		}
		if _, err := amqp.ParseURI(u); err != nil {
			return nil, fmt.Errorf("%w: address %q: %v", ErrInvalidOption, redact(u), err)
		}
		c.urls[i] = u
	}
	return c, nil
}

// subscription returns the settings of one subscription.
func subscription(o broker.SubscribeOptions) subscribeSettings {
	if o.Context != nil {
		if v, ok := o.Context.Value(subscribeKey{}).(*subscribeSettings); ok {
			return *v
		}
	}
	return subscribeSettings{}
}

// redact returns u with its password hidden, for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
