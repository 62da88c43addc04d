package cmd

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/transport"
)

// The backend tables consulted by name. Each Cmd copies them when it is made, so adding
// to them affects the Cmds made afterwards.
var (
	// DefaultRegistries are the registries --registry can name: mdns (the default) and
	// memory. A main that wants the cluster registries adds them:
	//
	//	cmd.DefaultRegistries["etcd"] = etcd.NewRegistry
	//	cmd.DefaultRegistries["nats"] = nats.NewRegistry
	DefaultRegistries = map[string]func(...registry.Option) registry.Registry{
		"mdns":   registry.NewMDNSRegistry,
		"memory": registry.NewMemoryRegistry,
	}
	// DefaultSelectors are the selectors --selector can name.
	DefaultSelectors = map[string]func(...selector.Option) selector.Selector{
		"random": selector.NewSelector,
		"roundrobin": func(opts ...selector.Option) selector.Selector {
			return selector.NewSelector(append([]selector.Option{selector.SetStrategy(selector.RoundRobin)}, opts...)...)
		},
		"leastloaded": func(opts ...selector.Option) selector.Selector {
			return selector.NewSelector(append([]selector.Option{selector.SetStrategy(selector.LeastLoaded)}, opts...)...)
		},
	}
	// DefaultTransports are the transports --transport can name.
	DefaultTransports = map[string]func(...transport.Option) transport.Transport{
		"http": func(opts ...transport.Option) transport.Transport { return transport.NewHTTPTransport(opts...) },
	}
	// DefaultBrokers are the brokers --broker can name.
	DefaultBrokers = map[string]func(...broker.Option) broker.Broker{
		"http":   broker.NewHttpBroker,
		"memory": broker.NewMemoryBroker,
	}
	// DefaultClients are the clients --client can name.
	DefaultClients = map[string]func(...client.Option) client.Client{
		"mucp": client.NewClient,
	}
	// DefaultServers are the servers --server can name.
	DefaultServers = map[string]func(...server.Option) server.Server{
		"mucp": server.NewServer,
	}
	// DefaultAuths are the auth implementations --auth can name: noop (the default,
	// enforcing nothing) and jwt (signed tokens; enforcement on).
	DefaultAuths = map[string]func(...auth.Option) auth.Auth{
		"noop": auth.NewAuth,
		"jwt":  newJWTAuth,
	}
	// DefaultConfigs are the config implementations --config can name: default (the
	// merging, hot-reloading config.NewConfig).
	DefaultConfigs = map[string]func(...config.Option) (config.Config, error){
		"default": config.NewConfig,
	}
	// DefaultStores are the stores --store can name: file (the default) and memory. A
	// main that wants a database store adds it:
	//
	//	cmd.DefaultStores["postgres"] = postgres.NewStore
	DefaultStores = map[string]func(...store.Option) store.Store{
		"file":   store.NewFileStore,
		"memory": store.NewMemoryStore,
	}
	// DefaultFlags are the flags every Cmd knows.
	DefaultFlags = []cli.Flag{
		&cli.StringFlag{Name: "client", EnvVars: []string{"MICRO_CLIENT"}, Usage: "client to use (mucp)"},
		&cli.GenericFlag{Name: "client_request_timeout", EnvVars: []string{"MICRO_CLIENT_REQUEST_TIMEOUT"}, Value: new(durationValue), Usage: "time a call may take, e.g. 5s"},
		&cli.IntFlag{Name: "client_retries", EnvVars: []string{"MICRO_CLIENT_RETRIES"}, Value: client.DefaultRetries, Usage: "times a call may be retried"},
		&cli.IntFlag{Name: "client_pool_size", EnvVars: []string{"MICRO_CLIENT_POOL_SIZE"}, Usage: "kept for compatibility"},
		&cli.GenericFlag{Name: "client_pool_ttl", EnvVars: []string{"MICRO_CLIENT_POOL_TTL"}, Value: new(durationValue), Usage: "kept for compatibility"},
		&cli.GenericFlag{Name: "register_ttl", EnvVars: []string{"MICRO_REGISTER_TTL"}, Value: new(durationValue), Usage: "registration TTL: seconds or a duration (default 90s)"},
		&cli.GenericFlag{Name: "register_interval", EnvVars: []string{"MICRO_REGISTER_INTERVAL"}, Value: new(durationValue), Usage: "registration renewal interval: seconds or a duration (default 30s)"},
		&cli.StringFlag{Name: "server", EnvVars: []string{"MICRO_SERVER"}, Usage: "server to use (mucp)"},
		&cli.StringFlag{Name: "server_name", EnvVars: []string{"MICRO_SERVER_NAME"}, Usage: "service name"},
		&cli.StringFlag{Name: "server_version", EnvVars: []string{"MICRO_SERVER_VERSION"}, Usage: "service version"},
		&cli.StringFlag{Name: "server_id", EnvVars: []string{"MICRO_SERVER_ID"}, Usage: "server id (default random)"},
		&cli.StringFlag{Name: "server_address", EnvVars: []string{"MICRO_SERVER_ADDRESS"}, Usage: "address to listen on, host:port"},
		&cli.StringFlag{Name: "server_advertise", EnvVars: []string{"MICRO_SERVER_ADVERTISE"}, Usage: "address to register, host:port"},
		&cli.StringSliceFlag{Name: "server_metadata", EnvVars: []string{"MICRO_SERVER_METADATA"}, Usage: "node metadata as key=value, repeatable"},
		&cli.StringFlag{Name: "broker", EnvVars: []string{"MICRO_BROKER"}, Usage: "broker to use (http, memory; default http)"},
		&cli.StringFlag{Name: "broker_address", EnvVars: []string{"MICRO_BROKER_ADDRESS"}, Usage: "comma-separated broker addresses"},
		&cli.StringFlag{Name: "registry", EnvVars: []string{"MICRO_REGISTRY"}, Usage: "registry to use: mdns (default), memory, or etcd and nats where the program links them"},
		&cli.StringFlag{Name: "registry_address", EnvVars: []string{"MICRO_REGISTRY_ADDRESS"}, Usage: "comma-separated registry addresses (etcd: 127.0.0.1:2379, nats: nats://127.0.0.1:4222)"},
		&cli.StringFlag{Name: "selector", EnvVars: []string{"MICRO_SELECTOR"}, Usage: "selector to use (random, roundrobin, leastloaded)"},
		&cli.StringFlag{Name: "transport", EnvVars: []string{"MICRO_TRANSPORT"}, Usage: "transport to use (http)"},
		&cli.StringFlag{Name: "transport_address", EnvVars: []string{"MICRO_TRANSPORT_ADDRESS"}, Usage: "comma-separated transport addresses"},
		&cli.StringFlag{Name: "auth", EnvVars: []string{"MICRO_AUTH"}, Usage: "auth to use: noop (default, enforces nothing) or jwt (every call needs a token)"},
		&cli.StringFlag{Name: "auth_id", EnvVars: []string{"MICRO_AUTH_ID"}, Usage: "the service's account ID"},
		&cli.StringFlag{Name: "auth_secret", EnvVars: []string{"MICRO_AUTH_SECRET"}, Usage: "the service's account secret"},
		&cli.StringFlag{Name: "auth_namespace", EnvVars: []string{"MICRO_AUTH_NAMESPACE"}, Value: auth.DefaultNamespace, Usage: "the namespace of accounts and issuer of tokens"},
		&cli.StringFlag{Name: "auth_public_key", EnvVars: []string{"MICRO_AUTH_PUBLIC_KEY"}, Usage: "base64 PEM public key that verifies tokens"},
		&cli.StringFlag{Name: "auth_private_key", EnvVars: []string{"MICRO_AUTH_PRIVATE_KEY"}, Usage: "base64 PEM private key that signs tokens"},
		&cli.StringFlag{Name: "config", EnvVars: []string{"MICRO_CONFIG"}, Usage: "config implementation to use: default, or others the program adds to cmd.DefaultConfigs"},
		&cli.StringFlag{Name: "store", EnvVars: []string{"MICRO_STORE"}, Usage: "store to use: file (default), memory, or others where the program links them"},
		&cli.StringFlag{Name: "store_address", EnvVars: []string{"MICRO_STORE_ADDRESS"}, Usage: "comma-separated addresses of the store's servers"},
		&cli.StringFlag{Name: "store_database", EnvVars: []string{"MICRO_STORE_DATABASE"}, Usage: "the store's database (default micro)"},
		&cli.StringFlag{Name: "store_table", EnvVars: []string{"MICRO_STORE_TABLE"}, Usage: "the store's table (default: the service name)"},
		&cli.StringFlag{Name: "log_level", EnvVars: []string{"MICRO_LOG_LEVEL"}, Usage: "trace, debug, info, warn, error or fatal"},
	}
	// DefaultCmd is the Cmd of the package-level functions.
	DefaultCmd = NewCmd()
)

