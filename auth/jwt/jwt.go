// Package jwt is an auth.Auth that issues and checks JSON Web Tokens signed with a
// public-key algorithm, so that any process holding the public key can inspect the
// tokens another one issued.
//
// # Keys
//
// auth.PrivateKey and auth.PublicKey take base64-encoded PEM. A private key may be
// Ed25519 (PKCS#8), ECDSA P-256 (PKCS#8 or SEC 1) or RSA of at least 2048 bits (PKCS#1
// or PKCS#8); the algorithm follows the key: EdDSA, ES256 or RS256. A public key is PKIX
// (PUBLIC KEY) or, for RSA, PKCS#1. Given only a public key, the Auth inspects tokens but
// Generate and Token return an error. Given no key:
//
//   - with auth.Store, the Auth uses the Ed25519 pair kept in the store under StoreKey,
//     generating and keeping one if there is none, so processes sharing the store share
//     the pair;
//   - without a store, it generates an Ed25519 pair that lives as long as the Auth and
//     logs a warning: its tokens verify nowhere else, nor after a restart.
//
// Every token names its key in the kid header: the first 16 characters of the unpadded
// base64url SHA-256 of the public key's PKIX DER. Inspect accepts the signing key and
// the keys given with WithVerifyKeys (for key rotation), each with its own algorithm
// only.
//
// # Tokens
//
// Claims: iss (auth.Options.Issuer), sub (the account ID), aud (WithAudience, when set),
// exp, nbf, iat, jti (random), and type, scopes and metadata (the account's), and use,
// which tells the three kinds of token apart:
//
//   - "secret": the Account.Secret Generate returns, valid for one year (SecretExpiry),
//     exchanged for tokens by Token(auth.WithCredentials(id, secret));
//   - "access": what Inspect accepts, valid for auth.WithExpiry (default 1 minute);
//   - "refresh": exchanged for new tokens by Token(auth.WithToken(refresh)), valid for
//     one hour more than the access token issued with it.
//
// Inspect accepts only access tokens. It refuses, with an error matching
// auth.ErrInvalidToken, tokens that are empty, longer than WithMaxTokenSize (checked
// before parsing), malformed, signed with an algorithm other than their key's (none and
// HMAC are never accepted), by a key it does not trust, or with no kid; that fail their
// signature; that expired (exp more than the leeway ago) or are not valid yet (nbf more
// than the leeway ahead) or have no exp; or whose issuer, audience or use is wrong. The
// clock skew leeway is 30 s by default and at most 30 s (WithLeeway). Errors say why a
// token was refused but never include the token or key material.
//
// Inspect remembers the access tokens it accepted (up to 4096) until their exp, so a
// caller that sends the same token on every call pays for one signature check (tens of
// microseconds) and then a map lookup. A remembered token is still refused from its exp
// on; within the leeway after exp it is checked again in full.
//
// An Auth is safe for concurrent use. Init applies options on top of the current ones
// and derives the keys again; if the new options hold a bad key, the error is logged and
// every call returns it until Init is given good options (the Auth fails closed rather
// than keep signing with the old key).
package jwt

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/logger"
)

// SecretExpiry is how long the secret of a generated account is valid.
const SecretExpiry = 365 * 24 * time.Hour

// RefreshExtra is how much longer a refresh token lives than the access token issued
// with it.
const RefreshExtra = time.Hour

// The values of the use claim.
const (
	useAccess  = "access"
	useRefresh = "refresh"
	useSecret  = "secret"
)

// ErrCannotSign is returned by Generate and Token of an Auth given only a public key.
var ErrCannotSign = errors.New("auth/jwt: no private key: this auth inspects tokens but cannot issue them (set auth.PrivateKey)")

// NewRules returns rules held in memory (auth.NewRules).
func NewRules() auth.Rules { return auth.NewRules() }

