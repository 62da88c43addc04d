package redis

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/seed-b3892490/micro/store"
)

// The defaults of a store given no options.
const (
	// DefaultNode is the server of a store given no store.Nodes: Redis on the loopback
	// interface, database 0.
	DefaultNode = "redis://127.0.0.1:6379/0"
	// DefaultTimeout bounds each call of a store given no Timeout: dialling, waiting for a
	// pooled connection, and every round trip of the call together.
	DefaultTimeout = 5 * time.Second
)

type (
	timeoutKey       struct{}
	clientOptionsKey struct{}
	hooksKey         struct{}
)

func withValue(o *store.Options, key, value any) {
	if o.Context == nil {
		o.Context = context.Background()
	}
	o.Context = context.WithValue(o.Context, key, value)
}

// Timeout bounds each call of the store (Read, Write, Delete, List): the call returns an
// error once d has passed, whatever the server does. Default DefaultTimeout; a d that is
// not positive means the default. The same bound is go-redis's dial, read, write and
// pool timeout.
func Timeout(d time.Duration) store.Option {
	return func(o *store.Options) { withValue(o, timeoutKey{}, d) }
}

// ClientOptions gives f the go-redis options the store's client is made with, after the
// store has filled them in from store.Nodes and Timeout, to set what the address cannot
// carry (TLS settings, a credentials provider, pool sizes, …). Each call adds one f; they
// run in order. Timeouts that f sets replace the store's; Protocol, MaxRetries and
// DialerRetries too, at the cost of the bounds the package documents.
func ClientOptions(f func(*goredis.Options)) store.Option {
	return func(o *store.Options) {
		var fs []func(*goredis.Options)
		if o.Context != nil {
			fs, _ = o.Context.Value(clientOptionsKey{}).([]func(*goredis.Options))
		}
		withValue(o, clientOptionsKey{}, append(fs[:len(fs):len(fs)], f))
	}
}

// Hooks adds go-redis hooks to every client the store makes (tracing, metrics, or a test
// that watches the commands sent). Each call adds to the hooks of earlier ones.
func Hooks(h ...goredis.Hook) store.Option {
	return func(o *store.Options) {
		var hs []goredis.Hook
		if o.Context != nil {
			hs, _ = o.Context.Value(hooksKey{}).([]goredis.Hook)
		}
		withValue(o, hooksKey{}, append(hs[:len(hs):len(hs)], h...))
	}
}

// config is what the store's client is made from, worked out from store.Options.
type config struct {
	ropts   *goredis.Options
	hooks   []goredis.Hook
	timeout time.Duration
	addr    string // host:port or socket path, for error messages (no credentials)
}

// parseConfig works out the client's configuration from o.
func parseConfig(o store.Options) (config, error) {
	c := config{timeout: DefaultTimeout}
	if o.Context != nil {
		if d, ok := o.Context.Value(timeoutKey{}).(time.Duration); ok && d > 0 {
			c.timeout = d
		}
		c.hooks, _ = o.Context.Value(hooksKey{}).([]goredis.Hook)
	}
	var nodes []string
	for _, n := range o.Nodes {
		if n = strings.TrimSpace(n); n != "" {
			nodes = append(nodes, n)
		}
	}
	node := DefaultNode
	switch len(nodes) {
	case 0:
	case 1:
		node = nodes[0]
	default:
		return c, fmt.Errorf("store/redis: %d nodes given (%s): the store uses one Redis server (Redis Cluster and Sentinel are not supported)", len(nodes), strings.Join(nodes, ", "))
	}
	ropts, err := parseNode(node)
	if err != nil {
		return c, err
	}
	// Bounds: every call has a deadline (the context of each call), which go-redis
	// applies to its socket reads and writes; a connection refused fails at once (one
	// dial attempt) instead of being retried in the background past the deadline.
	ropts.Protocol = 2
	ropts.DialTimeout = c.timeout
	ropts.ReadTimeout = c.timeout
	ropts.WriteTimeout = c.timeout
	ropts.PoolTimeout = c.timeout
	ropts.ContextTimeoutEnabled = true
	ropts.MaxRetries = 2
	ropts.DialerRetries = 1
	ropts.DisableIdentity = true
	ropts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if o.Context != nil {
		fs, _ := o.Context.Value(clientOptionsKey{}).([]func(*goredis.Options))
		for _, f := range fs {
			if f != nil {
				f(ropts)
			}
		}
	}
	c.ropts = ropts
	c.addr = ropts.Addr
	return c, nil
}

// parseNode returns the go-redis options of a node: a URL (redis://, rediss://, unix://,
// with go-redis's query parameters) or host[:port].
func parseNode(node string) (*goredis.Options, error) {
	if strings.Contains(node, "://") {
		ropts, err := goredis.ParseURL(node)
		if err != nil {
			return nil, fmt.Errorf("store/redis: node %q: %w", redactURL(node), err)
		}
		return ropts, nil
	}
	host, port := node, "6379"
	if i := strings.LastIndexByte(node, ':'); i >= 0 && !strings.HasSuffix(node, "]") {
		host, port = node[:i], node[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || port == "" || strings.ContainsAny(host, "/ ") || strings.Trim(port, "0123456789") != "" {
		return nil, fmt.Errorf("store/redis: node %q is neither host:port nor a redis:// URL", node)
	}
	return goredis.ParseURL("redis://" + joinHostPort(host, port))
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// redactURL returns u with the password of its user info, if any, replaced by "xxxxx".
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndexByte(rest, '@')
	if slash := strings.IndexByte(rest, '/'); slash >= 0 && slash < at {
		at = -1
	}
	if at < 0 {
		return u
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
