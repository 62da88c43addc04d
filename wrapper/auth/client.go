package auth

import (
	"context"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/metadata"
)

// ClientOptions configure AuthClient.
type ClientOptions struct {
	// Auth issues tokens: for the account in the call's context (FromContext), or for
	// the service itself when Service is set.
	Auth auth.Auth
	// Token is a fixed token to attach to every call.
	Token string
	// Service, with Auth, attaches the service's own token: from Auth's ClientToken,
	// else its Credentials, else an account Auth generates for the service. The token is
	// refreshed before it expires.
	Service string
}

// ServiceTokenExpiry is how long the service tokens AuthClient obtains live; they are
// renewed when a quarter of that is left.
const ServiceTokenExpiry = 10 * time.Minute

// AuthClient returns a client wrapper that attaches a token to every call, stream and
// publication that does not carry one already.
func AuthClient(opts ClientOptions) client.Wrapper {
	src := &tokenSource{a: opts.Auth, service: opts.Service}
	return func(c client.Client) client.Client {
		return &authClient{Client: c, opts: opts, src: src}
	}
}

// FromToken returns a client wrapper attaching token to every call.
func FromToken(token string) client.Wrapper { return AuthClient(ClientOptions{Token: token}) }

// FromContext returns a client wrapper that exchanges the credentials of the account in
// each call's context for a token.
func FromContext(authProvider auth.Auth) client.Wrapper {
	return AuthClient(ClientOptions{Auth: authProvider})
}

// ServiceClient returns a client wrapper that attaches the service's own token, renewed
// before it expires. micro.Auth installs it.
func ServiceClient(authProvider auth.Auth, service string) client.Wrapper {
	return AuthClient(ClientOptions{Auth: authProvider, Service: service})
}

type authClient struct {
	client.Client
	opts ClientOptions
	src  *tokenSource
}

func (a *authClient) withToken(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	if md, ok := metadata.FromContext(ctx); ok {
		if _, has := md.Get(MetadataKeyAuthorization); has {
			return ctx // the caller chose its credentials
		}
	}
	token := a.opts.Token
	if token == "" && a.opts.Auth != nil {
		if acc, ok := auth.AccountFromContext(ctx); ok && acc.Secret != "" {
			if t, err := a.opts.Auth.Token(auth.WithCredentials(acc.ID, acc.Secret)); err == nil {
				token = t.AccessToken
			}
		}
		if token == "" && a.opts.Service != "" {
			token = a.src.token()
		}
	}
	if token == "" {
		return ctx
	}
	return metadata.Set(ctx, MetadataKeyAuthorization, BearerPrefix+token)
}

func (a *authClient) Call(ctx context.Context, req client.Request, rsp interface{}, opts ...client.CallOption) error {
	return a.Client.Call(a.withToken(ctx), req, rsp, opts...)
}

func (a *authClient) Stream(ctx context.Context, req client.Request, opts ...client.CallOption) (client.Stream, error) {
	return a.Client.Stream(a.withToken(ctx), req, opts...)
}

func (a *authClient) Publish(ctx context.Context, msg client.Message, opts ...client.PublishOption) error {
	return a.Client.Publish(a.withToken(ctx), msg, opts...)
}

// tokenSource holds a service's token and renews it.
type tokenSource struct {
	a       auth.Auth
	service string
	mu      sync.Mutex
	tok     *auth.Token
}

// fresh reports whether t can be used for a while yet: more than a quarter of its
// lifetime (and more than 5 s) left. A token without expiry is always fresh.
func fresh(t *auth.Token, now time.Time) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	left := t.Expiry.Sub(now)
	life := t.Expiry.Sub(t.Created)
	return left > 5*time.Second && (life <= 0 || left > life/4)
}

// token returns the service's access token, renewing it when due; "" when none can be
// had (the call then goes without, and the server answers 401).
func (s *tokenSource) token() string {
	if s.a == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if fresh(s.tok, now) {
		return s.tok.AccessToken
	}
	o := s.a.Options()
	var next *auth.Token
	switch {
	case s.tok != nil && s.tok.RefreshToken != "" && s.tok.Expiry.After(now):
		next, _ = s.a.Token(auth.WithToken(s.tok.RefreshToken), auth.WithExpiry(ServiceTokenExpiry))
	case o.Token != nil && fresh(o.Token, now):
		next = o.Token
	case o.Token != nil && o.Token.RefreshToken != "":
		next, _ = s.a.Token(auth.WithToken(o.Token.RefreshToken), auth.WithExpiry(ServiceTokenExpiry))
	}
	if next == nil && o.ID != "" && o.Secret != "" {
		next, _ = s.a.Token(auth.WithCredentials(o.ID, o.Secret), auth.WithExpiry(ServiceTokenExpiry))
	}
	if next == nil && s.service != "" {
		if acc, err := s.a.Generate(s.service, auth.WithType("service"), auth.WithScopes("service", "service:"+s.service)); err == nil && acc.Secret != "" {
			next, _ = s.a.Token(auth.WithCredentials(acc.ID, acc.Secret), auth.WithExpiry(ServiceTokenExpiry))
		}
	}
	if next == nil || next.AccessToken == "" {
		if s.tok != nil && s.tok.Expiry.After(now) {
			return s.tok.AccessToken // renewal failed: use what is left of the old one
		}
		return ""
	}
	s.tok = next
	return next.AccessToken
}