// NewAuth returns an Auth signing with the key options give (see the package
// documentation). It returns an error for a key that cannot be used.
func NewAuth(opts ...auth.Option) (auth.Auth, error) {
	a := &jwtAuth{}
	a.opts = auth.NewOptions(opts...)
	st, err := a.derive(a.opts)
	if err != nil {
		return nil, err
	}
	a.state.Store(st)
	return a, nil
}

type jwtAuth struct {
	mu        sync.Mutex // serialises Init
	opts      auth.Options
	ephemeral *signingKey // the key generated when there is neither key nor store
	state     atomic.Pointer[state]
}

// state is what the options derive to; it never changes once stored.
type state struct {
	err       error // the options' error: every call returns it
	signer    *signingKey
	verifiers map[string]*verifyingKey
	issuer    string
	audience  string
	maxSize   int
	cache     *inspectCache // accounts of access tokens already verified
}

func (a *jwtAuth) String() string { return "jwt" }

func (a *jwtAuth) Init(opts ...auth.Option) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range opts {
		o(&a.opts)
	}
	if a.opts.Issuer == "" {
		a.opts.Issuer = a.opts.Namespace
	}
	st, err := a.derive(a.opts)
	if err != nil {
		logger.LoggerOrDefault(a.opts.Logger).Logf(logger.ErrorLevel, "auth/jwt: Init: %v; the auth refuses every call until Init is given usable options", err)
		st = &state{err: err}
	}
	a.state.Store(st)
}

func (a *jwtAuth) Options() auth.Options {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opts
}

