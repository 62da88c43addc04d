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

	if got := h.filter("x", svcs, nil); ids(got) != "a,b,c" {
		t.Fatal(ids(got))
	}
	// refused: out at once
	h.mark("x", a, refused)
	if got := h.filter("x", svcs, nil); ids(got) != "b,c" {
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
	if got := h.filter("x", svcs, nil); ids(got) != "b,c" {
		t.Fatalf("two timeouts ejected b: %s", ids(got))
	}
	h.mark("x", b, timeout)
	if got := h.filter("x", svcs, nil); ids(got) != "c" {
		t.Fatalf("after three timeouts: %s", ids(got))
	}
	// back after the back-off, on probation: one failure ejects for twice as long
	now = now.Add(ejectFirst + time.Millisecond)
	if got := h.filter("x", svcs, nil); ids(got) != "a,b,c" {
		t.Fatalf("after the back-off: %s", ids(got))
	}
	h.mark("x", a, refused)
	now = now.Add(ejectFirst + time.Millisecond)
	if got := h.filter("x", svcs, nil); ids(got) != "b,c" {
		t.Fatalf("a second ejection should last 2 s: %s", ids(got))
	}
	now = now.Add(ejectFirst)
	// a success on probation clears the record
	h.mark("x", a, nil)
	h.mark("x", a, timeout)
	if got := h.filter("x", svcs, nil); ids(got) != "a,b,c" {
		t.Fatalf("after a success: %s", ids(got))
	}
	// a cancelled call says nothing: the count of timeouts stands
	h.reset("x")
	h.mark("x", b, timeout)
	h.mark("x", b, timeout)
	h.mark("x", b, context.Canceled)
	h.mark("x", b, merrors.New("x", "caller went away", merrors.StatusClientClosedRequest))
	h.mark("x", b, timeout)
	if got := h.filter("x", svcs, nil); strings.Contains(ids(got), "b") {
		t.Fatalf("cancellations between timeouts reset the count: %s", ids(got))
	}
	h.reset("x")
	// every node out: fail open
	for _, n := range svcs[0].Nodes {
		h.mark("x", n, refused)
	}
	if got := h.filter("x", svcs, nil); ids(got) != "a,b,c" {
		t.Fatalf("all ejected: %s", ids(got))
	}
	h.reset("x")
	h.mark("x", a, refused)
	if got := h.filter("y", svcs, nil); ids(got) != "a,b,c" {
		t.Fatal("ejection leaked to another service")
	}
}

func TestEjectionPolicy(t *testing.T) {
	now := time.Unix(1000, 0)
	h := health{now: func() time.Time { return now }, after: 5, first: 3 * time.Second, most: 4 * time.Second}
	svcs := []*registry.Service{{Name: "x", Nodes: []*registry.Node{{Id: "a"}, {Id: "b"}}}}
	a := svcs[0].Nodes[0]
	timeout := merrors.Timeout("x", "slow")
	for i := 0; i < 4; i++ {
		h.mark("x", a, timeout)
	}
	if got := h.filter("x", svcs, nil); ids(got) != "a,b" {
		t.Fatalf("four timeouts ejected a with EjectAfter 5: %s", ids(got))
	}
	h.mark("x", a, timeout)
	if got := h.filter("x", svcs, nil); ids(got) != "b" {
		t.Fatalf("five timeouts: %s", ids(got))
	}
	now = now.Add(2 * time.Second)
	if got := h.filter("x", svcs, nil); ids(got) != "b" {
		t.Fatalf("back before EjectFor (3 s): %s", ids(got))
	}
	now = now.Add(time.Second + time.Millisecond)
	h.mark("x", a, timeout) // on probation: out again, for min(2 × 3 s, 4 s)
	now = now.Add(4*time.Second - time.Millisecond)
	if got := h.filter("x", svcs, nil); ids(got) != "b" {
		t.Fatalf("second ejection shorter than EjectMax: %s", ids(got))
	}
	now = now.Add(2 * time.Millisecond)
	if got := h.filter("x", svcs, nil); ids(got) != "a,b" {
		t.Fatalf("second ejection longer than EjectMax: %s", ids(got))
	}

	off := health{now: func() time.Time { return now }, after: -1}
	off.mark("x", a, &transport.NotSentError{Err: errors.New("refused")})
	if got := off.filter("x", svcs, nil); ids(got) != "a,b" {
		t.Fatalf("ejection off, yet a refusal ejected: %s", ids(got))
	}
}