// durationValue is a flag value of seconds ("90") or a Go duration ("1m30s").
type durationValue struct{ d time.Duration }

func (v *durationValue) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		v.d = time.Duration(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration", s)
	}
	v.d = d
	return nil
}

func (v *durationValue) String() string {
	if v == nil || v.d == 0 {
		return ""
	}
	return v.d.String()
}

type cmd struct {
	opts Options
	app  *cli.App
}

// NewCmd returns a Cmd with the default flags and backend tables.
func NewCmd(opts ...Option) Cmd {
	o := Options{
		Context:    context.Background(),
		Registries: maps.Clone(DefaultRegistries),
		Selectors:  maps.Clone(DefaultSelectors),
		Transports: maps.Clone(DefaultTransports),
		Brokers:    maps.Clone(DefaultBrokers),
		Clients:    maps.Clone(DefaultClients),
		Servers:    maps.Clone(DefaultServers),
		Stores:     maps.Clone(DefaultStores),
		Configs:    maps.Clone(DefaultConfigs),
		Auths:      maps.Clone(DefaultAuths),
	}
	for _, f := range opts {
		f(&o)
	}
	c := &cmd{opts: o}
	c.app = &cli.App{
		Name:            o.Name,
		Usage:           o.Description,
		Version:         o.Version,
		Flags:           cloneFlags(),
		HideVersion:     o.Version == "",
		HideHelpCommand: true,
	}
	return c
}