// derive builds the state of opts. It is called with a.mu held, or before a is shared.
func (a *jwtAuth) derive(opts auth.Options) (*state, error) {
	set := readSettings(opts.Context)
	st := &state{
		cache:     &inspectCache{entries: map[string]cached{}},
		verifiers: map[string]*verifyingKey{},
		issuer:    opts.Issuer,
		audience:  set.audience,
		maxSize:   set.maxSize,
	}
	parserOpts := []gojwt.ParserOption{
		gojwt.WithIssuer(opts.Issuer),
		gojwt.WithLeeway(set.leeway),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithStrictDecoding(),
	}
	if set.audience != "" {
		parserOpts = append(parserOpts, gojwt.WithAudience(set.audience))
	}
	trust := func(which string, pub any) error {
		alg := algOf(pub)
		kid, err := keyID(pub)
		if alg == "" || err != nil {
			return keyError(which, "unsupported key")
		}
		st.verifiers[kid] = &verifyingKey{
			alg:    alg,
			key:    pub,
			parser: gojwt.NewParser(append([]gojwt.ParserOption{gojwt.WithValidMethods([]string{alg})}, parserOpts...)...),
		}
		return nil
	}

	switch {
	case opts.PrivateKey != "":
		signer, err := parsePrivateKey(opts.PrivateKey)
		if err != nil {
			return nil, err
		}
		if opts.PublicKey != "" {
			pub, err := parsePublicKey("public key", opts.PublicKey)
			if err != nil {
				return nil, err
			}
			if !samePublicKey(pub, signer.key.Public()) {
				return nil, keyError("public key", "it is not the public key of the private key")
			}
		}
		st.signer = signer
	case opts.PublicKey != "":
		pub, err := parsePublicKey("public key", opts.PublicKey)
		if err != nil {
			return nil, err
		}
		if err := trust("public key", pub); err != nil {
			return nil, err
		}
	case opts.Store != nil:
		signer, err := loadOrCreateKey(opts.Store)
		if err != nil {
			return nil, err
		}
		st.signer = signer
	default:
		if a.ephemeral == nil {
			a.ephemeral = newEd25519Key()
			logger.LoggerOrDefault(opts.Logger).Logf(logger.WarnLevel,
				"auth/jwt: no key and no store given: signing with an ephemeral Ed25519 key (kid %s); its tokens will not verify in other processes or after a restart. Set auth.PrivateKey/auth.PublicKey, or auth.Store to share a generated key.",
				a.ephemeral.kid)
		}
		st.signer = a.ephemeral
	}
	if st.signer != nil {
		if err := trust("private key", st.signer.key.Public()); err != nil {
			return nil, err
		}
	}
	for i, k := range set.verifyKeys {
		which := fmt.Sprintf("verify key %d", i+1)
		pub, err := parsePublicKey(which, k)
		if err != nil {
			return nil, err
		}
		if err := trust(which, pub); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// claims are the claims of the tokens.
type claims struct {
	gojwt.RegisteredClaims
	Type     string            `json:"type,omitempty"`
	Scopes   []string          `json:"scopes,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Use      string            `json:"use"`
}

func (c *claims) account() *auth.Account {
	return &auth.Account{
		ID:       c.Subject,
		Type:     c.Type,
		Issuer:   c.Issuer,
		Scopes:   c.Scopes,
		Metadata: c.Metadata,
	}
}

// sign issues a token of use for acc, valid for ttl from now.
func (st *state) sign(acc *auth.Account, use string, now time.Time, ttl time.Duration) (string, *claims, error) {
	if st.signer == nil {
		return "", nil, ErrCannotSign
	}
	c := &claims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    st.issuer,
			Subject:   acc.ID,
			ExpiresAt: gojwt.NewNumericDate(now.Add(ttl)),
			NotBefore: gojwt.NewNumericDate(now),
			IssuedAt:  gojwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Type:     acc.Type,
		Scopes:   acc.Scopes,
		Metadata: acc.Metadata,
		Use:      use,
	}
	if st.audience != "" {
		c.Audience = gojwt.ClaimStrings{st.audience}
	}
	t := gojwt.NewWithClaims(st.signer.method, c)
	t.Header["kid"] = st.signer.kid
	s, err := t.SignedString(st.signer.key)
	if err != nil {
		return "", nil, fmt.Errorf("auth/jwt: sign a token: %w", err)
	}
	if len(s) > st.maxSize {
		return "", nil, fmt.Errorf("auth/jwt: the %s token would be %d bytes, more than the maximum of %d (WithMaxTokenSize): the account's metadata or scopes are too large", use, len(s), st.maxSize)
	}
	return s, c, nil
}

func (a *jwtAuth) Generate(id string, opts ...auth.GenerateOption) (*auth.Account, error) {
	st := a.state.Load()
	if st.err != nil {
		return nil, st.err
	}
	if id == "" {
		return nil, errors.New("auth/jwt: Generate needs an account id")
	}
	o := auth.NewGenerateOptions(opts...)
	acc := &auth.Account{
		ID:       id,
		Type:     o.Type,
		Issuer:   st.issuer,
		Scopes:   o.Scopes,
		Metadata: o.Metadata,
	}
	secret, _, err := st.sign(acc, useSecret, time.Now(), SecretExpiry)
	if err != nil {
		return nil, err
	}
	acc.Secret = secret
	return acc, nil
}

func (a *jwtAuth) Token(opts ...auth.TokenOption) (*auth.Token, error) {
	st := a.state.Load()
	if st.err != nil {
		return nil, st.err
	}
	if st.signer == nil {
		return nil, ErrCannotSign
	}
	o := auth.NewTokenOptions(opts...)
	var c *claims
	var err error
	switch {
	case o.RefreshToken != "":
		c, err = st.parse(o.RefreshToken, useRefresh)
	case o.ID != "" || o.Secret != "":
		c, err = st.parse(o.Secret, useSecret)
		if err == nil && c.Subject != o.ID {
			err = errWrongAccount
		}
	default:
		err = errNoCredentials
	}
	if err != nil {
		return nil, err
	}
	acc := c.account()
	now := time.Now()
	access, ac, err := st.sign(acc, useAccess, now, o.Expiry)
	if err != nil {
		return nil, err
	}
	refresh, _, err := st.sign(acc, useRefresh, now, o.Expiry+RefreshExtra)
	if err != nil {
		return nil, err
	}
	return &auth.Token{
		Created:      ac.IssuedAt.Time,
		Expiry:       ac.ExpiresAt.Time,
		AccessToken:  access,
		RefreshToken: refresh,
	}, nil
}

func (a *jwtAuth) Inspect(token string) (*auth.Account, error) {
	st := a.state.Load()
	if st.err != nil {
		return nil, st.err
	}
	if st.cache != nil {
		if acc, ok := st.cache.get(token, time.Now()); ok {
			return acc, nil
		}
	}
	c, err := st.parse(token, useAccess)
	if err != nil {
		return nil, err
	}
	acc := c.account()
	if st.cache != nil && c.ExpiresAt != nil {
		st.cache.put(token, acc, c.NotBefore, c.ExpiresAt.Time)
	}
	return copyAccount(acc), nil
}

// tokenError is a refused token: it matches auth.ErrInvalidToken and says why, never
// quoting the token.
type tokenError struct{ reason string }

func (e *tokenError) Error() string {
	return "auth/jwt: " + auth.ErrInvalidToken.Error() + ": " + e.reason
}

func (e *tokenError) Unwrap() error { return auth.ErrInvalidToken }

func invalid(reason string) error { return &tokenError{reason: reason} }

var (
	errEmpty         = invalid("empty token")
	errTooLarge      = invalid("token longer than the maximum size")
	errMalformed     = invalid("malformed token")
	errNoKid         = invalid("token has no key id (kid)")
	errUnknownKid    = invalid("token signed by an unknown key")
	errAlg           = invalid("token algorithm does not match its key")
	errCrit          = invalid("token has critical header extensions")
	errTyp           = invalid("token type is not JWT")
	errSignature     = invalid("token signature is invalid")
	errExpired       = invalid("token expired")
	errNotYet        = invalid("token not valid yet")
	errIssuedLater   = invalid("token issued in the future")
	errMissingClaim  = invalid("token lacks a required claim")
	errIssuer        = invalid("token issuer is wrong")
	errAudience      = invalid("token audience is wrong")
	errClaims        = invalid("token claims are invalid")
	errNoSubject     = invalid("token has no subject")
	errWrongAccount  = invalid("secret is not the account's")
	errNoCredentials = invalid("no credentials or refresh token given")
)

var errUse = map[string]error{
	useAccess:  invalid("not an access token"),
	useRefresh: invalid("not a refresh token"),
	useSecret:  invalid("not an account secret"),
}

// parse verifies token and returns its claims, if its use is use.
func (st *state) parse(token, use string) (*claims, error) {
	if token == "" {
		return nil, errEmpty
	}
	if len(token) > st.maxSize {
		return nil, errTooLarge
	}
	header, _, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errMalformed
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(header)
	if err != nil {
		return nil, errMalformed
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil || h == nil {
		return nil, errMalformed
	}
	kid, ok := h["kid"].(string)
	if !ok || kid == "" {
		return nil, errNoKid
	}
	v := st.verifiers[kid]
	if v == nil {
		return nil, errUnknownKid
	}
	if alg, _ := h["alg"].(string); alg != v.alg {
		return nil, errAlg
	}
	if _, ok := h["crit"]; ok {
		return nil, errCrit
	}
	if typ, ok := h["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return nil, errTyp
		}
	}
	c := new(claims)
	_, err = v.parser.ParseWithClaims(token, c, func(t *gojwt.Token) (any, error) {
		// The parser allows only v.alg; check again that the header is the one read above.
		if t.Method.Alg() != v.alg || t.Header["kid"] != kid {
			return nil, errAlg
		}
		return v.key, nil
	})
	if err != nil {
		return nil, classify(err)
	}
	if c.Subject == "" {
		return nil, errNoSubject
	}
	if c.Use != use {
		if e := errUse[use]; e != nil {
			return nil, e
		}
		return nil, errClaims
	}
	return c, nil
}

// classify turns an error of the jwt parser into one of ours, which does not quote it:
// the parser's messages can include fragments of the token.
func classify(err error) error {
	switch {
	case errors.Is(err, errAlg):
		return errAlg
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return errNotYet
	case errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return errIssuedLater
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return errAudience
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return errMissingClaim
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		return errSignature
	}
	return errClaims
}
