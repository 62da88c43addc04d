// Package auth authenticates callers and authorises what they call: accounts, the tokens
// that prove them, and rules that say which accounts may use which resources.
//
// An Auth issues and checks tokens (auth/jwt signs them; auth/noop accepts anything, for
// development). Rules decide access: Verify(account, resource) returns nil or
// ErrForbidden. The server side of enforcement is the wrapper/auth handler wrapper,
// which micro.Auth turns on for every RPC, stream and subscriber; calls without a valid
// token get 401 and never reach the handler.
//
// # Rules
//
// A rule names a resource (type, name, endpoint), a scope, an access (granted or denied)
// and a priority. Verify considers the rules whose resource matches:
//
//   - Type and Name match when equal to the resource's, or "*". A Name ending in ".*"
//     matches names with that prefix ("go.micro.*" matches "go.micro.srv").
//   - Endpoint matches when equal (case-sensitive, like the router), "*", "Service.*"
//     for every method of Service, or a path prefix "/a/*" for "/a", "/a/b", "/a/b/c".
//
// and of those, the ones that apply to the account: scope "" (ScopePublic) applies to
// everyone, even a caller with no account; "*" (ScopeAccount) to any account; any other
// scope to accounts that hold it. Among the applying rules, the highest priority decides;
// at equal priority a denial beats a grant. When no rule applies, access is denied.
package auth

import (
	"context"
	"errors"
	"time"
)

const (
	// BearerScheme is the prefix of an Authorization header carrying a token.
	BearerScheme = "Bearer "
	// ScopePublic is the scope of rules that apply to everyone, with or without an
	// account.
	ScopePublic = ""
	// ScopeAccount is the scope of rules that apply to any authenticated account.
	ScopeAccount = "*"
)

var (
	// ErrInvalidToken is returned for a token that is missing, malformed, expired, not
	// yet valid, or not signed by a trusted key.
	ErrInvalidToken = errors.New("invalid token provided")
	// ErrForbidden is returned when no rule grants the account the resource.
	ErrForbidden = errors.New("resource forbidden")
)

// Auth issues and inspects tokens.
type Auth interface {
	// Init applies options.
	Init(opts ...Option)
	// Options returns the current options.
	Options() Options
	// Generate creates an account with id. Its Secret can be exchanged for tokens with
	// Token(WithCredentials(id, secret)).
	Generate(id string, opts ...GenerateOption) (*Account, error)
	// Inspect checks a token and returns the account it proves. A token that is not
	// valid gives an error matching ErrInvalidToken.
	Inspect(token string) (*Account, error)
	// Token issues an access token (and a refresh token) for credentials or a refresh
	// token.
	Token(opts ...TokenOption) (*Token, error)
	String() string
}

// Rules decide access to resources.
type Rules interface {
	// Verify returns nil when the rules grant acc the resource, ErrForbidden otherwise.
	// A nil acc is a caller without an account.
	Verify(acc *Account, res *Resource, opts ...VerifyOption) error
	// Grant adds a rule, replacing one with the same ID.
	Grant(rule *Rule) error
	// Revoke removes the rule with rule.ID.
	Revoke(rule *Rule) error
	// List returns the rules.
	List(...ListOption) ([]*Rule, error)
}

// Account is an authenticated identity: a user, or a service.
type Account struct {
	// Metadata is free-form data about the account.
	Metadata map[string]string `json:"metadata"`
	// ID identifies the account: a user name, or a service's name.
	ID string `json:"id"`
	// Type is "user", "service", or another kind the application chooses.
	Type string `json:"type"`
	// Issuer names who issued the account.
	Issuer string `json:"issuer"`
	// Secret is what Token exchanges for tokens; it is never sent on calls.
	Secret string `json:"secret"`
	// Scopes are the permissions rules check.
	Scopes []string `json:"scopes"`
}

// HasScope reports whether the account holds scope.
func (a *Account) HasScope(scope string) bool {
	if a == nil {
		return false
	}
	for _, s := range a.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Token is an access token and the refresh token that renews it.
type Token struct {
	Created      time.Time `json:"created"`
	Expiry       time.Time `json:"expiry"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
}

// Expired reports whether the access token has expired.
func (t *Token) Expired() bool {
	return t == nil || !t.Expiry.IsZero() && !time.Now().Before(t.Expiry)
}

// Resource is something rules protect: for an RPC, Type "service", Name the service and
// Endpoint the method ("Greeter.Hello").
type Resource struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// Access is what a rule says about a resource.
type Access int

const (
	// AccessGranted allows access.
	AccessGranted Access = iota
	// AccessDenied refuses access.
	AccessDenied
)

// String returns "granted" or "denied".
func (a Access) String() string {
	switch a {
	case AccessGranted:
		return "granted"
	case AccessDenied:
		return "denied"
	}
	return "unknown"
}

// Rule grants or denies a scope access to a resource.
type Rule struct {
	// Resource the rule covers; its fields may hold wildcards (see the package doc).
	Resource *Resource `json:"resource"`
	// ID identifies the rule, for Grant to replace and Revoke to remove.
	ID string `json:"id"`
	// Scope the account must hold: ScopePublic, ScopeAccount or a scope name.
	Scope string `json:"scope"`
	// Access granted or denied.
	Access Access `json:"access"`
	// Priority orders rules: higher is considered first.
	Priority int32 `json:"priority"`
}

type accountKey struct{}

// AccountFromContext returns the account a handler's caller authenticated as.
func AccountFromContext(ctx context.Context) (*Account, bool) {
	if ctx == nil {
		return nil, false
	}
	acc, ok := ctx.Value(accountKey{}).(*Account)
	return acc, ok && acc != nil
}

// ContextWithAccount returns a copy of ctx carrying account.
func ContextWithAccount(ctx context.Context, account *Account) context.Context {
	return context.WithValue(ctx, accountKey{}, account)
}
