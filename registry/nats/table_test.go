package nats

import (
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

func ann(t *testing.T, json string) announcement {
	t.Helper()
	a, err := decodeAnnouncement([]byte(json))
	if err != nil {
		t.Fatalf("decode %s: %v", json, err)
	}
	return a
}

func describe(rs []*registry.Result) string {
	var out []string
	for _, r := range rs {
		for _, n := range r.Service.Nodes {
			out = append(out, r.Action+" "+r.Service.Name+"/"+r.Service.Version+"/"+n.Id)
		}
	}
	return strings.Join(out, ",")
}

// The watcher's table: what each message and expiry reports.
func TestTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const (
		a      = `{"Action":"create","Service":{"name":"s","version":"1","nodes":[{"id":"a","address":"x:1","ttl":2000}]}}`
		aMoved = `{"Action":"create","Service":{"name":"s","version":"1","nodes":[{"id":"a","address":"x:2","ttl":2000}]}}`
		aMeta  = `{"Action":"create","Service":{"name":"s","version":"1","metadata":{"k":"v"},"nodes":[{"id":"a","address":"x:2","ttl":2000}]}}`
		b      = `{"Action":"put","Service":{"name":"s","version":"1","nodes":[{"id":"b","address":"x:3"}]}}`
		other  = `{"Action":"create","Service":{"name":"other","version":"1","nodes":[{"id":"o","ttl":500}]}}`
		delA   = `{"Action":"delete","Service":{"name":"s","version":"1","nodes":[{"id":"a"}]}}`
		delZ   = `{"Action":"delete","Service":{"name":"s","version":"1","nodes":[{"id":"z"}]}}`
	)
	type step struct {
		at   time.Duration // after t0
		msg  string        // announcement; empty: run expire
		want string
	}
	for _, tc := range []struct {
		name    string
		service string
		steps   []step
	}{
		{"create, renew, update, delete", "", []step{
			{0, a, "create s/1/a"},
			{500 * time.Millisecond, a, ""},
			{time.Second, aMoved, "update s/1/a"},
			{1100 * time.Millisecond, aMeta, "update s/1/a"},
			{1200 * time.Millisecond, aMeta, ""},
			{1300 * time.Millisecond, delA, "delete s/1/a"},
			{1400 * time.Millisecond, delZ, "delete s/1/z"},
			{10 * time.Second, "", ""},
		}},
		{"expiry after the last renewal only", "", []step{
			{0, a, "create s/1/a"},
			{0, b, "create s/1/b"},
			{1500 * time.Millisecond, a, ""},
			{2 * time.Second, "", ""},
			{3499 * time.Millisecond, "", ""},
			{3500 * time.Millisecond, "", "delete s/1/a"},
			{time.Hour, "", ""}, // b has no TTL
		}},
		{"filter", "other", []step{
			{0, a, ""},
			{0, other, "create other/1/o"},
			{500 * time.Millisecond, "", "delete other/1/o"},
			{time.Second, delA, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(tc.service)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				var got []*registry.Result
				if s.msg == "" {
					got = tb.expire(now)
				} else {
					got = tb.announce(ann(t, s.msg), now)
				}
				if d := describe(got); d != s.want {
					t.Fatalf("step %d: got %q, want %q", i, d, s.want)
				}
			}
		})
	}
}

// Seeded nodes are reported only when they change or expire.
func TestTableSeed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tb := newTable("")
	s, ttls, err := decodeAnswer([]byte(`{"name":"s","version":"1","nodes":[{"id":"a","address":"x:1","ttl":1000},{"id":"b","address":"x:1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tb.seed(s, ttls, t0)
	if got := describe(tb.announce(ann(t, `{"Action":"create","Service":{"name":"s","version":"1","nodes":[{"id":"b","address":"x:1"}]}}`), t0)); got != "" {
		t.Fatalf("renewal of a seeded node: %q", got)
	}
	if !tb.next.Equal(t0.Add(time.Second)) {
		t.Fatalf("next expiry %v", tb.next)
	}
	if got := describe(tb.expire(t0.Add(time.Second))); got != "delete s/1/a" {
		t.Fatalf("expiry of a seeded node: %q", got)
	}
	if !tb.next.IsZero() {
		t.Fatalf("next expiry %v, want none", tb.next)
	}
}

func TestEncodeAnswerSplits(t *testing.T) {
	w := &wireService{Name: "s", Version: "1"}
	for i := 0; i < 10; i++ {
		w.Nodes = append(w.Nodes, &wireNode{Id: strings.Repeat("n", 100) + string(rune('a'+i))})
	}
	parts := encodeAnswer(w, 400)
	seen := map[string]bool{}
	for _, p := range parts {
		if len(p) > 400 {
			t.Fatalf("part of %d bytes", len(p))
		}
		s, _, err := decodeAnswer(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range s.Nodes {
			seen[n.Id] = true
		}
	}
	if len(seen) != 10 {
		t.Fatalf("%d nodes in %d parts", len(seen), len(parts))
	}
	if got := encodeAnswer(w, 10); len(got) != 0 {
		t.Fatalf("nodes that cannot fit were sent: %d parts", len(got))
	}
}
