package jwt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/store"
)

func TestRoundTrip(t *testing.T) {
	a := newAuth(t, auth.PrivateKey(privPEM(t, edKey())), auth.Issuer("go.micro.test"))
	if a.String() != "jwt" {
		t.Fatalf("String() = %q", a.String())
	}
	md := map[string]string{"team": "blue", "tier": "gold"}
	acc, err := a.Generate("alice", auth.WithScopes("read", "write"), auth.WithMetadata(md), auth.WithType("user"))
	if err != nil {
		t.Fatal(err)
	}
	if acc.ID != "alice" || acc.Issuer != "go.micro.test" || acc.Secret == "" || acc.Type != "user" {
		t.Fatalf("Generate = %+v", acc)
	}
	sc := payload(t, acc.Secret)
	if sc["use"] != "secret" {
		t.Fatalf("secret use = %v", sc["use"])
	}
	if exp := time.Unix(int64(sc["exp"].(float64)), 0); time.Until(exp) < jwt.SecretExpiry-time.Minute || time.Until(exp) > jwt.SecretExpiry {
		t.Fatalf("secret expires at %v, want in a year", exp)
	}
	// The secret is not an access token.
	if _, err := a.Inspect(acc.Secret); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Inspect(secret) = %v, want ErrInvalidToken", err)
	}

	before := time.Now().Truncate(time.Second)
	tok, err := a.Token(auth.WithCredentials("alice", acc.Secret), auth.WithExpiry(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Expired() {
		t.Fatalf("Token = %+v", tok)
	}
	if tok.Created.Before(before) || tok.Created.After(time.Now()) {
		t.Fatalf("Created = %v", tok.Created)
	}
	if d := tok.Expiry.Sub(tok.Created); d != 10*time.Minute {
		t.Fatalf("Expiry - Created = %v, want 10m", d)
	}
	if d := int64(payload(t, tok.RefreshToken)["exp"].(float64)) - tok.Created.Unix(); d != int64((10*time.Minute+jwt.RefreshExtra)/time.Second) {
		t.Fatalf("refresh token lives %ds, want access + 1h", d)
	}

	got, err := a.Inspect(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.Account{ID: "alice", Type: "user", Issuer: "go.micro.test", Scopes: []string{"read", "write"}, Metadata: md}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Inspect = %+v, want %+v", got, want)
	}

	// Refresh.
	tok2, err := a.Token(auth.WithToken(tok.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	if d := tok2.Expiry.Sub(tok2.Created); d != time.Minute {
		t.Fatalf("default expiry = %v, want 1m", d)
	}
	if got, err := a.Inspect(tok2.AccessToken); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Inspect(refreshed) = %+v, %v", got, err)
	}
	if tok2.AccessToken == tok.AccessToken {
		t.Fatal("refreshed access token is the same token")
	}

	bob, err := a.Generate("bob")
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]auth.TokenOption{
		"wrong secret":            auth.WithCredentials("alice", "not-a-secret-at-all"),
		"other account's secret":  auth.WithCredentials("alice", bob.Secret),
		"empty secret":            auth.WithCredentials("alice", ""),
		"access token as secret":  auth.WithCredentials("alice", tok.AccessToken),
		"refresh token as secret": auth.WithCredentials("alice", tok.RefreshToken),
		"access token as refresh": auth.WithToken(tok.AccessToken),
		"secret as refresh":       auth.WithToken(acc.Secret),
		"garbage refresh":         auth.WithToken("garbage.garbage.garbage"),
		"nothing":                 auth.WithExpiry(time.Minute),
	} {
		if tok, err := a.Token(opt); !errors.Is(err, auth.ErrInvalidToken) || tok != nil {
			t.Errorf("%s: Token = %v, %v; want ErrInvalidToken", name, tok, err)
		}
	}
	if _, err := a.Generate(""); err == nil {
		t.Error("Generate(\"\") succeeded")
	}
}

func TestIssuerDefaultsToNamespace(t *testing.T) {
	a := newAuth(t)
	if iss := a.Options().Issuer; iss != "go.micro" {
		t.Fatalf("Issuer = %q", iss)
	}
	tok := issue(t, a, "svc")
	if c := payload(t, tok.AccessToken); c["iss"] != "go.micro" || c["sub"] != "svc" || c["jti"] == "" || c["nbf"] == nil || c["iat"] == nil {
		t.Fatalf("claims = %v", c)
	}
	// An auth of another issuer, with the same key, refuses the token.
	key := privPEM(t, edKey())
	a1 := newAuth(t, auth.PrivateKey(key), auth.Issuer("one"))
	a2 := newAuth(t, auth.PrivateKey(key), auth.Issuer("two"))
	if _, err := a2.Inspect(issue(t, a1, "svc").AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Inspect of another issuer's token = %v", err)
	}
}

func TestKeyTypes(t *testing.T) {
	ecDER, err := x509.MarshalECPrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, alg string
		priv      string
		pub       crypto.PublicKey
	}{
		{"Ed25519 PKCS8", "EdDSA", privPEM(t, edKey()), edKey().Public()},
		{"P-256 PKCS8", "ES256", privPEM(t, ecKey()), ecKey().Public()},
		{"P-256 SEC1", "ES256", b64PEM("EC PRIVATE KEY", ecDER), ecKey().Public()},
		{"P-256 SEC1 with EC PARAMETERS", "ES256", base64.StdEncoding.EncodeToString(append(
			pemBytes("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}),
			pemBytes("EC PRIVATE KEY", ecDER)...)), ecKey().Public()},
		{"RSA2048 PKCS8", "RS256", privPEM(t, rsaKey()), rsaKey().Public()},
		{"RSA2048 PKCS1", "RS256", b64PEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey())), rsaKey().Public()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, auth.PrivateKey(tc.priv), auth.PublicKey(pubPEM(t, tc.pub)))
			tok := issue(t, a, "svc")
			h := header(t, tok.AccessToken)
			if h["alg"] != tc.alg || h["kid"] != kidOf(t, tc.pub) {
				t.Fatalf("header = %v, want alg %s kid %s", h, tc.alg, kidOf(t, tc.pub))
			}
			if acc, err := a.Inspect(tok.AccessToken); err != nil || acc.ID != "svc" {
				t.Fatalf("Inspect = %v, %v", acc, err)
			}
			// A verify-only auth with the public key accepts the token, and cannot sign.
			pubs := []string{pubPEM(t, tc.pub)}
			if k, ok := tc.pub.(*rsa.PublicKey); ok {
				pubs = append(pubs, b64PEM("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(k)))
			}
			for _, pub := range pubs {
				v := newAuth(t, auth.PublicKey(pub))
				if acc, err := v.Inspect(tok.AccessToken); err != nil || acc.ID != "svc" || !acc.HasScope("read") {
					t.Fatalf("verify-only Inspect = %v, %v", acc, err)
				}
				if _, err := v.Generate("x"); !errors.Is(err, jwt.ErrCannotSign) {
					t.Fatalf("verify-only Generate error = %v", err)
				}
				if _, err := v.Token(auth.WithToken(tok.RefreshToken)); !errors.Is(err, jwt.ErrCannotSign) {
					t.Fatalf("verify-only Token error = %v", err)
				}
			}
		})
	}
}

