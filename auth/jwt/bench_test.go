package jwt_test

import (
	"crypto"
	"testing"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
)

func benchKeys() []struct {
	name string
	key  crypto.Signer
} {
	return []struct {
		name string
		key  crypto.Signer
	}{{"EdDSA", edKey()}, {"ES256", ecKey()}, {"RS256", rsaKey()}}
}

// BenchmarkInspectUncached is the cost of a token's first check: signature and claims.
func BenchmarkInspectUncached(b *testing.B) {
	for _, k := range benchKeys() {
		b.Run(k.name, func(b *testing.B) {
			a := newAuth(b, auth.PrivateKey(privPEM(b, k.key)))
			tok := issue(b, a, "bench").AccessToken
			b.ReportAllocs()
			for b.Loop() {
				if err := jwt.InspectUncached(a, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInspect is the cost of a check of a token seen before (the verified-token
// cache), what a caller that reuses its token pays on every call.
func BenchmarkInspect(b *testing.B) {
	for _, k := range benchKeys() {
		b.Run(k.name, func(b *testing.B) {
			a := newAuth(b, auth.PrivateKey(privPEM(b, k.key)))
			tok := issue(b, a, "bench").AccessToken
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := a.Inspect(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkInspectParallel(b *testing.B) {
	a := newAuth(b, auth.PrivateKey(privPEM(b, edKey())))
	tok := issue(b, a, "bench").AccessToken
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Inspect(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkInspectInvalid is the cost of refusing a token of an unknown key: no
// signature check.
func BenchmarkInspectInvalid(b *testing.B) {
	a := newAuth(b, auth.PrivateKey(privPEM(b, edKey())))
	tok := issue(b, newAuth(b, auth.PrivateKey(privPEM(b, edKey2()))), "bench").AccessToken
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Inspect(tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkToken exchanges credentials for an access and a refresh token: one
// verification and two signatures.
func BenchmarkToken(b *testing.B) {
	for _, k := range benchKeys() {
		b.Run(k.name, func(b *testing.B) {
			a := newAuth(b, auth.PrivateKey(privPEM(b, k.key)))
			acc, err := a.Generate("bench", auth.WithScopes("read"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := a.Token(auth.WithCredentials("bench", acc.Secret)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
