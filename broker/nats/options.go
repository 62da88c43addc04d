package nats

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/broker"
)

// The defaults of the broker's own settings.
const (
	// DefaultAddress is the server the broker connects to when broker.Addrs and the
	// Options (nats.Options) give none.
	DefaultAddress = "nats://127.0.0.1:4222"
	// DefaultPendingMsgs is how many received messages one subscription holds, waiting for
	// its handler, before nats.go drops new ones (see PendingLimits).
	DefaultPendingMsgs = 65536
	// DefaultPendingBytes is how many bytes (payload and encoded headers) one subscription
	// holds, waiting for its handler, before nats.go drops new ones (see PendingLimits).
	DefaultPendingBytes = 16 << 20
	// DefaultDrainTimeout bounds a draining Disconnect (see DrainConnection) when the
	// nats.Options give no DrainTimeout.
	DefaultDrainTimeout = 10 * time.Second
	// MaxTopicLength is the longest topic (and queue name) the broker accepts, in bytes.
	// NATS servers and clients refuse protocol lines over 4 KiB (max_control_line) by
	// closing the connection, which would cost every subscription of the broker its
	// connection; a longer topic is refused with ErrInvalidTopic instead.
	MaxTopicLength = 4000
)

type (
	natsOptionsKey     struct{}
	drainKey           struct{}
	poolSizeKey        struct{}
	poolIdleTimeoutKey struct{}
	pendingLimitsKey   struct{}
)

type pendingLimits struct{ msgs, bytes int }

func withValue(o *broker.Options, key, value any) {
	if o.Context == nil {
		o.Context = context.Background()
	}
	o.Context = context.WithValue(o.Context, key, value)
}

func value[T any](ctx context.Context, key any, def T) T {
	if ctx == nil {
		return def
	}
	if v, ok := ctx.Value(key).(T); ok {
		return v
	}
	return def
}

// Options sets the options of the NATS connection (default nats.GetDefaultOptions() with
// DrainTimeout DefaultDrainTimeout). They are used as given, zero values included (but a
// DrainTimeout ≤ 0 means DefaultDrainTimeout), so start from nats.GetDefaultOptions().
// The broker then overrides a few of them:
// broker.Addrs, broker.Secure and broker.TLSConfig take precedence over Servers, Url,
// Secure and TLSConfig where they are set; NoEcho is always off (a broker's subscribers
// receive what the same broker publishes); Name defaults to "micro-broker"; the broker
// installs its own AsyncErrorCB, ClosedCB, DisconnectedErrCB and ReconnectedCB, which
// call the ones given here too (DisconnectedCB when no DisconnectedErrCB is given), but
// not after Disconnect when NoCallbacksAfterClientClose is set.
func Options(nopts nats.Options) broker.Option {
	return func(o *broker.Options) { withValue(o, natsOptionsKey{}, nopts) }
}

// DrainConnection makes Disconnect drain the connection instead of closing it: the
// server stops sending to the broker's subscriptions, the messages already received are
// handed to their handlers, what was published is flushed, and then the connection
// closes. Disconnect waits for all that, at most the DrainTimeout of the nats.Options
// (DefaultDrainTimeout when it is not positive), after which the connection is closed
// and what is left is discarded.
func DrainConnection() broker.Option {
	return func(o *broker.Options) { withValue(o, drainKey{}, true) }
}

// PoolSize is accepted for compatibility with Go Micro and ignored: this broker keeps a
// single NATS connection per instance, which carries every Publish and subscription
// (nats.go writes concurrent publishes into one buffered connection).
func PoolSize(n int) broker.Option {
	return func(o *broker.Options) { withValue(o, poolSizeKey{}, n) }
}

// PoolIdleTimeout is accepted for compatibility with Go Micro and ignored: there is no
// pool of connections to expire (see PoolSize).
func PoolIdleTimeout(d time.Duration) broker.Option {
	return func(o *broker.Options) { withValue(o, poolIdleTimeoutKey{}, d) }
}