func pemBytes(typ string, der []byte) []byte {
	return []byte("-----BEGIN " + typ + "-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END " + typ + "-----\n")
}

func TestBadKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	garbageDER := []byte("0123456789abcdefghijklmnopqrstuvwxyz-secret-key-bytes")
	cases := []struct {
		name string
		opt  auth.Option
		want string // in the error
	}{
		{"private not base64", auth.PrivateKey("!!! this is not base64 !!!"), "base64"},
		{"private raw PEM", auth.PrivateKey(string(pemBytes("PRIVATE KEY", garbageDER))), "base64"},
		{"private no PEM", auth.PrivateKey(base64.StdEncoding.EncodeToString(garbageDER)), "PEM"},
		{"private bad DER", auth.PrivateKey(b64PEM("PRIVATE KEY", garbageDER)), "PKCS#8"},
		{"private bad SEC1", auth.PrivateKey(b64PEM("EC PRIVATE KEY", garbageDER)), "EC PRIVATE KEY"},
		{"private bad PKCS1", auth.PrivateKey(b64PEM("RSA PRIVATE KEY", garbageDER)), "RSA PRIVATE KEY"},
		{"private certificate", auth.PrivateKey(b64PEM("CERTIFICATE", garbageDER)), "unsupported PEM block type"},
		{"private encrypted", auth.PrivateKey(b64PEM("ENCRYPTED PRIVATE KEY", garbageDER)), "encrypted"},
		{"private is public", auth.PrivateKey(pubPEM(t, edKey().Public())), "public key"},
		{"RSA 1024", auth.PrivateKey(privPEM(t, small)), "1024 bits"},
		{"RSA 1024 PKCS1", auth.PrivateKey(b64PEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small))), "1024 bits"},
		{"P-384", auth.PrivateKey(privPEM(t, p384)), "P-384"},
		{"public not base64", auth.PublicKey("%%%%"), "base64"},
		{"public bad DER", auth.PublicKey(b64PEM("PUBLIC KEY", garbageDER)), "PUBLIC KEY"},
		{"public RSA 1024", auth.PublicKey(pubPEM(t, small.Public())), "1024 bits"},
		{"public P-384", auth.PublicKey(pubPEM(t, p384.Public())), "P-384"},
		{"public is private", auth.PublicKey(privPEM(t, edKey())), "private key"},
		{"verify key bad", jwt.WithVerifyKeys(pubPEM(t, edKey().Public()), b64PEM("PUBLIC KEY", garbageDER)), "verify key 2"},
		{"verify key RSA 1024", jwt.WithVerifyKeys(pubPEM(t, small.Public())), "1024 bits"},
	}
	secrets := []string{base64.StdEncoding.EncodeToString(garbageDER), string(garbageDER[:16]), privPEM(t, small)[40:80]}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := quiet()
			a, err := jwt.NewAuth(auth.WithLogger(l), tc.opt)
			if err == nil || a != nil {
				t.Fatalf("NewAuth = %v, %v; want an error", a, err)
			}
			if !errors.Is(err, jwt.ErrInvalidKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrInvalidKey mentioning %q", err, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains key material", err)
				}
			}
			t.Logf("%v", err)
		})
	}

	// A public key that is not the private key's.
	_, err = jwt.NewAuth(auth.PrivateKey(privPEM(t, edKey())), auth.PublicKey(pubPEM(t, edKey2().Public())))
	if !errors.Is(err, jwt.ErrInvalidKey) || !strings.Contains(err.Error(), "not the public key") {
		t.Fatalf("mismatched pair: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	key1, key2 := privPEM(t, edKey()), privPEM(t, ecKey())
	pub1 := pubPEM(t, edKey().Public())
	a := newAuth(t, auth.PrivateKey(key1))
	b := newAuth(t, auth.PrivateKey(key2), jwt.WithVerifyKeys(pub1))
	c := newAuth(t, auth.PrivateKey(key2))

	tokA := issue(t, a, "old").AccessToken
	if acc, err := b.Inspect(tokA); err != nil || acc.ID != "old" {
		t.Fatalf("B inspects A's token: %v, %v", acc, err)
	}
	if _, err := c.Inspect(tokA); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("C (without pub1) inspects A's token: %v", err)
	}
	// B signs with key2 only.
	tokB := issue(t, b, "new").AccessToken
	if h := header(t, tokB); h["kid"] != kidOf(t, ecKey().Public()) || h["alg"] != "ES256" {
		t.Fatalf("B's header = %v", h)
	}
	if _, err := a.Inspect(tokB); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("A inspects B's token: %v", err)
	}
	if _, err := c.Inspect(tokB); err != nil {
		t.Fatalf("C inspects B's token: %v", err)
	}
	// A refresh token of the old key is exchanged by B for tokens of the new key.
	acc, err := a.Generate("old")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.Token(auth.WithCredentials("old", acc.Secret))
	if err != nil {
		t.Fatalf("B exchanges A's secret: %v", err)
	}
	if _, err := c.Inspect(tok.AccessToken); err != nil {
		t.Fatalf("C inspects the token B issued for A's secret: %v", err)
	}
	// Dropping pub1 from the list ends its tokens.
	b.Init(jwt.WithVerifyKeys())
	if _, err := b.Inspect(tokA); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("B, pub1 removed, inspects A's token: %v", err)
	}
}

