package nats

import (
	"crypto/tls"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

const (
	// DefaultUrl is the NATS server used when WithUrl is not given.
	DefaultUrl = "nats://127.0.0.1:4222"
	// DefaultBucket is the key-value bucket used when WithBucket is not given.
	DefaultBucket = "default"
	// DefaultKey is the key holding the document when WithKey is not given.
	DefaultKey = "micro_config"
	// DefaultFormat is the format of the document when WithFormat is not given.
	DefaultFormat = "json"
	// DefaultTimeout bounds connecting and each request when WithTimeout is not given
	// (or not positive).
	DefaultTimeout = 5 * time.Second
)

type (
	urlKey     struct{}
	bucketKey  struct{}
	keyKey     struct{}
	formatKey  struct{}
	timeoutKey struct{}
	tlsKey     struct{}
)

// WithUrl sets the NATS servers, as URLs (nats://host:port, tls://host:port) or
// host:port. An argument may hold several comma-separated servers; the connection uses
// any of them. Default: DefaultUrl.
func WithUrl(urls ...string) source.Option {
	return source.ContextOption(urlKey{}, append([]string(nil), urls...))
}

// WithBucket sets the JetStream key-value bucket that holds the document. A bucket that
// does not exist is created, with the server's default settings, on first use. Default:
// DefaultBucket.
func WithBucket(bucket string) source.Option { return source.ContextOption(bucketKey{}, bucket) }

// WithKey sets the key whose value is the document. Default: DefaultKey.
func WithKey(key string) source.Option { return source.ContextOption(keyKey{}, key) }

// WithFormat sets the format of the document stored at the key ("json", "yaml", "toml",
// ...), which becomes the Format of the change sets the source returns. Default:
// DefaultFormat.
func WithFormat(format string) source.Option { return source.ContextOption(formatKey{}, format) }

// WithTimeout bounds connecting to NATS and each request made to it: a Read, a Write,
// and the start of a watch. Default: DefaultTimeout.
func WithTimeout(d time.Duration) source.Option { return source.ContextOption(timeoutKey{}, d) }

// WithTLSConfig sets the TLS configuration of the connection to NATS (it is cloned), and
// requires TLS. Default: plain TCP, unless a server URL or the server asks for TLS.
func WithTLSConfig(c *tls.Config) source.Option { return source.ContextOption(tlsKey{}, c) }

// settings are the options of a source, read from its context once.
type settings struct {
	urls    []string
	bucket  string
	key     string
	format  string
	timeout time.Duration
	tls     *tls.Config
}

func settingsOf(o source.Options) settings {
	s := settings{bucket: DefaultBucket, key: DefaultKey, format: DefaultFormat, timeout: DefaultTimeout}
	if ctx := o.Context; ctx != nil {
		if v, ok := ctx.Value(urlKey{}).([]string); ok {
			s.urls = v
		}
		if v, ok := ctx.Value(bucketKey{}).(string); ok && v != "" {
			s.bucket = v
		}
		if v, ok := ctx.Value(keyKey{}).(string); ok && v != "" {
			s.key = v
		}
		if v, ok := ctx.Value(formatKey{}).(string); ok && v != "" {
			s.format = v
		}
		if v, ok := ctx.Value(timeoutKey{}).(time.Duration); ok && v > 0 {
			s.timeout = v
		}
		if v, ok := ctx.Value(tlsKey{}).(*tls.Config); ok && v != nil {
			s.tls = v.Clone()
		}
	}
	return s
}