// A node on probation takes one attempt at a time: while one is in flight it is left
// out of selection, and so it is for probeWindow after a Select was offered it (before
// that Select's attempt can have begun).
func TestProbationOneAttempt(t *testing.T) {
	now := time.Unix(1000, 0)
	h := health{now: func() time.Time { return now }}
	svcs := []*registry.Service{{Name: "x", Nodes: []*registry.Node{{Id: "a"}, {Id: "b"}}}}
	a := svcs[0].Nodes[0]
	inflight := map[string]bool{}
	busy := func(id string) bool { return inflight[id] }
	h.mark("x", a, &transport.NotSentError{Err: errors.New("refused")})
	now = now.Add(ejectFirst + time.Millisecond)
	if got := h.filter("x", svcs, busy); ids(got) != "a,b" {
		t.Fatalf("on probation, idle: %s", ids(got))
	}
	if got := h.filter("x", svcs, busy); ids(got) != "b" {
		t.Fatalf("on probation, just offered to another Select: %s", ids(got))
	}
	now = now.Add(probeWindow)
	inflight["a"] = true
	if got := h.filter("x", svcs, busy); ids(got) != "b" {
		t.Fatalf("on probation with an attempt in flight: %s", ids(got))
	}
	inflight["a"], inflight["b"] = false, true
	if got := h.filter("x", svcs, busy); ids(got) != "a,b" {
		t.Fatalf("on probation, idle again, or a healthy busy node left out: %s", ids(got))
	}
	inflight["a"] = true
	h.mark("x", a, nil) // the probe succeeded: a is healthy, busy or not
	for i := 0; i < 2; i++ {
		if got := h.filter("x", svcs, busy); ids(got) != "a,b" {
			t.Fatalf("after the probe succeeded: %s", ids(got))
		}
	}
}

// Timeouts of a node that keeps answering other calls do not eject it: it is loaded,
// not gone. Once it has answered nothing for aliveWindow, they do.
func TestTimeoutsOfAnsweringNodeDoNotEject(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	nodes := []*registry.Node{{Id: "a", Address: "127.0.0.1:1"}, {Id: "b", Address: "127.0.0.1:2"}}
	if err := reg.Register(&registry.Service{Name: "x", Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	s := NewSelector(Registry(reg)).(*registrySelector)
	defer s.Close()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	s.now, s.base, s.health.now = clock, now, clock
	selectIDs := func() string {
		t.Helper()
		next, err := s.Select("x")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i := 0; i < 64; i++ {
			n, _ := next()
			seen[n.Id] = true
		}
		out := []string{}
		for _, id := range []string{"a", "b"} {
			if seen[id] {
				out = append(out, id)
			}
		}
		return strings.Join(out, ",")
	}
	if got := selectIDs(); got != "a,b" {
		t.Fatal(got)
	}
	timeout := merrors.Timeout("x", "per-try timeout")
	s.Track("x", nodes[0])(nil) // a answers a call
	for i := 0; i < 3; i++ {
		s.Mark("x", nodes[0], timeout)
	}
	if got := selectIDs(); got != "a,b" {
		t.Fatalf("three timeouts of a node that answered just now ejected it: %s", got)
	}
	now = now.Add(aliveWindow + time.Millisecond)
	for i := 0; i < 3; i++ {
		s.Mark("x", nodes[0], timeout)
	}
	if got := selectIDs(); got != "b" {
		t.Fatalf("three timeouts of a node silent for %v: %s", aliveWindow, got)
	}
}