// cloneFlags returns fresh copies of DefaultFlags, so that Cmds do not share flag values:
// urfave/cli writes the value it parses (from an argument or an environment variable)
// into the flag itself, which would otherwise become the next Cmd's default.
func cloneFlags() []cli.Flag {
	out := make([]cli.Flag, 0, len(DefaultFlags))
	for _, f := range DefaultFlags {
		switch g := f.(type) {
		case *cli.GenericFlag:
			c := *g
			c.Value = new(durationValue)
			out = append(out, &c)
		case *cli.StringFlag:
			out = append(out, clone(g))
		case *cli.IntFlag:
			out = append(out, clone(g))
		case *cli.BoolFlag:
			out = append(out, clone(g))
		case *cli.DurationFlag:
			out = append(out, clone(g))
		case *cli.StringSliceFlag:
			c := *g
			if g.Value != nil {
				c.Value = cli.NewStringSlice(g.Value.Value()...)
			}
			out = append(out, &c)
		default:
			out = append(out, f)
		}
	}
	return out
}

// clone returns a shallow copy of a flag.
func clone[F any](f *F) *F {
	c := *f
	return &c
}

func (c *cmd) App() *cli.App    { return c.app }
func (c *cmd) Options() Options { return c.opts }

// inTest reports whether this process is a go test binary.
func inTest() bool { return flag.Lookup("test.v") != nil }

