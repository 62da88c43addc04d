package jwt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth"
)

// FuzzInspect: Inspect never panics, refuses everything but the one valid token with
// ErrInvalidToken, and never quotes its input.
func FuzzInspect(f *testing.F) {
	a := newAuth(f, auth.PrivateKey(privPEM(f, edKey())))
	acc, err := a.Generate("fuzz", auth.WithScopes("a", "b"), auth.WithMetadata(map[string]string{"k": "v"}))
	if err != nil {
		f.Fatal(err)
	}
	// An access token that stays valid for the whole fuzzing run.
	tok, err := a.Token(auth.WithCredentials("fuzz", acc.Secret), auth.WithExpiry(24*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	valid := tok.AccessToken
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid, "", ".", "..", "...", "a.b.c", valid + "x", valid[:len(valid)-1],
		parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2],
		"eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 9000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		acc, err := a.Inspect(s)
		if s == valid {
			if err != nil || acc == nil || acc.ID != "fuzz" {
				t.Fatalf("valid token refused: %v", err)
			}
			return
		}
		if err == nil || acc != nil {
			t.Fatalf("accepted a token that is not the valid one: %q", s)
		}
		if !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("error %v does not match ErrInvalidToken", err)
		}
		if len(s) >= 16 && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes the input")
		}
	})
}
