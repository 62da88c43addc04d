package nats

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/registry"
)

func TestConfig(t *testing.T) {
	userTLS := &tls.Config{ServerName: "user"}
	regTLS := &tls.Config{ServerName: "registry"}
	nopts := nats.GetDefaultOptions()
	nopts.Servers = []string{"nats://from-nats-options:4222"}
	nopts.TLSConfig = userTLS
	nopts.NoEcho = true
	for _, tc := range []struct {
		name    string
		opts    []registry.Option
		servers string
		secure  bool
		tls     *tls.Config
		timeout time.Duration
	}{
		{"defaults", nil, nats.DefaultURL, false, nil, DefaultTimeout},
		{"addrs without scheme", []registry.Option{registry.Addrs("a:1", " b:2,tls://c:3", "")}, "nats://a:1,nats://b:2,tls://c:3", false, nil, DefaultTimeout},
		{"nats options", []registry.Option{NatsOptions(nopts)}, "nats://from-nats-options:4222", false, userTLS, DefaultTimeout},
		{"registry options win", []registry.Option{NatsOptions(nopts), registry.Addrs("x:1"), registry.TLSConfig(regTLS), registry.Timeout(time.Second)}, "nats://x:1", true, regTLS, time.Second},
		{"secure", []registry.Option{registry.Secure(true)}, nats.DefaultURL, true, nil, DefaultTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newConfig(*registry.NewOptions(tc.opts...))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.nopts.Servers, ","); got != tc.servers || c.nopts.Url != "" {
				t.Errorf("servers %q url %q, want %q", got, c.nopts.Url, tc.servers)
			}
			if c.nopts.Secure != tc.secure || c.nopts.TLSConfig != tc.tls {
				t.Errorf("secure %v tls %p, want %v %p", c.nopts.Secure, c.nopts.TLSConfig, tc.secure, tc.tls)
			}
			if c.timeout != tc.timeout || c.nopts.NoEcho {
				t.Errorf("timeout %s noecho %v", c.timeout, c.nopts.NoEcho)
			}
			if c.queryTopic != DefaultQueryTopic || c.watchTopic != DefaultWatchTopic || c.registerAction != DefaultRegisterAction || c.quorum != DefaultQuorum {
				t.Errorf("defaults %+v", c)
			}
		})
	}
	// Option order does not matter.
	a, errA := newConfig(*registry.NewOptions(Quorum(2), registry.Addrs("x:1"), QueryTopic("q.t")))
	b, errB := newConfig(*registry.NewOptions(QueryTopic("q.t"), registry.Addrs("x:1"), Quorum(2)))
	if errA != nil || errB != nil || a.quorum != b.quorum || a.queryTopic != b.queryTopic || strings.Join(a.nopts.Servers, ",") != strings.Join(b.nopts.Servers, ",") {
		t.Errorf("order matters: %+v %+v", a, b)
	}
	if _, err := newConfig(*registry.NewOptions(Quorum(-1))); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("invalid quorum: %v", err)
	}
}