func TestStoreKeys(t *testing.T) {
	s := store.NewMemoryStore()
	defer s.Close()
	a := newAuth(t, auth.Store(s))
	b := newAuth(t, auth.Store(s))
	tok := issue(t, a, "svc")
	if acc, err := b.Inspect(tok.AccessToken); err != nil || acc.ID != "svc" {
		t.Fatalf("B inspects A's token: %v, %v", acc, err)
	}
	if _, err := b.Token(auth.WithToken(tok.RefreshToken)); err != nil {
		t.Fatalf("B refreshes A's token: %v", err)
	}
	recs, err := s.Read(jwt.StoreKey)
	if err != nil || len(recs) != 1 {
		t.Fatalf("store record: %v, %v", recs, err)
	}
	if alg := header(t, tok.AccessToken)["alg"]; alg != "EdDSA" {
		t.Fatalf("generated key alg = %v", alg)
	}
	// An auth of another store has another key.
	s2 := store.NewMemoryStore()
	defer s2.Close()
	if _, err := newAuth(t, auth.Store(s2)).Inspect(tok.AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("auth of another store inspects the token: %v", err)
	}
	// A damaged record is an error, not silently replaced.
	if err := s2.Write(&store.Record{Key: jwt.StoreKey, Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.NewAuth(auth.Store(s2)); !errors.Is(err, jwt.ErrInvalidKey) {
		t.Fatalf("damaged record: %v", err)
	}
	// An explicit key wins over the store.
	k := newAuth(t, auth.Store(s), auth.PrivateKey(privPEM(t, edKey2())))
	if _, err := k.Inspect(tok.AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("auth with its own key inspects the store key's token: %v", err)
	}
}

// TestStoreKeysRace: auths starting at the same instant on one empty store agree on one
// generated key (the store creates the record once); through a store that is not a
// store.Creator they still get a key each that reads back.
func TestStoreKeysRace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) store.Store
		agree bool
	}{
		{"memory", func(*testing.T) store.Store { return store.NewMemoryStore() }, true},
		{"file", func(t *testing.T) store.Store { return store.NewFileStore(store.DirOption(t.TempDir())) }, true},
		{"not a creator", func(*testing.T) store.Store { return writeOnly{store.NewMemoryStore()} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.store(t)
			defer s.Close()
			const n = 16
			auths := make([]auth.Auth, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					auths[i], errs[i] = jwt.NewAuth(auth.Store(s))
				}()
			}
			close(start)
			wg.Wait()
			toks := make([]string, n)
			for i, a := range auths {
				if errs[i] != nil {
					t.Fatalf("NewAuth %d: %v", i, errs[i])
				}
				toks[i] = issue(t, a, fmt.Sprintf("svc%d", i)).AccessToken
			}
			if !tc.agree {
				return
			}
			for i, a := range auths {
				for j, tok := range toks {
					if _, err := a.Inspect(tok); err != nil {
						t.Fatalf("auth %d inspects the token of auth %d: %v (they started together on one store)", i, j, err)
					}
				}
			}
		})
	}
}

