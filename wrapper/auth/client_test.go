package auth

import (
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/store"
)

// TestServiceTokenRenewedBeforeExpiry: the service's token is reused while fresh and
// renewed (through its refresh token) once less than a quarter of its life is left.
func TestServiceTokenRenewedBeforeExpiry(t *testing.T) {
	a, err := jwt.NewAuth(auth.Store(store.NewMemoryStore()))
	if err != nil {
		t.Fatal(err)
	}
	src := &tokenSource{a: a, service: "teller"}
	first := src.token()
	if first == "" {
		t.Fatal("no service token")
	}
	acc, err := a.Inspect(first)
	if err != nil || acc.ID != "teller" || acc.Type != "service" || !acc.HasScope("service:teller") {
		t.Fatalf("service account %+v %v", acc, err)
	}
	if again := src.token(); again != first {
		t.Fatal("a fresh token was replaced")
	}
	// Age the token: a quarter of its life left means renewal.
	src.mu.Lock()
	life := src.tok.Expiry.Sub(src.tok.Created)
	src.tok.Created = src.tok.Created.Add(-life * 4 / 5)
	src.tok.Expiry = src.tok.Expiry.Add(-life * 4 / 5)
	src.mu.Unlock()
	renewed := src.token()
	if renewed == "" || renewed == first {
		t.Fatal("the ageing token was not renewed")
	}
	if _, err := a.Inspect(renewed); err != nil {
		t.Fatalf("renewed token: %v", err)
	}
	if !fresh(&auth.Token{AccessToken: "x"}, time.Now()) {
		t.Fatal("a token without expiry is fresh")
	}
	if fresh(&auth.Token{AccessToken: "x", Created: time.Now().Add(-time.Minute), Expiry: time.Now().Add(2 * time.Second)}, time.Now()) {
		t.Fatal("a token 2 s from expiry is not fresh")
	}
	if (&tokenSource{}).token() != "" {
		t.Fatal("no auth, no token")
	}
}
