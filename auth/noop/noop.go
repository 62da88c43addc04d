// Package noop is the auth of development: an auth.Auth that enforces nothing. Inspect
// accepts any non-empty token as an account, Generate echoes its inputs and Token
// returns an empty token that never expires. It is auth.NewAuth under the name Go Micro
// gives it; never use it where callers must be authenticated (use auth/jwt).
package noop

import "github.com/seed-b3892490/micro/auth"

// NewAuth returns the noop auth (auth.NewAuth), which enforces nothing.
func NewAuth(opts ...auth.Option) auth.Auth { return auth.NewAuth(opts...) }

// NewRules returns rules held in memory (auth.NewRules).
func NewRules() auth.Rules { return auth.NewRules() }
