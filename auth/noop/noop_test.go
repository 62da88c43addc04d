package noop_test

import (
	"errors"
	"testing"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/noop"
)

func TestNoop(t *testing.T) {
	a := noop.NewAuth(auth.Issuer("dev"))
	if a.String() != "noop" {
		t.Fatalf("String() = %q", a.String())
	}
	if got := a.Options().Issuer; got != "dev" {
		t.Fatalf("Issuer = %q", got)
	}
	acc, err := a.Generate("svc", auth.WithScopes("admin"), auth.WithType("service"))
	if err != nil || acc.ID != "svc" || acc.Type != "service" || !acc.HasScope("admin") || acc.Issuer != "dev" {
		t.Fatalf("Generate = %+v, %v", acc, err)
	}
	if _, err := a.Inspect(""); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Inspect(\"\") error = %v", err)
	}
	if acc, err := a.Inspect("anything"); err != nil || acc == nil {
		t.Fatalf("Inspect(anything) = %v, %v", acc, err)
	}
	tok, err := a.Token(auth.WithCredentials("svc", "x"))
	if err != nil || tok == nil || tok.Expired() {
		t.Fatalf("Token = %+v, %v", tok, err)
	}
}

func TestRules(t *testing.T) {
	r := noop.NewRules()
	res := &auth.Resource{Type: "service", Name: "greeter", Endpoint: "Greeter.Hello"}
	if err := r.Verify(nil, res); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("empty rules: Verify = %v, want ErrForbidden", err)
	}
	if err := r.Grant(&auth.Rule{ID: "pub", Scope: auth.ScopePublic, Resource: &auth.Resource{Type: "*", Name: "*", Endpoint: "*"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(nil, res); err != nil {
		t.Fatalf("public rule: Verify = %v", err)
	}
}