// PendingLimits bounds what each subscription holds while its handler is busy: at most
// msgs messages and bytes bytes (payload and encoded headers) received from the server
// and not yet handled (defaults DefaultPendingMsgs and DefaultPendingBytes). A message
// arriving beyond either limit is dropped by nats.go; the broker counts it (see
// DropCounter) and reports it (see the package documentation). A value ≤ 0 keeps the
// default: the limits cannot be turned off, so a slow handler never makes memory grow
// without bound. A bytes limit below the server's max payload is raised to it, so that
// any one message fits.
func PendingLimits(msgs, bytes int) broker.Option {
	return func(o *broker.Options) { withValue(o, pendingLimitsKey{}, pendingLimits{msgs, bytes}) }
}

// config is what a connection uses, worked out from broker.Options when connecting.
type config struct {
	nopts   nats.Options
	drain   bool
	pending pendingLimits
}

// defaultNatsOptions returns nats's defaults with the broker's drain timeout.
func defaultNatsOptions() nats.Options {
	o := nats.GetDefaultOptions()
	o.DrainTimeout = DefaultDrainTimeout
	return o
}

// newConfig applies the defaults to o's values.
func newConfig(o broker.Options) config {
	c := config{
		nopts:   value(o.Context, natsOptionsKey{}, defaultNatsOptions()),
		drain:   value(o.Context, drainKey{}, false),
		pending: value(o.Context, pendingLimitsKey{}, pendingLimits{}),
	}
	if c.pending.msgs <= 0 {
		c.pending.msgs = DefaultPendingMsgs
	}
	if c.pending.bytes <= 0 {
		c.pending.bytes = DefaultPendingBytes
	}
	if c.nopts.DrainTimeout <= 0 {
		c.nopts.DrainTimeout = DefaultDrainTimeout
	}
	addrs := o.Addrs
	if len(addrs) == 0 {
		addrs = append([]string{c.nopts.Url}, c.nopts.Servers...)
	}
	c.nopts.Servers = serverURLs(addrs)
	c.nopts.Url = ""
	if o.Secure || o.TLSConfig != nil {
		c.nopts.Secure = true
	}
	if o.TLSConfig != nil {
		c.nopts.TLSConfig = o.TLSConfig
	}
	c.nopts.NoEcho = false
	if c.nopts.Name == "" {
		c.nopts.Name = "micro-broker"
	}
	return c
}

// serverURLs returns the NATS URLs of addrs (each may be a comma-separated list), with
// nats:// added where no scheme is given; DefaultAddress when there is none.
func serverURLs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		for _, u := range strings.Split(a, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			if !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = []string{DefaultAddress}
	}
	return out
}

// checkTopic returns an error unless topic is a NATS subject the broker accepts:
// dot-separated non-empty tokens of printable characters (no spaces or control
// characters), at most MaxTopicLength bytes. With wildcards, a token may be "*" and the
// last token ">"; without, neither may appear as a token (NATS would deliver a message
// published to "a.*" to the subscribers of "a.>" under the literal subject "a.*").
func checkTopic(topic string, wildcards bool) error {
	if topic == "" {
		return broker.ErrMissingTopic
	}
	if len(topic) > MaxTopicLength {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidTopic, len(topic), MaxTopicLength)
	}
	if i := strings.IndexFunc(topic, isSpaceOrControl); i >= 0 {
		return fmt.Errorf("%w: %q has a space or control character at byte %d", ErrInvalidTopic, topic, i)
	}
	for rest := topic; ; {
		tok, after, more := strings.Cut(rest, ".")
		switch {
		case tok == "":
			return fmt.Errorf("%w: %q has an empty token", ErrInvalidTopic, topic)
		case (tok == "*" || tok == ">") && !wildcards:
			return fmt.Errorf("%w: %q: wildcards (%q) are for Subscribe only", ErrInvalidTopic, topic, tok)
		case tok == ">" && more:
			return fmt.Errorf("%w: %q: the wildcard \">\" must be the last token", ErrInvalidTopic, topic)
		}
		if !more {
			return nil
		}
		rest = after
	}
}

// checkQueue returns an error unless name is a queue group name the broker accepts: ""
// (no group), or at most MaxTopicLength bytes without spaces or control characters.
func checkQueue(name string) error {
	if len(name) > MaxTopicLength {
		return fmt.Errorf("%w: queue name of %d bytes, more than %d", ErrInvalidTopic, len(name), MaxTopicLength)
	}
	if i := strings.IndexFunc(name, isSpaceOrControl); i >= 0 {
		return fmt.Errorf("%w: queue name %q has a space or control character at byte %d", ErrInvalidTopic, name, i)
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
