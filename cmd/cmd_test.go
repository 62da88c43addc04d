package cmd_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/etcd"
	"github.com/seed-b3892490/micro/registry/nats"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

type parts struct {
	reg  registry.Registry
	sel  selector.Selector
	tr   transport.Transport
	br   broker.Broker
	cli  client.Client
	srv  server.Server
	logr logger.Logger
}

func newParts() *parts {
	p := &parts{reg: registry.NewMemoryRegistry(), br: broker.NewMemoryBroker(), tr: transport.NewHTTPTransport(), logr: logger.NewLogger()}
	p.srv = server.NewServer(server.Registry(p.reg))
	p.cli = client.NewClient(client.Registry(p.reg))
	return p
}

func (p *parts) opts(args ...string) []cmd.Option {
	return []cmd.Option{
		cmd.Args(append([]string{"svc"}, args...)...),
		cmd.Registry(&p.reg), cmd.Selector(&p.sel), cmd.Transport(&p.tr), cmd.Broker(&p.br),
		cmd.Client(&p.cli), cmd.Server(&p.srv), cmd.Logger(&p.logr),
	}
}

func TestFlagsSetServerAndClient(t *testing.T) {
	p := newParts()
	c := cmd.NewCmd()
	err := c.Init(p.opts(
		"--server_name", "greeter", "--server_version", "v2", "--server_id", "id1",
		"--server_address", "127.0.0.1:0", "--server_advertise", "10.1.1.1:80",
		"--server_metadata", "a=1", "--server_metadata", "b=2",
		"--register_ttl", "2", "--register_interval", "500ms",
		"--client_request_timeout", "3s", "--client_retries", "2",
		"--log_level", "debug",
	)...)
	if err != nil {
		t.Fatal(err)
	}
	so := p.srv.Options()
	if so.Name != "greeter" || so.Version != "v2" || so.Id != "id1" || so.Address != "127.0.0.1:0" || so.Advertise != "10.1.1.1:80" {
		t.Fatalf("server options %+v", so)
	}
	if so.Metadata["a"] != "1" || so.Metadata["b"] != "2" {
		t.Fatalf("metadata %v", so.Metadata)
	}
	if so.RegisterTTL != 2*time.Second || so.RegisterInterval != 500*time.Millisecond {
		t.Fatalf("ttl %s interval %s", so.RegisterTTL, so.RegisterInterval)
	}
	co := p.cli.Options().CallOptions
	if co.RequestTimeout != 3*time.Second || co.Retries != 2 {
		t.Fatalf("client %+v", co)
	}
	if p.logr.Options().Level != logger.DebugLevel {
		t.Fatal("log level not applied")
	}
}

func TestEnvironmentAndPrecedence(t *testing.T) {
	t.Setenv("MICRO_SERVER_NAME", "from-env")
	t.Setenv("MICRO_SERVER_VERSION", "env-version")
	p := newParts()
	if err := cmd.NewCmd().Init(p.opts("--server_version", "flag-version")...); err != nil {
		t.Fatal(err)
	}
	if o := p.srv.Options(); o.Name != "from-env" || o.Version != "flag-version" {
		t.Fatalf("name %q version %q", o.Name, o.Version)
	}
}

func TestBackendsByName(t *testing.T) {
	p := newParts()
	old := p.reg
	if err := cmd.NewCmd().Init(p.opts("--registry", "memory", "--selector", "roundrobin", "--transport", "http", "--broker", "memory")...); err != nil {
		t.Fatal(err)
	}
	if p.reg == old || p.srv.Options().Registry != p.reg || p.cli.Options().Registry != p.reg {
		t.Fatal("the new registry was not given to the server and client")
	}
	if p.cli.Options().Selector != p.sel || p.sel == nil {
		t.Fatal("selector")
	}
	err := cmd.NewCmd().Init(p.opts("--registry", "etcd")...)
	if err == nil || !strings.Contains(err.Error(), `unknown registry "etcd"`) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("got %v", err)
	}
	// a backend added to a Cmd's table by name
	extra := registry.NewMemoryRegistry()
	c := cmd.NewCmd(cmd.NewRegistry("mine", func(...registry.Option) registry.Registry { return extra }))
	if err := c.Init(p.opts("--registry", "mine")...); err != nil || p.reg != extra {
		t.Fatalf("%v", err)
	}
}

func TestBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--register_ttl", "soon"},
		{"--server_metadata", "novalue"},
		{"--log_level", "loud"},
		{"--no_such_flag"},
	} {
		p := newParts()
		if err := cmd.NewCmd().Init(p.opts(args...)...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func ExampleNewCmd() {
	srv := server.NewServer()
	c := cmd.NewCmd()
	_ = c.Init(cmd.Args("svc", "--server_name", "greeter"), cmd.Server(&srv))
	fmt.Println(srv.Options().Name)
	// Output: greeter
}

// TestRegistryByName: --registry and MICRO_REGISTRY choose mdns (the default table),
// memory, or etcd and nats once a main adds them, with --registry_address or
// MICRO_REGISTRY_ADDRESS given to the backend. Building a registry connects to nothing.
func TestRegistryByName(t *testing.T) {
	extra := []cmd.Option{cmd.NewRegistry("etcd", etcd.NewRegistry), cmd.NewRegistry("nats", nats.NewRegistry)}
	for _, tc := range []struct {
		name, addr string
		env        bool
	}{
		{"mdns", "", false}, {"memory", "", false},
		{"etcd", "127.0.0.1:23790", false}, {"nats", "nats://127.0.0.1:42220", false},
		{"mdns", "", true}, {"etcd", "10.0.0.1:2379,10.0.0.2:2379", true}, {"nats", "nats://127.0.0.1:42220", true},
	} {
		t.Run(fmt.Sprintf("%s/env=%v", tc.name, tc.env), func(t *testing.T) {
			p := newParts()
			var args []string
			if tc.env {
				t.Setenv("MICRO_REGISTRY", tc.name)
				t.Setenv("MICRO_REGISTRY_ADDRESS", tc.addr)
			} else {
				args = []string{"--registry", tc.name}
				if tc.addr != "" {
					args = append(args, "--registry_address", tc.addr)
				}
			}
			if err := cmd.NewCmd(extra...).Init(p.opts(args...)...); err != nil {
				t.Fatal(err)
			}
			if got := p.reg.String(); got != tc.name {
				t.Fatalf("registry %q, want %q", got, tc.name)
			}
			if want := strings.Join(strings.Split(tc.addr, ","), " "); tc.addr != "" && strings.Join(p.reg.Options().Addrs, " ") != want {
				t.Fatalf("addresses %q, want %q", p.reg.Options().Addrs, want)
			}
			if p.srv.Options().Registry != p.reg || p.cli.Options().Registry != p.reg {
				t.Fatal("the server and client were not given the registry")
			}
		})
	}
	if _, ok := cmd.DefaultRegistries["mdns"]; !ok {
		t.Fatal("mdns is not in the default table")
	}
	if _, ok := cmd.DefaultRegistries["etcd"]; ok {
		t.Fatal("the default table links a cluster backend")
	}
}

// TestEnvironmentDoesNotLeak: a value one Cmd read from the environment is not the
// default of the next Cmd.
func TestEnvironmentDoesNotLeak(t *testing.T) {
	t.Setenv("MICRO_REGISTRY", "memory") // restores the variables when the test ends
	t.Setenv("MICRO_SERVER_NAME", "leaky")
	if err := cmd.NewCmd().Init(newParts().opts()...); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv("MICRO_REGISTRY")
	os.Unsetenv("MICRO_SERVER_NAME")
	p := newParts()
	old := p.reg
	if err := cmd.NewCmd().Init(p.opts()...); err != nil {
		t.Fatal(err)
	}
	if p.reg != old || p.srv.Options().Name == "leaky" {
		t.Fatalf("the environment of an earlier Cmd leaked: registry %s, name %q", p.reg, p.srv.Options().Name)
	}
}
