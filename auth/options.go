package auth

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

// Options configure an Auth.
type Options struct {
	Logger logger.Logger
	// Token is the service's own token, attached to the calls it makes.
	Token *Token
	// Namespace groups accounts; it is the default Issuer.
	Namespace string
	// ID and Secret are the service's own credentials.
	ID     string
	Secret string
	// PublicKey and PrivateKey are base64-encoded PEM keys for signing tokens.
	PublicKey  string
	PrivateKey string
	// Issuer is the issuer written into tokens and required of the tokens inspected.
	// Default: Namespace.
	Issuer string
	// Store persists what an implementation keeps (keys, rules); nil means its default.
	Store store.Store
	// Addrs are the addresses of a remote auth service, where an implementation uses one.
	Addrs []string
	// Context carries implementation-specific options.
	Context context.Context
}

// Option sets a field of Options.
type Option func(o *Options)

// DefaultNamespace is the namespace when none is given.
const DefaultNamespace = "go.micro"

// NewOptions returns Options with opts applied over the defaults (namespace go.micro,
// logger.DefaultLogger).
func NewOptions(opts ...Option) Options {
	o := Options{Namespace: DefaultNamespace, Logger: logger.DefaultLogger, Context: context.Background()}
	for _, f := range opts {
		f(&o)
	}
	if o.Issuer == "" {
		o.Issuer = o.Namespace
	}
	return o
}

// Addrs sets the addresses of a remote auth service.
func Addrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// Namespace sets the namespace.
func Namespace(n string) Option { return func(o *Options) { o.Namespace = n } }

// Issuer sets the issuer of tokens.
func Issuer(i string) Option { return func(o *Options) { o.Issuer = i } }

// Store sets the store an implementation persists to; nil keeps its default.
func Store(s store.Store) Option { return func(o *Options) { o.Store = s } }

// PublicKey sets the base64-encoded PEM public key that verifies tokens.
func PublicKey(key string) Option { return func(o *Options) { o.PublicKey = key } }

// PrivateKey sets the base64-encoded PEM private key that signs tokens.
func PrivateKey(key string) Option { return func(o *Options) { o.PrivateKey = key } }

// WithLogger sets the logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// Credentials sets the service's own credentials.
func Credentials(id, secret string) Option {
	return func(o *Options) { o.ID, o.Secret = id, secret }
}

// ClientToken sets the service's own token.
func ClientToken(token *Token) Option { return func(o *Options) { o.Token = token } }

// GenerateOptions configure Generate.
type GenerateOptions struct {
	Metadata map[string]string
	Provider string
	Type     string
	Secret   string
	Scopes   []string
}

// GenerateOption sets a field of GenerateOptions.
type GenerateOption func(o *GenerateOptions)

// WithSecret sets the account's secret.
func WithSecret(s string) GenerateOption { return func(o *GenerateOptions) { o.Secret = s } }

// WithType sets the account's type.
func WithType(t string) GenerateOption { return func(o *GenerateOptions) { o.Type = t } }

// WithMetadata sets the account's metadata.
func WithMetadata(md map[string]string) GenerateOption {
	return func(o *GenerateOptions) { o.Metadata = md }
}

// WithProvider sets the account's provider.
func WithProvider(p string) GenerateOption { return func(o *GenerateOptions) { o.Provider = p } }

// WithScopes sets the account's scopes.
func WithScopes(s ...string) GenerateOption { return func(o *GenerateOptions) { o.Scopes = s } }

// NewGenerateOptions applies opts.
func NewGenerateOptions(opts ...GenerateOption) GenerateOptions {
	var o GenerateOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// TokenOptions configure Token.
type TokenOptions struct {
	ID           string
	Secret       string
	RefreshToken string
	// Expiry is how long the access token lives. Default 1 minute.
	Expiry time.Duration
}

// TokenOption sets a field of TokenOptions.
type TokenOption func(o *TokenOptions)

// WithExpiry sets how long the access token lives.
func WithExpiry(d time.Duration) TokenOption { return func(o *TokenOptions) { o.Expiry = d } }

// WithCredentials exchanges an account's id and secret for a token.
func WithCredentials(id, secret string) TokenOption {
	return func(o *TokenOptions) { o.ID, o.Secret = id, secret }
}

// WithToken exchanges a refresh token for a new token.
func WithToken(rt string) TokenOption { return func(o *TokenOptions) { o.RefreshToken = rt } }

// NewTokenOptions applies opts over the defaults.
func NewTokenOptions(opts ...TokenOption) TokenOptions {
	var o TokenOptions
	for _, f := range opts {
		f(&o)
	}
	if o.Expiry <= 0 {
		o.Expiry = time.Minute
	}
	return o
}

// VerifyOptions configure Verify.
type VerifyOptions struct{ Context context.Context }

// VerifyOption sets a field of VerifyOptions.
type VerifyOption func(o *VerifyOptions)

// VerifyContext sets the context of a Verify.
func VerifyContext(ctx context.Context) VerifyOption {
	return func(o *VerifyOptions) { o.Context = ctx }
}

// ListOptions configure List.
type ListOptions struct{ Context context.Context }

// ListOption sets a field of ListOptions.
type ListOption func(o *ListOptions)

// RulesContext sets the context of a List.
func RulesContext(ctx context.Context) ListOption {
	return func(o *ListOptions) { o.Context = ctx }
}
