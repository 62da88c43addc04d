package etcd

import (
	"crypto/tls"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

const (
	// DefaultAddress is the etcd endpoint used when WithAddress is not given.
	DefaultAddress = "127.0.0.1:2379"
	// DefaultPrefix is the key prefix read when WithPrefix is not given.
	DefaultPrefix = "/micro/config"
	// DefaultDialTimeout bounds connecting and each request when WithDialTimeout is not
	// given (or not positive).
	DefaultDialTimeout = 5 * time.Second
)

type (
	addressKey     struct{}
	prefixKey      struct{}
	stripPrefixKey struct{}
	authKey        struct{}
	dialTimeoutKey struct{}
	tlsConfigKey   struct{}
)

type credentials struct{ username, password string }

// WithAddress sets the etcd endpoints, as host:port (an address without a port gets
// 2379) or as URLs (http://, https://, unix://). An argument may hold several
// comma-separated endpoints. Default: DefaultAddress.
func WithAddress(addrs ...string) source.Option {
	return source.ContextOption(addressKey{}, append([]string(nil), addrs...))
}

// WithPrefix sets the key prefix whose keys make up the document. Trailing slashes are
// ignored: "/micro/config" and "/micro/config/" name the same tree. Default:
// DefaultPrefix.
func WithPrefix(p string) source.Option { return source.ContextOption(prefixKey{}, p) }

// StripPrefix sets whether the prefix is removed from the key paths (true, the default:
// /micro/config/database/host is {"database":{"host":...}}) or kept (false:
// {"micro":{"config":{"database":{"host":...}}}}).
func StripPrefix(strip bool) source.Option { return source.ContextOption(stripPrefixKey{}, strip) }

// Auth sets the user name and password the source authenticates to etcd with. Both must
// be set for authentication to be used. Default: none.
func Auth(username, password string) source.Option {
	return source.ContextOption(authKey{}, credentials{username, password})
}

// WithDialTimeout bounds connecting to etcd and each request made to it: a Read, a
// Write, and each read and health check of a watcher. Default: DefaultDialTimeout.
func WithDialTimeout(d time.Duration) source.Option {
	return source.ContextOption(dialTimeoutKey{}, d)
}

// TLSConfig sets the TLS configuration of the connections to etcd (it is cloned), for
// host:port and https:// endpoints; http:// endpoints stay plain. Default: plain TCP,
// except for https:// endpoints, which use TLS with the system's roots.
func TLSConfig(c *tls.Config) source.Option { return source.ContextOption(tlsConfigKey{}, c) }

// settings are the options of a source, read from its context once.
type settings struct {
	addrs   []string
	prefix  string
	strip   bool
	auth    credentials
	timeout time.Duration
	tls     *tls.Config
}

func settingsOf(o source.Options) settings {
	s := settings{prefix: DefaultPrefix, strip: true, timeout: DefaultDialTimeout}
	ctx := o.Context
	if ctx == nil {
		return s
	}
	if v, ok := ctx.Value(addressKey{}).([]string); ok {
		s.addrs = v
	}
	if v, ok := ctx.Value(prefixKey{}).(string); ok {
		s.prefix = v
	}
	if v, ok := ctx.Value(stripPrefixKey{}).(bool); ok {
		s.strip = v
	}
	if v, ok := ctx.Value(authKey{}).(credentials); ok && v.username != "" && v.password != "" {
		s.auth = v
	}
	if v, ok := ctx.Value(dialTimeoutKey{}).(time.Duration); ok && v > 0 {
		s.timeout = v
	}
	if v, ok := ctx.Value(tlsConfigKey{}).(*tls.Config); ok && v != nil {
		s.tls = v.Clone()
	}
	return s
}
