package etcd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

// FuzzDecode: values read from etcd are outside input; decoding never panics, and what it
// accepts is a service with one node that has an id, which encodes back to an entry that
// decodes the same.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"name":"greeter","version":"1.0","metadata":{"k":"v"},"endpoints":[{"name":"Greeter.Hello","request":{"name":"Request","type":"Request","values":[{"name":"name","type":"string","values":null}]},"response":null,"metadata":{}}],"nodes":[{"id":"greeter-1","address":"10.0.0.1:8080","metadata":{"protocol":"mucp"}}]}`,
		`{"name":"x","nodes":[{"id":"a"}]}`,
		`{"name":"x","nodes":[]}`,
		`{"name":"x","nodes":[null]}`,
		`{"name":"x","nodes":[{"id":"a"},{"id":"b"}]}`,
		`{"name":"","nodes":[{"id":"a"}]}`,
		`{"name":"x","nodes":[{"id":""}]}`,
		`null`,
		`[]`,
		`{"name":1}`,
		`{"name":"x","nodes":[{"id":"a"}],"endpoints":[null]}`,
		`{"name":"x\u0000y","nodes":[{"id":"a/b"}]}`,
		`{"name":"x","nodes":[{"id":"a"}]}trailing`,
		strings.Repeat(`{"name":"x","endpoints":[{"request":`, 50) + "null",
		"",
		"\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, val []byte) {
		s, err := decode(val)
		if err != nil {
			return
		}
		if s.Name == "" || len(s.Nodes) != 1 || s.Nodes[0] == nil || s.Nodes[0].Id == "" {
			t.Fatalf("accepted %+v", s)
		}
		if check(s, true) != nil {
			return // not valid UTF-8: Register would refuse it too
		}
		_, enc, err := encode(s, s.Nodes[0])
		if err != nil {
			return // too large to store again
		}
		again, err := decode(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		a, _ := json.Marshal(s)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the entry:\n%s\n%s", a, b)
		}
	})
}

func TestTTLSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0: 0, -time.Second: 0, time.Nanosecond: 1, time.Second: 1, 1500 * time.Millisecond: 2,
		2 * time.Second: 2, 90 * time.Second: 90,
	} {
		if got := ttlSeconds(d); got != want {
			t.Errorf("ttlSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	if got := nodeKey("a/b", "c/d"); got != "/micro/registry/a-b/c-d" {
		t.Fatal(got)
	}
	s, err := fromKey("/micro/registry/a-b/c-d")
	if err != nil || s.Name != "a-b" || s.Nodes[0].Id != "c-d" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"/micro/registry/", "/micro/registry/a", "/micro/registry/a/", "/micro/registry//b"} {
		if _, err := fromKey(bad); err == nil {
			t.Errorf("fromKey(%q) accepted", bad)
		}
	}
}

func TestClientConfig(t *testing.T) {
	o := registry.NewOptions(registry.Addrs("10.0.0.1", "10.0.0.2:2380", " ", "https://etcd.example:2379", "[::1]"), registry.Secure(true), Auth("u", "p"))
	cfg := clientConfig(*o)
	if got := strings.Join(cfg.Endpoints, ","); got != "10.0.0.1:2379,10.0.0.2:2380,https://etcd.example:2379,[::1]:2379" {
		t.Errorf("endpoints %s", got)
	}
	if cfg.TLS == nil || cfg.TLS.InsecureSkipVerify {
		t.Errorf("Secure: %+v", cfg.TLS)
	}
	if cfg.Username != "u" || cfg.Password != "p" || cfg.DialTimeout != DefaultTimeout {
		t.Errorf("config %+v", cfg)
	}
	if cfg := clientConfig(*registry.NewOptions()); len(cfg.Endpoints) != 1 || cfg.Endpoints[0] != DefaultAddress || cfg.TLS != nil || cfg.Username != "" {
		t.Errorf("empty options: %+v", cfg)
	}
}
