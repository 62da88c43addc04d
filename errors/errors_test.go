package errors_test

import (
	"context"
	stderrors "errors"
	"fmt"
	"testing"

	"github.com/seed-b3892490/micro/errors"
)

func TestConstructors(t *testing.T) {
	cases := []struct {
		err  error
		code int32
		text string
	}{
		{errors.BadRequest("svc", "bad %s", "x"), 400, "Bad Request"},
		{errors.Unauthorized("svc", "u"), 401, "Unauthorized"},
		{errors.Forbidden("svc", "f"), 403, "Forbidden"},
		{errors.NotFound("svc", "n"), 404, "Not Found"},
		{errors.MethodNotAllowed("svc", "m"), 405, "Method Not Allowed"},
		{errors.Timeout("svc", "t"), 408, "Request Timeout"},
		{errors.Conflict("svc", "c"), 409, "Conflict"},
		{errors.RequestEntityTooLarge("svc", "l"), 413, "Request Entity Too Large"},
		{errors.UnsupportedMediaType("svc", "u"), 415, "Unsupported Media Type"},
		{errors.InternalServerError("svc", "i"), 500, "Internal Server Error"},
		{errors.NotImplemented("svc", "n"), 501, "Not Implemented"},
		{errors.BadGateway("svc", "b"), 502, "Bad Gateway"},
		{errors.ServiceUnavailable("svc", "s"), 503, "Service Unavailable"},
		{errors.GatewayTimeout("svc", "g"), 504, "Gateway Timeout"},
		{errors.New("svc", "x", 499), 499, "Client Closed Request"},
	}
	for _, c := range cases {
		e, ok := errors.As(c.err)
		if !ok || e.Code != c.code || e.Status != c.text || e.Id != "svc" {
			t.Errorf("%v: got %+v", c.err, e)
		}
		if e.HTTPStatus() != int(c.code) {
			t.Errorf("%d: HTTPStatus %d", c.code, e.HTTPStatus())
		}
	}
	if d := errors.BadRequest("svc", "100%").(*errors.Error).Detail; d != "100%" {
		t.Fatalf("a %% without arguments was formatted: %q", d)
	}
	if s := (&errors.Error{Code: 0}).HTTPStatus(); s != 500 {
		t.Fatalf("code 0 maps to %d", s)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	e := errors.NotFound("svc", "no \"such\" thing").(*errors.Error)
	if got := e.Error(); got != `{"id":"svc","code":404,"detail":"no \"such\" thing","status":"Not Found"}` {
		t.Fatalf("JSON %s", got)
	}
	p := errors.Parse(e.Error())
	if *p != *e {
		t.Fatalf("parsed %+v", p)
	}
	plain := errors.Parse("boom")
	if plain.Code != 0 || plain.Detail != "boom" {
		t.Fatalf("plain text parsed as %+v", plain)
	}
}

func TestIsAsAndWrap(t *testing.T) {
	err := fmt.Errorf("calling: %w", errors.NotFound("svc", "gone"))
	if !stderrors.Is(err, errors.NotFound("", "")) {
		t.Fatal("any 404 should match")
	}
	if stderrors.Is(err, errors.NotFound("other", "")) || stderrors.Is(err, errors.BadRequest("", "")) {
		t.Fatal("matched a different error")
	}
	w := errors.Wrap(context.Canceled, "client", 499, "")
	if !stderrors.Is(w, context.Canceled) || w.Detail != "context canceled" {
		t.Fatalf("wrap: %+v", w)
	}
	if errors.Code(w) != 499 || errors.Code(stderrors.New("x")) != 0 {
		t.Fatal("Code")
	}
	if errors.FromError(nil) != nil || errors.FromError(stderrors.New(`{"code":400}`)).Code != 400 || errors.FromError(err).Code != 404 {
		t.Fatal("FromError")
	}
	if !errors.Equal(errors.NotFound("a", "x"), errors.NotFound("b", "y")) || errors.Equal(errors.NotFound("a", "x"), stderrors.New("x")) {
		t.Fatal("Equal")
	}
}

func TestMultiError(t *testing.T) {
	m := errors.NewMultiError()
	if m.HasErrors() {
		t.Fatal("empty")
	}
	m.Append(errors.NotFound("a", "x").(*errors.Error))
	if !m.HasErrors() || m.Error() != `{"errors":[{"id":"a","code":404,"detail":"x","status":"Not Found"}]}` {
		t.Fatal(m.Error())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"id":"a","code":404}`, `{"code":"x"}`, `{`, ``, `null`, `[]`, `{"code":99999999999}`, `boom`, `{"detail":"\u0000"}`, `{"id":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := errors.Parse(s)
		if e == nil {
			t.Fatal("nil")
		}
		again := errors.Parse(e.Error())
		if again.Code != e.Code || again.Id != e.Id {
			t.Fatalf("round trip %+v -> %+v", e, again)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s := errors.NotFound("svc", "gone").Error()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = errors.Parse(s)
	}
}

func ExampleNotFound() {
	err := fmt.Errorf("lookup: %w", errors.NotFound("users", "no user %d", 42))
	var e *errors.Error
	if stderrors.As(err, &e) {
		fmt.Println(e.Code, e.Detail)
	}
	fmt.Println(stderrors.Is(err, errors.NotFound("", "")))
	// Output:
	// 404 no user 42
	// true
}
