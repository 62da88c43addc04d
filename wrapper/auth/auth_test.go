package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/codec"
	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/store"
	authwrapper "github.com/seed-b3892490/micro/wrapper/auth"
)

// request is the smallest server.Request: the wrappers read only Service and Endpoint.
type request struct{ service, endpoint string }

func (r request) Service() string           { return r.service }
func (r request) Method() string            { return r.endpoint }
func (r request) Endpoint() string          { return r.endpoint }
func (r request) ContentType() string       { return "application/json" }
func (r request) Header() map[string]string { return nil }
func (r request) Body() interface{}         { return nil }
func (r request) Read() ([]byte, error)     { return nil, nil }
func (r request) Codec() codec.Reader       { return nil }
func (r request) Stream() bool              { return false }

func newJWT(t testing.TB) auth.Auth {
	t.Helper()
	a, err := jwt.NewAuth(auth.Store(store.NewMemoryStore()))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tokenFor(t testing.TB, a auth.Auth, id string, scopes ...string) string {
	t.Helper()
	acc, err := a.Generate(id, auth.WithScopes(scopes...))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Token(auth.WithCredentials(acc.ID, acc.Secret), auth.WithExpiry(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func withHeader(k, v string) context.Context {
	return metadata.NewContext(context.Background(), metadata.Metadata{k: v})
}

func TestTokenFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		md   metadata.Metadata
		want string
		err  error
	}{
		{metadata.Metadata{"Authorization": "Bearer abc"}, "abc", nil},
		{metadata.Metadata{"authorization": "bearer abc "}, "abc", nil},
		{metadata.Metadata{}, "", authwrapper.ErrMissingToken},
		{nil, "", authwrapper.ErrMissingToken},
		{metadata.Metadata{"Authorization": "Basic abc"}, "", authwrapper.ErrInvalidToken},
		{metadata.Metadata{"Authorization": "Bearer "}, "", authwrapper.ErrInvalidToken},
		{metadata.Metadata{"Authorization": "Bear"}, "", authwrapper.ErrInvalidToken},
	} {
		got, err := authwrapper.TokenFromMetadata(tc.md)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%v: %q %v", tc.md, got, err)
		}
	}
	md := authwrapper.TokenToMetadata(nil, "t")
	if md["Authorization"] != "Bearer t" {
		t.Fatalf("%v", md)
	}
}

func TestAuthHandler(t *testing.T) {
	a := newJWT(t)
	rules := auth.NewRules()
	_ = rules.Grant(&auth.Rule{ID: "g", Scope: "greeter", Access: auth.AccessGranted, Resource: &auth.Resource{Type: "service", Name: "greeter", Endpoint: "Greeter.*"}})
	_ = rules.Grant(&auth.Rule{ID: "pub", Scope: auth.ScopePublic, Access: auth.AccessGranted, Resource: &auth.Resource{Type: "service", Name: "greeter", Endpoint: "Greeter.Public"}})
	var ran atomic.Int64
	var lastAcc atomic.Pointer[auth.Account]
	h := authwrapper.AuthHandler(authwrapper.HandlerOptions{Auth: a, Rules: rules, SkipEndpoints: []string{"Greeter.Health"}})(
		func(ctx context.Context, req server.Request, rsp interface{}) error {
			ran.Add(1)
			acc, _ := auth.AccountFromContext(ctx)
			lastAcc.Store(acc)
			return nil
		})
	good := tokenFor(t, a, "alice", "greeter")
	other := tokenFor(t, a, "bob", "other")
	for _, tc := range []struct {
		name, endpoint string
		ctx            context.Context
		code           int32
		account        string
	}{
		{"no token", "Greeter.Hello", context.Background(), 401, ""},
		{"garbage", "Greeter.Hello", withHeader("Authorization", "Bearer garbage"), 401, ""},
		{"not bearer", "Greeter.Hello", withHeader("Authorization", "Basic YTpi"), 401, ""},
		{"scope held", "Greeter.Hello", withHeader("Authorization", "Bearer "+good), 0, "alice"},
		{"scope missing", "Greeter.Hello", withHeader("Authorization", "Bearer "+other), 403, ""},
		{"public by rule, anonymous", "Greeter.Public", context.Background(), 0, ""},
		{"skipped endpoint, anonymous", "Greeter.Health", context.Background(), 0, ""},
		{"skipped endpoint keeps a valid account", "Greeter.Health", withHeader("Authorization", "Bearer "+other), 0, "bob"},
		{"skipped endpoint ignores a bad token", "Greeter.Health", withHeader("Authorization", "Bearer x"), 0, ""},
		{"peer certificate service", "Greeter.Hello", withHeader(server.PeerServiceKey, "billing"), 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ran.Load()
			lastAcc.Store(nil)
			err := h(tc.ctx, request{"greeter", tc.endpoint}, nil)
			if merrors.Code(err) != tc.code && !(tc.code == 0 && err == nil) {
				t.Fatalf("err %v, want code %d", err, tc.code)
			}
			if tc.code != 0 {
				if ran.Load() != before {
					t.Fatal("the handler ran")
				}
				if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), other) {
					t.Fatal("the error carries the token")
				}
				return
			}
			acc := lastAcc.Load()
			if tc.account == "" && acc != nil || tc.account != "" && (acc == nil || acc.ID != tc.account) {
				t.Fatalf("account %+v, want %q", acc, tc.account)
			}
		})
	}
	// A rule for the service scope admits the peer's certificate account.
	_ = rules.Grant(&auth.Rule{ID: "billing", Scope: "service:billing", Access: auth.AccessGranted, Resource: &auth.Resource{Type: "service", Name: "greeter", Endpoint: "*"}})
	if err := h(withHeader(server.PeerServiceKey, "billing"), request{"greeter", "Greeter.Hello"}, nil); err != nil {
		t.Fatalf("certificate account: %v", err)
	}
	if acc := lastAcc.Load(); acc == nil || acc.ID != "billing" || acc.Type != "service" {
		t.Fatalf("certificate account %+v", acc)
	}
	// Without rules any authenticated caller is admitted, anonymous ones are not; without
	// an Auth no token is valid.
	open := authwrapper.AuthHandler(authwrapper.AuthRequired(a, nil))(func(context.Context, server.Request, interface{}) error { return nil })
	if err := open(withHeader("Authorization", "Bearer "+other), request{"greeter", "X.Y"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := open(context.Background(), request{"greeter", "X.Y"}, nil); merrors.Code(err) != 401 {
		t.Fatal(err)
	}
	blind := authwrapper.AuthHandler(authwrapper.HandlerOptions{})(func(context.Context, server.Request, interface{}) error { return nil })
	if err := blind(withHeader("Authorization", "Bearer "+good), request{"greeter", "X.Y"}, nil); merrors.Code(err) != 401 {
		t.Fatal(err)
	}
}

func TestAuthOptional(t *testing.T) {
	a := newJWT(t)
	var acc *auth.Account
	h := authwrapper.AuthOptional(a)(func(ctx context.Context, req server.Request, rsp interface{}) error {
		acc, _ = auth.AccountFromContext(ctx)
		return nil
	})
	if err := h(context.Background(), request{"s", "A.B"}, nil); err != nil || acc != nil {
		t.Fatalf("%v %+v", err, acc)
	}
	if err := h(withHeader("Authorization", "Bearer "+tokenFor(t, a, "carol")), request{"s", "A.B"}, nil); err != nil || acc == nil || acc.ID != "carol" {
		t.Fatalf("%v %+v", err, acc)
	}
}

// BenchmarkAuthHandler is the per-call cost of auth on the server: read the header,
// verify the token, evaluate the rules.
func BenchmarkAuthHandler(b *testing.B) {
	a := newJWT(b)
	rules := auth.NewRules()
	_ = rules.Grant(&auth.Rule{ID: "g", Scope: auth.ScopeAccount, Access: auth.AccessGranted, Resource: &auth.Resource{Type: "service", Name: "*", Endpoint: "*"}})
	h := authwrapper.AuthHandler(authwrapper.AuthRequired(a, rules))(func(context.Context, server.Request, interface{}) error { return nil })
	ctx := withHeader("Authorization", "Bearer "+tokenFor(b, a, "alice"))
	req := request{"greeter", "Greeter.Hello"}
	b.ReportAllocs()
	for b.Loop() {
		if err := h(ctx, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}