// writeOnly is a store that is not a store.Creator.
type writeOnly struct{ store.Store }

func TestEphemeralKey(t *testing.T) {
	var buf syncBuffer
	l := logger.NewLogger(logger.WithOutput(&buf))
	// Go Micro's example: an issuer and a nil store.
	a, err := jwt.NewAuth(auth.Issuer("go-micro"), auth.Store(nil), auth.WithLogger(l))
	if err != nil {
		t.Fatalf("NewAuth without key or store: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "ephemeral") || !strings.Contains(out, "other processes") {
		t.Fatalf("warning not logged: %q", out)
	}
	tok := issue(t, a, "svc")
	if _, err := a.Inspect(tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	// Init keeps the ephemeral key (and does not warn again).
	a.Init(auth.Issuer("go-micro"))
	if _, err := a.Inspect(tok.AccessToken); err != nil {
		t.Fatalf("after Init: %v", err)
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	// Another ephemeral auth has another key.
	if _, err := newAuth(t, auth.Issuer("go-micro")).Inspect(tok.AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("other ephemeral auth inspects the token: %v", err)
	}
}

func TestInit(t *testing.T) {
	l, buf := quiet()
	a, err := jwt.NewAuth(auth.WithLogger(l), auth.PrivateKey(privPEM(t, edKey())))
	if err != nil {
		t.Fatal(err)
	}
	tok1 := issue(t, a, "svc").AccessToken
	a.Init(auth.PrivateKey(privPEM(t, edKey2())))
	if _, err := a.Inspect(tok1); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("token of the old key after Init: %v", err)
	}
	tok2 := issue(t, a, "svc").AccessToken
	if kid := header(t, tok2)["kid"]; kid != kidOf(t, edKey2().Public()) {
		t.Fatalf("kid after Init = %v", kid)
	}
	if a.Options().PrivateKey != privPEM(t, edKey2()) {
		t.Fatal("Options do not show the new key")
	}
	// A bad key: every call fails, closed, until a good key is set.
	a.Init(auth.PrivateKey("bad"))
	if _, err := a.Inspect(tok2); !errors.Is(err, jwt.ErrInvalidKey) {
		t.Fatalf("Inspect after a bad Init: %v", err)
	}
	if _, err := a.Generate("x"); !errors.Is(err, jwt.ErrInvalidKey) {
		t.Fatalf("Generate after a bad Init: %v", err)
	}
	if _, err := a.Token(auth.WithCredentials("x", "y")); !errors.Is(err, jwt.ErrInvalidKey) {
		t.Fatalf("Token after a bad Init: %v", err)
	}
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("bad Init not logged: %q", buf.String())
	}
	a.Init(auth.PrivateKey(privPEM(t, edKey2())))
	if _, err := a.Inspect(tok2); err != nil {
		t.Fatalf("after a good Init: %v", err)
	}
	// Init of the issuer: tokens of the old issuer are refused.
	a.Init(auth.Issuer("elsewhere"))
	if _, err := a.Inspect(tok2); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("old issuer's token after Init: %v", err)
	}
}

