package jwt_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
)

// TestG2TokenValidation is reliability battery G2: Inspect refuses every kind of bad
// token with auth.ErrInvalidToken, without panicking and without quoting the token, and
// accepts the good ones. Each case's duration is logged (the battery's budget is 5 ms;
// not asserted, since a loaded CI machine under -race may exceed it).
func TestG2TokenValidation(t *testing.T) {
	const iss, aud = "go.micro.g2", "api"
	priv := edKey()
	pubPEMText := pubPEM(t, priv.Public())
	kid := kidOf(t, priv.Public())
	a := newAuth(t, auth.PrivateKey(privPEM(t, priv)), auth.Issuer(iss), jwt.WithAudience(aud))
	leeway := jwt.DefaultLeeway

	now := time.Now()
	claims := func(edit func(c gojwt.MapClaims)) gojwt.MapClaims {
		c := gojwt.MapClaims{
			"iss": iss, "sub": "alice", "aud": aud,
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Unix(), "iat": now.Unix(),
			"jti": "j1", "use": "access", "type": "user", "scopes": []string{"read"},
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	ed := func(edit func(c gojwt.MapClaims)) string {
		return mint(t, gojwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, claims(edit))
	}
	valid := ed(nil)
	real := issue(t, a, "bob")
	secret, err := a.Generate("carol")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")

	// A byte of the payload segment flipped to another base64url character.
	flipped := []byte(valid)
	i := len(parts[0]) + 1 + len(parts[1])/2
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	// The payload changed and re-encoded, keeping the signature.
	tamperedClaims := claims(func(c gojwt.MapClaims) { c["sub"] = "admin"; c["scopes"] = []string{"admin"} })
	tb, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tb) + "." + parts[2]

	none := mint(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, claims(nil))
	hsPub := mint(t, gojwt.SigningMethodHS256, []byte(pubPEMText), map[string]any{"kid": kid}, claims(nil))
	pemRaw, _ := base64.StdEncoding.DecodeString(pubPEMText)
	hsPEM := mint(t, gojwt.SigningMethodHS256, pemRaw, map[string]any{"kid": kid}, claims(nil))
	rsOnEd := mint(t, gojwt.SigningMethodRS256, rsaKey(), map[string]any{"kid": kid}, claims(nil))
	esOnEd := mint(t, gojwt.SigningMethodES256, ecKey(), map[string]any{"kid": kid}, claims(nil))

	big := strings.Repeat("a", 1<<20)
	bigJWT := parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2]

	cases := []struct {
		name   string
		token  string
		accept bool
	}{
		{"valid", valid, true},
		{"valid issued by Token", real.AccessToken, true},
		{"expired within leeway", ed(func(c gojwt.MapClaims) { c["exp"] = now.Add(-leeway + 5*time.Second).Unix() }), true},
		{"nbf within leeway", ed(func(c gojwt.MapClaims) { c["nbf"] = now.Add(leeway - 5*time.Second).Unix() }), true},
		{"expired beyond leeway", ed(func(c gojwt.MapClaims) { c["exp"] = now.Add(-leeway - time.Second).Unix() }), false},
		{"expired long ago", ed(func(c gojwt.MapClaims) { c["exp"] = now.Add(-24 * time.Hour).Unix() }), false},
		{"nbf beyond leeway", ed(func(c gojwt.MapClaims) { c["nbf"] = now.Add(leeway + 2*time.Second).Unix() }), false},
		{"iat in the future", ed(func(c gojwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), false},
		{"missing exp", ed(func(c gojwt.MapClaims) { delete(c, "exp") }), false},
		{"exp not a number", ed(func(c gojwt.MapClaims) { c["exp"] = "tomorrow" }), false},
		{"signed by another key, same kid", mint(t, gojwt.SigningMethodEdDSA, edKey2(), map[string]any{"kid": kid}, claims(nil)), false},
		{"signed by another key, its kid", mint(t, gojwt.SigningMethodEdDSA, edKey2(), map[string]any{"kid": kidOf(t, edKey2().Public())}, claims(nil)), false},
		{"payload byte flipped", string(flipped), false},
		{"payload tampered", tampered, false},
		{"signature dropped", parts[0] + "." + parts[1] + ".", false},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(real.AccessToken, ".")[2], false},
		{"alg none", none, false},
		{"HS256 with the public key PEM (base64)", hsPub, false},
		{"HS256 with the public key PEM", hsPEM, false},
		{"RS256 header on an Ed25519 kid", rsOnEd, false},
		{"ES256 header on an Ed25519 kid", esOnEd, false},
		{"unknown kid", mint(t, gojwt.SigningMethodEdDSA, priv, map[string]any{"kid": "AAAAAAAAAAAAAAAA"}, claims(nil)), false},
		{"missing kid", mint(t, gojwt.SigningMethodEdDSA, priv, nil, claims(nil)), false},
		{"kid not a string", mint(t, gojwt.SigningMethodEdDSA, priv, map[string]any{"kid": 7}, claims(nil)), false},
		{"crit header", mint(t, gojwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid, "crit": []string{"exp"}}, claims(nil)), false},
		{"wrong issuer", ed(func(c gojwt.MapClaims) { c["iss"] = "evil" }), false},
		{"missing issuer", ed(func(c gojwt.MapClaims) { delete(c, "iss") }), false},
		{"wrong audience", ed(func(c gojwt.MapClaims) { c["aud"] = "other" }), false},
		{"missing audience", ed(func(c gojwt.MapClaims) { delete(c, "aud") }), false},
		{"missing subject", ed(func(c gojwt.MapClaims) { delete(c, "sub") }), false},
		{"missing use", ed(func(c gojwt.MapClaims) { delete(c, "use") }), false},
		{"refresh token as access", real.RefreshToken, false},
		{"secret as access", secret.Secret, false},
		{"truncated", valid[:len(valid)-10], false},
		{"truncated to header", parts[0], false},
		{"truncated to header.payload", parts[0] + "." + parts[1], false},
		{"four segments", valid + ".AAAA", false},
		{"garbage", "garbage-garbage-garbage", false},
		{"garbage segments", "not.a.token", false},
		{"binary garbage", "\x00\xff\xfe\x01.\x80\x81.\x90", false},
		{"empty", "", false},
		{"1 MiB", big, false},
		{"1 MiB JWT-shaped", bigJWT, false},
	}
	var slowest time.Duration
	var slowestName string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var acc *auth.Account
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Inspect panicked: %v", p)
					}
				}()
				start := time.Now()
				acc, err = a.Inspect(tc.token)
				d := time.Since(start)
				t.Logf("%-40s %v", tc.name, d)
				if d > slowest {
					slowest, slowestName = d, tc.name
				}
			}()
			if tc.accept {
				if err != nil || acc == nil || acc.ID == "" || acc.Issuer != iss {
					t.Fatalf("Inspect = %+v, %v; want accepted", acc, err)
				}
				return
			}
			if acc != nil || !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Inspect = %+v, %v; want ErrInvalidToken", acc, err)
			}
			msg := err.Error()
			if len(msg) > 200 {
				t.Fatalf("error is %d bytes long", len(msg))
			}
			if len(tc.token) >= 8 && strings.Contains(msg, tc.token) {
				t.Fatalf("error %q quotes the token", msg)
			}
			for _, seg := range strings.Split(tc.token, ".") {
				if len(seg) >= 8 && strings.Contains(msg, seg) {
					t.Fatalf("error %q quotes a segment of the token", msg)
				}
			}
			t.Logf("%-40s %v", "", err)
		})
	}
	t.Logf("slowest case: %s, %v (budget 5ms, not asserted)", slowestName, slowest)
}

