package jwt_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/logger"
)

// Keys are generated once per test binary: RSA generation is slow under -race.
var (
	edKey  = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
	edKey2 = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
	ecKey  = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func b64PEM(typ string, der []byte) string {
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// privPEM returns key as base64-encoded PKCS#8 PEM.
func privPEM(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return b64PEM("PRIVATE KEY", der)
}

// pubPEM returns key as base64-encoded PKIX PEM.
func pubPEM(t testing.TB, key crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return b64PEM("PUBLIC KEY", der)
}

// kidOf computes the kid the package documents, independently of it.
func kidOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16]
}

// quiet is a logger that writes to a buffer, so tests do not print warnings.
func quiet() (logger.Logger, *syncBuffer) {
	var buf syncBuffer
	return logger.NewLogger(logger.WithOutput(&buf)), &buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newAuth(t testing.TB, opts ...auth.Option) auth.Auth {
	t.Helper()
	l, _ := quiet()
	a, err := jwt.NewAuth(append([]auth.Option{auth.WithLogger(l)}, opts...)...)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	return a
}

// issue returns an access token of a new account of a.
func issue(t testing.TB, a auth.Auth, id string) *auth.Token {
	t.Helper()
	acc, err := a.Generate(id, auth.WithScopes("read"))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	tok, err := a.Token(auth.WithCredentials(id, acc.Secret))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

// mint signs claims with key and method, with header fields hdr (kid among them);
// a nil value in hdr removes the field.
func mint(t testing.TB, method gojwt.SigningMethod, key any, hdr map[string]any, claims gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(method, claims)
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// header decodes the header of a token.
func header(t testing.TB, token string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// payload decodes the claims of a token, without verifying it.
func payload(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
