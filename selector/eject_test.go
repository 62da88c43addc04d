package selector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

func ids(services []*registry.Service) string {
	var out []string
	for _, s := range services {
		for _, n := range s.Nodes {
			out = append(out, n.Id)
		}
	}
	return strings.Join(out, ",")
}

func TestEjection(t *testing.T) {
	now := time.Unix(1000, 0)
	h := health{now: func() time.Time { return now }}
	svcs := []*registry.Service{{Name: "x", Nodes: []*registry.Node{{Id: "a"}, {Id: "b"}, {Id: "c"}}}}
	a, b := svcs[0].Nodes[0], svcs[0].Nodes[1]
	refused := &transport.NotSentError{Err: errors.New("connection refused")}
	timeout := merrors.Timeout("x", "slow")

	if got := h.filter("x", svcs); ids(got) != "a,b,c" {
		t.Fatal(ids(got))
	}
	// refused: out at once
	h.mark("x", a, refused)
	if got := h.filter("x", svcs); ids(got) != "b,c" {
		t.Fatalf("after a refusal: %s", ids(got))
	}
	if ids(svcs) != "a,b,c" {
		t.Fatal("filter changed its input")
	}
	// timeouts: out after three in a row; an answer in between resets the count
	h.mark("x", b, timeout)
	h.mark("x", b, timeout)
	h.mark("x", b, merrors.NotFound("x", "alive"))
	h.mark("x", b, timeout)
	h.mark("x", b, context.DeadlineExceeded)
	if got := h.filter("x", svcs); ids(got) != "b,c" {
		t.Fatalf("two timeouts ejected b: %s", ids(got))
	}
	h.mark("x", b, timeout)
	if got := h.filter("x", svcs); ids(got) != "c" {
		t.Fatalf("after three timeouts: %s", ids(got))
	}
	// back after the back-off, on probation: one failure ejects for twice as long
	now = now.Add(ejectFirst + time.Millisecond)
	if got := h.filter("x", svcs); ids(got) != "a,b,c" {
		t.Fatalf("after the back-off: %s", ids(got))
	}
	h.mark("x", a, refused)
	now = now.Add(ejectFirst + time.Millisecond)
	if got := h.filter("x", svcs); ids(got) != "b,c" {
		t.Fatalf("a second ejection should last 2 s: %s", ids(got))
	}
	now = now.Add(ejectFirst)
	// a success on probation clears the record
	h.mark("x", a, nil)
	h.mark("x", a, timeout)
	if got := h.filter("x", svcs); ids(got) != "a,b,c" {
		t.Fatalf("after a success: %s", ids(got))
	}
	// every node out: fail open
	for _, n := range svcs[0].Nodes {
		h.mark("x", n, refused)
	}
	if got := h.filter("x", svcs); ids(got) != "a,b,c" {
		t.Fatalf("all ejected: %s", ids(got))
	}
	h.reset("x")
	h.mark("x", a, refused)
	if got := h.filter("y", svcs); ids(got) != "a,b,c" {
		t.Fatal("ejection leaked to another service")
	}
}