// TestLeewayBounds: the leeway is capped at 30 s, and 0 means none.
func TestLeewayBounds(t *testing.T) {
	priv := edKey()
	kid := kidOf(t, priv.Public())
	tokenExpired := func(ago time.Duration) string {
		now := time.Now()
		return mint(t, gojwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, gojwt.MapClaims{
			"iss": "go.micro", "sub": "s", "use": "access", "exp": now.Add(-ago).Unix(), "iat": now.Add(-time.Hour).Unix(),
		})
	}
	for _, tc := range []struct {
		leeway time.Duration
		ago    time.Duration
		accept bool
	}{
		{time.Hour, 31 * time.Second, false}, // capped to 30 s
		{time.Hour, 20 * time.Second, true},
		{0, 2 * time.Second, false},
		{-time.Minute, 2 * time.Second, false},
		{10 * time.Second, 5 * time.Second, true},
		{10 * time.Second, 12 * time.Second, false},
	} {
		a := newAuth(t, auth.PrivateKey(privPEM(t, priv)), jwt.WithLeeway(tc.leeway))
		_, err := a.Inspect(tokenExpired(tc.ago))
		if tc.accept != (err == nil) || err != nil && !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("leeway %v, expired %v ago: %v, want accepted %v", tc.leeway, tc.ago, err, tc.accept)
		}
	}
}
