package nats

import (
	"testing"
	"time"
)

// FuzzDecodeMessage feeds a network message to every decoder, and what they accept to a
// watcher's table: nothing may panic, and accepted messages keep the decoders' promises.
func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range []string{
		`{"Action":"create","Service":{"name":"s","version":"1","metadata":{"k":"v"},"endpoints":[{"name":"G.H","request":{"name":"Req","type":"Req","values":[{"name":"n","type":"string"}]},"metadata":{"stream":"false"}}],"nodes":[{"id":"a","address":"127.0.0.1:1","metadata":{"k":"v"},"ttl":2000}]}}`,
		`{"Action":"delete","Service":{"name":"s","version":"1","nodes":[{"id":"a"}]}}`,
		`{"Action":"get","Service":{"name":"s"}}`,
		`{"Action":"list","Service":null}`,
		`{"name":"s","version":"1","nodes":[{"id":"a","ttl":1},{"id":"b"}]}`,
		`{"Service":{"name":"s","nodes":[null,{"id":"a","ttl":-5}]},"Action":"create"}`,
		`{"Action":"create","Service":{"name":"s","nodes":[{"id":"a","ttl":9223372036854775807}]}}`,
		`{"Action":"create","Service":{"name":"","nodes":[{"id":"a"}]}}`,
		`{"Action":"create","Service":{"name":"s","endpoints":[null],"nodes":null}}`,
		`{"Action":"","Service":{"name":"s"}}`,
		`{"Action":"create","Service":{"name":"s","nodes":[{"id":"a","ttl":1.5}]}}`,
		`[1,2,3]`,
		`null`,
		``,
		`{"Action":"create","Service":{"name":"s","nodes":[{"id":"a","metadata":{"k":1}}]}}`,
		"\xff\xfe{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		now := time.Unix(1000, 0)
		tb := newTable("")
		if a, err := decodeAnnouncement(data); err == nil {
			if a.action == "" || a.service == nil || a.service.Name == "" || len(a.ttls) != len(a.service.Nodes) {
				t.Fatalf("accepted announcement %+v", a)
			}
			for i, n := range a.service.Nodes {
				if n == nil || a.ttls[i] < 0 || a.ttls[i] > maxTTL {
					t.Fatalf("node %d: %v ttl %s", i, n, a.ttls[i])
				}
			}
			for _, e := range a.service.Endpoints {
				if e == nil {
					t.Fatal("nil endpoint accepted")
				}
			}
			tb.announce(a, now)
			tb.announce(a, now.Add(time.Second))
		}
		if q, err := decodeQuery(data); err == nil && !q.list && q.name == "" {
			t.Fatalf("accepted query %+v", q)
		}
		if s, ttls, err := decodeAnswer(data); err == nil {
			if s.Name == "" || len(ttls) != len(s.Nodes) {
				t.Fatalf("accepted answer %+v", s)
			}
			tb.seed(s, ttls, now)
		}
		tb.expire(now.Add(maxTTL + time.Hour))
		for k, n := range tb.nodes {
			if !n.expires.IsZero() {
				t.Fatalf("node %v left after every TTL passed", k)
			}
		}
		if !tb.next.IsZero() {
			t.Fatalf("next expiry %v with no node expiring", tb.next)
		}
	})
}
