package nats

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/registry"
)

// The defaults, applied through the same path as options.
const (
	// DefaultQueryTopic is the subject lookups are published on.
	DefaultQueryTopic = "micro.nats.query"
	// DefaultWatchTopic is the subject registrations are announced on.
	DefaultWatchTopic = "micro.nats.watch"
	// DefaultRegisterAction is the action word of registration announcements.
	DefaultRegisterAction = "create"
	// DefaultTimeout is how long a lookup collects answers, and the bound of a connection
	// attempt.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultQuorum (0) makes every lookup wait for the whole Timeout.
	DefaultQuorum = 0
)

type (
	quorumKey         struct{}
	natsOptionsKey    struct{}
	queryTopicKey     struct{}
	watchTopicKey     struct{}
	registerActionKey struct{}
)

func withValue(o *registry.Options, key, value any) {
	if o.Context == nil {
		o.Context = context.Background()
	}
	o.Context = context.WithValue(o.Context, key, value)
}

// Quorum ends a GetService as soon as the answers hold n nodes of one version, instead of
// waiting for the whole Timeout; 0 (DefaultQuorum) always waits. ListServices always
// waits. A lookup that ends early may miss instances that answer later.
func Quorum(n int) registry.Option {
	return func(o *registry.Options) { withValue(o, quorumKey{}, n) }
}

// NatsOptions sets the options of the NATS connection (default nats.GetDefaultOptions()).
// registry.Addrs, registry.Secure and registry.TLSConfig take precedence over Servers,
// Secure and TLSConfig where they are set; NoEcho is always off (an instance answers its
// own lookups through NATS); dialling and the connection handshake are bounded by the
// registry Timeout; ClosedCB is called after the registry's own handler.
func NatsOptions(nopts nats.Options) registry.Option {
	return func(o *registry.Options) { withValue(o, natsOptionsKey{}, nopts) }
}

// QueryTopic sets the subject lookups are published on (default DefaultQueryTopic). Every
// instance of a deployment must use the same one.
func QueryTopic(s string) registry.Option {
	return func(o *registry.Options) { withValue(o, queryTopicKey{}, s) }
}

// WatchTopic sets the subject registrations and deregistrations are announced on (default
// DefaultWatchTopic). Every instance of a deployment must use the same one.
func WatchTopic(s string) registry.Option {
	return func(o *registry.Options) { withValue(o, watchTopicKey{}, s) }
}

// RegisterAction sets the action word of registration announcements: "create" (default),
// "update" or "put". It exists for Go Micro's watchers, which pass it on as the event's
// action; this package's watchers work out "create" or "update" from what they have seen.
func RegisterAction(s string) registry.Option {
	return func(o *registry.Options) { withValue(o, registerActionKey{}, s) }
}

// config is what the registry uses, worked out from registry.Options.
type config struct {
	nopts          nats.Options
	queryTopic     string
	watchTopic     string
	registerAction string
	quorum         int
	timeout        time.Duration
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

// newConfig applies the defaults to o's values and validates them.
func newConfig(o registry.Options) (config, error) {
	c := config{
		nopts:          value(o.Context, natsOptionsKey{}, nats.GetDefaultOptions()),
		queryTopic:     value(o.Context, queryTopicKey{}, DefaultQueryTopic),
		watchTopic:     value(o.Context, watchTopicKey{}, DefaultWatchTopic),
		registerAction: value(o.Context, registerActionKey{}, DefaultRegisterAction),
		quorum:         value(o.Context, quorumKey{}, DefaultQuorum),
		timeout:        o.Timeout,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.timeout < 0 {
		return c, fmt.Errorf("%w: negative timeout %s", ErrInvalidOption, c.timeout)
	}
	if c.quorum < 0 {
		return c, fmt.Errorf("%w: negative quorum %d", ErrInvalidOption, c.quorum)
	}
	for _, t := range []struct{ name, subject string }{{"query topic", c.queryTopic}, {"watch topic", c.watchTopic}} {
		if !validSubject(t.subject) {
			return c, fmt.Errorf("%w: %s %q is not a NATS subject without wildcards", ErrInvalidOption, t.name, t.subject)
		}
	}
	if c.queryTopic == c.watchTopic {
		return c, fmt.Errorf("%w: query and watch topics are both %q", ErrInvalidOption, c.queryTopic)
	}
	switch c.registerAction {
	case "create", "update", "put":
	default:
		return c, fmt.Errorf("%w: register action %q (want create, update or put)", ErrInvalidOption, c.registerAction)
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
		c.nopts.Name = "micro-registry"
	}
	return c, nil
}

// serverURLs returns the NATS URLs of addrs (comma-separated lists allowed), adding
// nats:// where no scheme is given; nats.DefaultURL when there is none.
func serverURLs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		for _, u := range strings.Split(a, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				continue
			}
			if !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = []string{nats.DefaultURL}
	}
	return out
}

// validSubject reports whether s is a literal NATS subject: dot-separated non-empty
// tokens, no whitespace, no wildcards.
func validSubject(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}
