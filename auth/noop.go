package auth

import (
	"sync"

	"github.com/google/uuid"
)

// DefaultAuth is the auth of services that set none: noop, which enforces nothing.
var DefaultAuth = NewAuth()

// NewAuth returns the noop auth, for development: Generate echoes its inputs, Inspect
// accepts any non-empty token as a fresh account of its own, and Token returns an empty
// token that never expires. Use auth/jwt for real tokens.
func NewAuth(opts ...Option) Auth {
	n := &noop{}
	n.Init(opts...)
	return n
}

type noop struct {
	mu   sync.RWMutex
	opts Options
	init bool
}

func (n *noop) Init(opts ...Option) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.init {
		n.opts, n.init = NewOptions(opts...), true
		return
	}
	for _, o := range opts {
		o(&n.opts)
	}
}

func (n *noop) Options() Options {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.opts
}

func (n *noop) Generate(id string, opts ...GenerateOption) (*Account, error) {
	o := NewGenerateOptions(opts...)
	return &Account{ID: id, Secret: o.Secret, Metadata: o.Metadata, Scopes: o.Scopes, Type: o.Type, Issuer: n.Options().Issuer}, nil
}

func (n *noop) Inspect(token string) (*Account, error) {
	if token == "" {
		return nil, ErrInvalidToken
	}
	return &Account{ID: uuid.NewString(), Issuer: n.Options().Issuer}, nil
}

func (n *noop) Token(opts ...TokenOption) (*Token, error) { return &Token{}, nil }

func (n *noop) String() string { return "noop" }
