// Package auth holds the wrappers that enforce authentication and authorisation on a
// service: AuthHandler for RPCs and streams, AuthSubscriber for broker deliveries, and
// AuthClient (FromToken, FromContext, ServiceClient) to attach tokens to outgoing calls.
// micro.Auth turns them all on for a service.
//
// A request proves its caller with "Authorization: Bearer <token>", or, with mutual TLS,
// with a client certificate from the service CA (auth/ca): the server puts the
// certificate's service name in the Micro-Peer-Service metadata, which it strips from
// what callers send, and the wrappers turn it into a service account (ID the service,
// Type "service", Scopes "service" and "service:<name>") when the request carries no
// token.
//
// With Rules, every request is checked against them; without, any authenticated caller is
// admitted. A caller without valid credentials gets 401 Unauthorized, one the rules refuse
// 403 Forbidden, and the handler never runs. Rules granting ScopePublic admit callers
// without a token. Error details never contain the token.
package auth

import (
	"context"
	"errors"

	"github.com/seed-b3892490/micro/auth"
	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/server"
)

// HandlerOptions configure AuthHandler and AuthSubscriber.
type HandlerOptions struct {
	// Auth inspects tokens. Without it no token is valid.
	Auth auth.Auth
	// Rules authorise each request; nil admits any authenticated caller.
	Rules auth.Rules
	// SkipEndpoints are served without authentication ("Greeter.Health"). A valid token
	// on them still puts its account in the context.
	SkipEndpoints []string
}

// AuthHandler returns a handler wrapper that authenticates every request, checks it
// against the rules, and puts the caller's account in the handler's context. Streams go
// through it too.
func AuthHandler(opts HandlerOptions) server.HandlerWrapper {
	skip := make(map[string]bool, len(opts.SkipEndpoints))
	for _, e := range opts.SkipEndpoints {
		skip[e] = true
	}
	return func(h server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req server.Request, rsp interface{}) error {
			if skip[req.Endpoint()] {
				return h(optional(ctx, opts.Auth), req, rsp)
			}
			res := &auth.Resource{Type: "service", Name: req.Service(), Endpoint: req.Endpoint()}
			ctx, err := authorize(ctx, opts, res, req.Service())
			if err != nil {
				return err
			}
			return h(ctx, req, rsp)
		}
	}
}

// AuthSubscriber returns a subscriber wrapper that does for broker deliveries what
// AuthHandler does for requests: the publisher's token travels in the message's
// Authorization header. The resource is {Type "subscriber", Name the topic, Endpoint
// the topic}. service names the subscribing service in error replies.
func AuthSubscriber(service string, opts HandlerOptions) server.SubscriberWrapper {
	return func(next server.SubscriberFunc) server.SubscriberFunc {
		return func(ctx context.Context, msg server.Message) error {
			res := &auth.Resource{Type: "subscriber", Name: msg.Topic(), Endpoint: msg.Topic()}
			ctx, err := authorize(ctx, opts, res, service)
			if err != nil {
				return err
			}
			return next(ctx, msg)
		}
	}
}

// PublicEndpoints returns options that serve publicEndpoints without authentication.
func PublicEndpoints(authProvider auth.Auth, rules auth.Rules, publicEndpoints []string) HandlerOptions {
	return HandlerOptions{Auth: authProvider, Rules: rules, SkipEndpoints: publicEndpoints}
}

// AuthRequired returns options that authenticate every endpoint.
func AuthRequired(authProvider auth.Auth, rules auth.Rules) HandlerOptions {
	return HandlerOptions{Auth: authProvider, Rules: rules}
}

// AuthOptional returns a handler wrapper that puts the account of a valid token in the
// context and serves every request, with or without one.
func AuthOptional(authProvider auth.Auth) server.HandlerWrapper {
	return func(h server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req server.Request, rsp interface{}) error {
			return h(optional(ctx, authProvider), req, rsp)
		}
	}
}

func optional(ctx context.Context, a auth.Auth) context.Context {
	md, _ := metadata.FromContext(ctx)
	if acc, err := AccountFromMetadata(md, a); err == nil && acc != nil {
		return auth.ContextWithAccount(ctx, acc)
	}
	if acc := peerAccount(md); acc != nil {
		return auth.ContextWithAccount(ctx, acc)
	}
	return ctx
}

// peerAccount is the service account of a verified client certificate.
func peerAccount(md metadata.Metadata) *auth.Account {
	name, ok := md[server.PeerServiceKey]
	if !ok || name == "" {
		return nil
	}
	return ServiceAccount(name)
}

// ServiceAccount is the account of a service proven by its certificate: ID the service,
// Type "service", Scopes "service" and "service:<name>".
func ServiceAccount(name string) *auth.Account {
	return &auth.Account{ID: name, Type: "service", Issuer: "micro-ca", Scopes: []string{"service", "service:" + name}}
}

// authorize authenticates the caller of ctx and checks res against the rules.
func authorize(ctx context.Context, opts HandlerOptions, res *auth.Resource, id string) (context.Context, error) {
	md, _ := metadata.FromContext(ctx)
	var acc *auth.Account
	token, err := TokenFromMetadata(md)
	switch {
	case err == nil:
		if opts.Auth == nil {
			return ctx, merrors.Unauthorized(id, "invalid token: this service cannot verify tokens")
		}
		a, ierr := opts.Auth.Inspect(token)
		if ierr != nil || a == nil {
			return ctx, merrors.Unauthorized(id, "invalid token")
		}
		acc = a
	case errors.Is(err, ErrMissingToken):
		acc = peerAccount(md)
	default:
		return ctx, merrors.Unauthorized(id, "malformed Authorization header: expected 'Bearer <token>'")
	}
	if opts.Rules != nil {
		if verr := opts.Rules.Verify(acc, res, auth.VerifyContext(ctx)); verr != nil {
			if acc == nil {
				return ctx, merrors.Unauthorized(id, "authentication required for %s", res.Endpoint)
			}
			return ctx, merrors.Forbidden(id, "access denied to %s", res.Endpoint)
		}
	} else if acc == nil {
		return ctx, merrors.Unauthorized(id, "authentication required for %s", res.Endpoint)
	}
	if acc != nil {
		ctx = auth.ContextWithAccount(ctx, acc)
	}
	return ctx, nil
}