// Init parses the arguments and environment and applies them. With --help it prints the
// help and exits the process with status 0.
func (c *cmd) Init(opts ...Option) error {
	for _, f := range opts {
		f(&c.opts)
	}
	args := c.opts.Args
	if args == nil {
		args = os.Args
		if inTest() {
			args = os.Args[:1]
		}
	}
	if c.opts.Name != "" {
		c.app.Name = c.opts.Name
	}
	if c.opts.Description != "" {
		c.app.Usage = c.opts.Description
	}
	ran := false
	var applyErr error
	userAction := c.app.Action
	c.app.Action = func(ctx *cli.Context) error {
		ran = true
		if applyErr = c.apply(ctx); applyErr != nil {
			return applyErr
		}
		if userAction != nil {
			return userAction(ctx)
		}
		return nil
	}
	defer func() { c.app.Action = userAction }()
	if err := c.app.Run(args); err != nil {
		return err
	}
	if !ran {
		// help or version was printed
		os.Exit(0)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func unknown(kind, name string, known []string) error {
	slices.Sort(known)
	return fmt.Errorf("unknown %s %q (known: %s)", kind, name, strings.Join(known, ", "))
}

// apply turns the parsed flags into components and options.
func (c *cmd) apply(ctx *cli.Context) error {
	o := &c.opts
	var serverOpts []server.Option
	var clientOpts []client.Option

	if name := ctx.String("log_level"); name != "" {
		lvl, err := logger.GetLevel(name)
		if err != nil {
			return err
		}
		l := logger.DefaultLogger
		if o.Logger != nil && *o.Logger != nil {
			l = *o.Logger
		}
		if err := l.Init(logger.WithLevel(lvl)); err != nil {
			return err
		}
	}
	if name := ctx.String("client"); name != "" && o.Client != nil {
		fn, ok := o.Clients[name]
		if !ok {
			return unknown("client", name, slices.Collect(maps.Keys(o.Clients)))
		}
		if (*o.Client).String() != name {
			*o.Client = fn()
		}
	}
	if name := ctx.String("server"); name != "" && o.Server != nil {
		fn, ok := o.Servers[name]
		if !ok {
			return unknown("server", name, slices.Collect(maps.Keys(o.Servers)))
		}
		if (*o.Server).String() != name {
			*o.Server = fn()
		}
	}
	if name := ctx.String("registry"); name != "" && o.Registry != nil {
		fn, ok := o.Registries[name]
		if !ok {
			return unknown("registry", name, slices.Collect(maps.Keys(o.Registries)))
		}
		var ropts []registry.Option
		if a := splitList(ctx.String("registry_address")); len(a) > 0 {
			ropts = append(ropts, registry.Addrs(a...))
		}
		*o.Registry = fn(ropts...)
		serverOpts = append(serverOpts, server.Registry(*o.Registry))
		clientOpts = append(clientOpts, client.Registry(*o.Registry))
	} else if a := splitList(ctx.String("registry_address")); len(a) > 0 && o.Registry != nil && *o.Registry != nil {
		if err := (*o.Registry).Init(registry.Addrs(a...)); err != nil {
			return fmt.Errorf("registry_address: %w", err)
		}
	}
	if name := ctx.String("selector"); name != "" && o.Selector != nil {
		fn, ok := o.Selectors[name]
		if !ok {
			return unknown("selector", name, slices.Collect(maps.Keys(o.Selectors)))
		}
		var sopts []selector.Option
		if o.Registry != nil && *o.Registry != nil {
			sopts = append(sopts, selector.Registry(*o.Registry))
		}
		*o.Selector = fn(sopts...)
		clientOpts = append(clientOpts, client.Selector(*o.Selector))
	}
	if name := ctx.String("broker"); name != "" && o.Broker != nil {
		fn, ok := o.Brokers[name]
		if !ok {
			return unknown("broker", name, slices.Collect(maps.Keys(o.Brokers)))
		}
		var bopts []broker.Option
		if a := splitList(ctx.String("broker_address")); len(a) > 0 {
			bopts = append(bopts, broker.Addrs(a...))
		}
		*o.Broker = fn(bopts...)
		serverOpts = append(serverOpts, server.Broker(*o.Broker))
		clientOpts = append(clientOpts, client.Broker(*o.Broker))
	} else if a := splitList(ctx.String("broker_address")); len(a) > 0 && o.Broker != nil && *o.Broker != nil {
		if err := (*o.Broker).Init(broker.Addrs(a...)); err != nil {
			return fmt.Errorf("broker_address: %w", err)
		}
	}
	if name := ctx.String("transport"); name != "" && o.Transport != nil {
		fn, ok := o.Transports[name]
		if !ok {
			return unknown("transport", name, slices.Collect(maps.Keys(o.Transports)))
		}
		var topts []transport.Option
		if a := splitList(ctx.String("transport_address")); len(a) > 0 {
			topts = append(topts, transport.Addrs(a...))
		}
		*o.Transport = fn(topts...)
		serverOpts = append(serverOpts, server.Transport(*o.Transport))
		clientOpts = append(clientOpts, client.Transport(*o.Transport))
	}
	if err := c.applyStore(ctx); err != nil {
		return err
	}
	if err := c.applyAuth(ctx); err != nil {
		return err
	}
	if name := ctx.String("config"); name != "" && o.Config != nil {
		fn, ok := o.Configs[name]
		if !ok {
			return unknown("config", name, slices.Collect(maps.Keys(o.Configs)))
		}
		conf, err := fn()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		*o.Config = conf
	}

	if v := ctx.String("server_name"); v != "" {
		serverOpts = append(serverOpts, server.Name(v))
	}
	if v := ctx.String("server_version"); v != "" {
		serverOpts = append(serverOpts, server.Version(v))
	}
	if v := ctx.String("server_id"); v != "" {
		serverOpts = append(serverOpts, server.Id(v))
	}
	if v := ctx.String("server_address"); v != "" {
		serverOpts = append(serverOpts, server.Address(v))
	}
	if v := ctx.String("server_advertise"); v != "" {
		serverOpts = append(serverOpts, server.Advertise(v))
	}
	if md := ctx.StringSlice("server_metadata"); len(md) > 0 {
		m := map[string]string{}
		if o.Server != nil && *o.Server != nil {
			maps.Copy(m, (*o.Server).Options().Metadata)
		}
		for _, kv := range md {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("server_metadata %q: want key=value", kv)
			}
			m[k] = v
		}
		serverOpts = append(serverOpts, server.Metadata(m))
	}
	if d := duration(ctx, "register_ttl"); d > 0 {
		serverOpts = append(serverOpts, server.RegisterTTL(d))
	}
	if d := duration(ctx, "register_interval"); d > 0 {
		serverOpts = append(serverOpts, server.RegisterInterval(d))
	}
	if d := duration(ctx, "client_request_timeout"); d > 0 {
		clientOpts = append(clientOpts, client.RequestTimeout(d))
	}
	if ctx.IsSet("client_retries") {
		clientOpts = append(clientOpts, client.Retries(ctx.Int("client_retries")))
	}
	if n := ctx.Int("client_pool_size"); n > 0 {
		clientOpts = append(clientOpts, client.PoolSize(n))
	}
	if d := duration(ctx, "client_pool_ttl"); d > 0 {
		clientOpts = append(clientOpts, client.PoolTTL(d))
	}
	if len(serverOpts) > 0 && o.Server != nil && *o.Server != nil {
		if err := (*o.Server).Init(serverOpts...); err != nil {
			return err
		}
	}
	if len(clientOpts) > 0 && o.Client != nil && *o.Client != nil {
		if err := (*o.Client).Init(clientOpts...); err != nil {
			return err
		}
	}
	return nil
}

// applyStore applies the store flags: --store replaces the store with a new one of that
// name, in the database and table of the store it replaces unless --store_database or
// --store_table name others; without --store, the other flags configure the store.
func (c *cmd) applyStore(ctx *cli.Context) error {
	o := &c.opts
	if o.Store == nil {
		return nil
	}
	var sopts []store.Option
	if a := splitList(ctx.String("store_address")); len(a) > 0 {
		sopts = append(sopts, store.Nodes(a...))
	}
	if v := ctx.String("store_database"); v != "" {
		sopts = append(sopts, store.Database(v))
	}
	if v := ctx.String("store_table"); v != "" {
		sopts = append(sopts, store.Table(v))
	}
	if name := ctx.String("store"); name != "" {
		fn, ok := o.Stores[name]
		if !ok {
			return unknown("store", name, slices.Collect(maps.Keys(o.Stores)))
		}
		var base []store.Option
		if old := *o.Store; old != nil {
			oo := old.Options()
			base = []store.Option{store.Database(oo.Database), store.Table(oo.Table)}
		}
		*o.Store = fn(append(base, sopts...)...)
		return nil
	}
	if len(sopts) > 0 && *o.Store != nil {
		if err := (*o.Store).Init(sopts...); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

func duration(ctx *cli.Context, name string) time.Duration {
	if v, ok := ctx.Generic(name).(*durationValue); ok && v != nil {
		return v.d
	}
	return 0
}

// Init initialises DefaultCmd.
func Init(opts ...Option) error { return DefaultCmd.Init(opts...) }

// App returns DefaultCmd's cli application.
func App() *cli.App { return DefaultCmd.App() }

// DefaultOptions returns DefaultCmd's options.
func DefaultOptions() Options { return DefaultCmd.Options() }

// applyAuth applies the auth flags: --auth replaces the auth with a new one of that name
// made with the other flags and the store (so --auth=jwt keeps its signing key in the
// service's store, and tokens stay valid across restarts); without it, the other flags
// configure the auth in place.
func (c *cmd) applyAuth(ctx *cli.Context) error {
	o := c.opts
	if o.Auth == nil {
		return nil
	}
	var aopts []auth.Option
	if id, secret := ctx.String("auth_id"), ctx.String("auth_secret"); id != "" || secret != "" {
		aopts = append(aopts, auth.Credentials(id, secret))
	}
	if ctx.IsSet("auth_namespace") {
		aopts = append(aopts, auth.Namespace(ctx.String("auth_namespace")))
	}
	if v := ctx.String("auth_public_key"); v != "" {
		aopts = append(aopts, auth.PublicKey(v))
	}
	if v := ctx.String("auth_private_key"); v != "" {
		aopts = append(aopts, auth.PrivateKey(v))
	}
	if name := ctx.String("auth"); name != "" {
		fn, ok := o.Auths[name]
		if !ok {
			return unknown("auth", name, slices.Collect(maps.Keys(o.Auths)))
		}
		if o.Store != nil && *o.Store != nil {
			// where an auth keeps what it must (jwt: its signing key), unless told otherwise
			aopts = append([]auth.Option{auth.Store(*o.Store)}, aopts...)
		}
		a := fn(aopts...)
		if f, ok := a.(interface{ Err() error }); ok && f.Err() != nil {
			return fmt.Errorf("auth: %w", f.Err())
		}
		*o.Auth = a
		return nil
	}
	if len(aopts) > 0 && *o.Auth != nil {
		(*o.Auth).Init(aopts...)
	}
	return nil
}

// newJWTAuth is jwt.NewAuth in the shape of DefaultAuths: an auth that cannot be made is
// returned as one whose Err says why, and Init returns that error.
func newJWTAuth(opts ...auth.Option) auth.Auth {
	a, err := jwt.NewAuth(opts...)
	if err != nil {
		return &failedAuth{Auth: auth.NewAuth(), err: err}
	}
	return a
}

// failedAuth is an auth whose construction failed.
type failedAuth struct {
	auth.Auth
	err error
}

// Err returns why the auth could not be made.
func (f *failedAuth) Err() error { return f.err }

func (f *failedAuth) Inspect(string) (*auth.Account, error) { return nil, f.err }
