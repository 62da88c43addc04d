package cmd_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/cmd"
)

// TestAuthFlags: --auth=jwt makes a JWT auth with the other flags; without --auth they
// configure the auth in place; a bad key or an unknown name is an error.
func TestAuthFlags(t *testing.T) {
	a := auth.NewAuth()
	if err := cmd.NewCmd().Init(cmd.Args("svc", "--auth", "jwt", "--auth_namespace", "acme", "--auth_id", "svc", "--auth_secret", "s3cret"), cmd.Auth(&a)); err != nil {
		t.Fatal(err)
	}
	if a.String() != "jwt" {
		t.Fatalf("--auth=jwt gave %s", a)
	}
	o := a.Options()
	if o.Namespace != "acme" || o.ID != "svc" || o.Secret != "s3cret" {
		t.Fatalf("options %+v", o)
	}
	acc, err := a.Generate("alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Token(auth.WithCredentials(acc.ID, acc.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Inspect(tok.AccessToken); err != nil || got.ID != "alice" || got.Issuer != "acme" {
		t.Fatalf("inspect: %+v %v", got, err)
	}

	b := auth.NewAuth()
	if err := cmd.NewCmd().Init(cmd.Args("svc", "--auth_id", "x"), cmd.Auth(&b)); err != nil {
		t.Fatal(err)
	}
	if b.String() != "noop" || b.Options().ID != "x" {
		t.Fatalf("in place: %s %+v", b, b.Options())
	}

	c := auth.NewAuth()
	bad := base64.StdEncoding.EncodeToString([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	err = cmd.NewCmd().Init(cmd.Args("svc", "--auth", "jwt", "--auth_private_key", bad), cmd.Auth(&c))
	if err == nil || !strings.Contains(err.Error(), "auth:") || c.String() != "noop" {
		t.Fatalf("bad key: %v (auth %s)", err, c)
	}
	err = cmd.NewCmd().Init(cmd.Args("svc", "--auth", "kerberos"), cmd.Auth(&c))
	if err == nil || !strings.Contains(err.Error(), `unknown auth "kerberos"`) || !strings.Contains(err.Error(), "jwt, noop") {
		t.Fatalf("unknown: %v", err)
	}
}
