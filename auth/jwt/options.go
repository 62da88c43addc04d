package jwt

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/auth"
)

const (
	// DefaultLeeway is the clock skew tolerated when checking a token's exp, nbf and
	// iat, when WithLeeway is not given.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway WithLeeway accepts; larger values are lowered to
	// it, so that an expired token is never accepted for more than 30 s.
	MaxLeeway = 30 * time.Second
	// DefaultMaxTokenSize is the length, in bytes, of the longest token Inspect and Token
	// parse, when WithMaxTokenSize is not given.
	DefaultMaxTokenSize = 8 << 10
)

type (
	verifyKeysKey   struct{}
	leewayKey       struct{}
	audienceKey     struct{}
	maxTokenSizeKey struct{}
)

func withValue(o *auth.Options, k, v any) {
	if o.Context == nil {
		o.Context = context.Background()
	}
	o.Context = context.WithValue(o.Context, k, v)
}

// WithVerifyKeys adds public keys (base64-encoded PEM, like auth.PublicKey) that are
// trusted to have signed tokens, besides the signing key. It serves key rotation: after
// switching auth.PrivateKey to a new key, list the old public key here and the tokens it
// signed keep verifying until they expire or the key is removed from the list. Each call
// replaces the list of the previous one.
func WithVerifyKeys(keys ...string) auth.Option {
	keys = append([]string(nil), keys...)
	return func(o *auth.Options) { withValue(o, verifyKeysKey{}, keys) }
}

// WithLeeway sets the clock skew tolerated between the process that issued a token and
// the one that inspects it: a token is accepted until exp + leeway and from nbf − leeway.
// The default is DefaultLeeway (30 s); values above MaxLeeway (30 s) count as 30 s, and
// negative values as 0.
func WithLeeway(d time.Duration) auth.Option {
	return func(o *auth.Options) { withValue(o, leewayKey{}, d) }
}

// WithAudience sets the audience (aud) written into the tokens issued and required of
// the tokens inspected: with it set, a token without that audience is invalid. Unset (or
// ""), tokens carry no audience and none is checked.
func WithAudience(aud string) auth.Option {
	return func(o *auth.Options) { withValue(o, audienceKey{}, aud) }
}

// WithMaxTokenSize sets the length, in bytes, of the longest token accepted; longer
// tokens are refused before they are parsed, and Generate and Token refuse to issue
// them. The default is DefaultMaxTokenSize (8 KiB); n ≤ 0 means the default.
func WithMaxTokenSize(n int) auth.Option {
	return func(o *auth.Options) { withValue(o, maxTokenSizeKey{}, n) }
}

// settings are the options of this package, read from auth.Options.Context.
type settings struct {
	verifyKeys []string
	leeway     time.Duration
	audience   string
	maxSize    int
}

func readSettings(ctx context.Context) settings {
	s := settings{leeway: DefaultLeeway, maxSize: DefaultMaxTokenSize}
	if ctx == nil {
		return s
	}
	if v, ok := ctx.Value(verifyKeysKey{}).([]string); ok {
		s.verifyKeys = v
	}
	if v, ok := ctx.Value(leewayKey{}).(time.Duration); ok {
		s.leeway = min(max(v, 0), MaxLeeway)
	}
	if v, ok := ctx.Value(audienceKey{}).(string); ok {
		s.audience = v
	}
	if v, ok := ctx.Value(maxTokenSizeKey{}).(int); ok && v > 0 {
		s.maxSize = v
	}
	return s
}