func TestMaxTokenSize(t *testing.T) {
	a := newAuth(t, auth.PrivateKey(privPEM(t, edKey())), jwt.WithMaxTokenSize(600))
	if _, err := a.Generate("svc", auth.WithMetadata(map[string]string{"big": strings.Repeat("x", 600)})); err == nil || !strings.Contains(err.Error(), "WithMaxTokenSize") {
		t.Fatalf("Generate of an oversized token: %v", err)
	}
	// A token another auth issued that is larger than the limit is refused.
	big := newAuth(t, auth.PrivateKey(privPEM(t, edKey())))
	acc, err := big.Generate("svc", auth.WithMetadata(map[string]string{"big": strings.Repeat("x", 400)}))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := big.Token(auth.WithCredentials("svc", acc.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Inspect(tok.AccessToken); !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "maximum size") {
		t.Fatalf("Inspect of a %d-byte token: %v", len(tok.AccessToken), err)
	}
	if _, err := big.Inspect(tok.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	a := newAuth(t, auth.PrivateKey(privPEM(t, edKey())), jwt.WithVerifyKeys(pubPEM(t, edKey2().Public())))
	acc, err := a.Generate("svc")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if g == 0 && i%10 == 0 {
					// Rotate between the two keys, both trusted throughout.
					k, v := edKey(), edKey2()
					if i%20 == 0 {
						k, v = v, k
					}
					a.Init(auth.PrivateKey(privPEM(t, k)), jwt.WithVerifyKeys(pubPEM(t, v.Public())))
					continue
				}
				tok, err := a.Token(auth.WithCredentials("svc", acc.Secret))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := a.Inspect(tok.AccessToken); err != nil {
					t.Error(err)
					return
				}
				_ = a.Options()
			}
		}()
	}
	wg.Wait()
}

// TestInspectCacheKeepsTokensHonest: a cached token is still refused once it expires,
// and a changed account returned by Inspect does not change the cached one.
func TestInspectCacheKeepsTokensHonest(t *testing.T) {
	a := newAuth(t, jwt.WithLeeway(time.Nanosecond))
	acc, err := a.Generate("dave", auth.WithScopes("s1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Token(auth.WithCredentials(acc.ID, acc.Secret), auth.WithExpiry(1100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Inspect(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	got.Scopes[0] = "changed"
	again, err := a.Inspect(tok.AccessToken)
	if err != nil || again.Scopes[0] != "s1" {
		t.Fatalf("cached account changed: %+v %v", again, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, err := a.Inspect(tok.AccessToken)
		return errors.Is(err, auth.ErrInvalidToken)
	}, "the cached token is refused after it expired")
}
