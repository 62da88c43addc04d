package cmd

import (
	"context"

	"github.com/seed-b3892490/micro/auth"
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

// Options configure a Cmd: the components that flags apply to (as pointers, so that a
// flag such as --registry=memory can replace them) and the tables of backends by name.
type Options struct {
	Context   context.Context
	Registry  *registry.Registry
	Selector  *selector.Selector
	Transport *transport.Transport
	Broker    *broker.Broker
	Client    *client.Client
	Server    *server.Server
	Logger    *logger.Logger
	Store     *store.Store
	Config    *config.Config
	Auth      *auth.Auth

	Registries map[string]func(...registry.Option) registry.Registry
	Selectors  map[string]func(...selector.Option) selector.Selector
	Transports map[string]func(...transport.Option) transport.Transport
	Brokers    map[string]func(...broker.Option) broker.Broker
	Clients    map[string]func(...client.Option) client.Client
	Servers    map[string]func(...server.Option) server.Server
	Stores     map[string]func(...store.Option) store.Store
	Configs    map[string]func(...config.Option) (config.Config, error)
	Auths      map[string]func(...auth.Option) auth.Auth

	Name        string
	Description string
	Version     string
	// Args are the command-line arguments parsed by Init, program name first. Default
	// os.Args; inside a test binary only the program name, so that go test's own flags
	// are not mistaken for the service's.
	Args []string
}

// Option sets a field of Options.
type Option func(*Options)

// Name sets the application name shown in help.
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Description sets the application description shown in help.
func Description(d string) Option { return func(o *Options) { o.Description = d } }

// Version sets the application version shown in help.
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// Args sets the arguments to parse, program name first.
func Args(args ...string) Option { return func(o *Options) { o.Args = args } }

// Registry points the registry flags at r.
func Registry(r *registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Selector points the selector flag at s.
func Selector(s *selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// Transport points the transport flags at t.
func Transport(t *transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Broker points the broker flags at b.
func Broker(b *broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// Client points the client flags at c.
func Client(c *client.Client) Option { return func(o *Options) { o.Client = c } }

// Server points the server flags at s.
func Server(s *server.Server) Option { return func(o *Options) { o.Server = s } }

// Logger points the log level flag at l.
func Logger(l *logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// Store points the store flags at s.
func Store(s *store.Store) Option { return func(o *Options) { o.Store = s } }

// NewRegistry adds a registry backend by name.
func NewRegistry(name string, r func(...registry.Option) registry.Registry) Option {
	return func(o *Options) { o.Registries[name] = r }
}

// NewSelector adds a selector by name.
func NewSelector(name string, s func(...selector.Option) selector.Selector) Option {
	return func(o *Options) { o.Selectors[name] = s }
}

// NewTransport adds a transport by name.
func NewTransport(name string, t func(...transport.Option) transport.Transport) Option {
	return func(o *Options) { o.Transports[name] = t }
}

// NewBroker adds a broker by name.
func NewBroker(name string, b func(...broker.Option) broker.Broker) Option {
	return func(o *Options) { o.Brokers[name] = b }
}

// NewClient adds a client by name.
func NewClient(name string, c func(...client.Option) client.Client) Option {
	return func(o *Options) { o.Clients[name] = c }
}

// NewServer adds a server by name.
func NewServer(name string, s func(...server.Option) server.Server) Option {
	return func(o *Options) { o.Servers[name] = s }
}

// Auth points the auth flags at a.
func Auth(a *auth.Auth) Option { return func(o *Options) { o.Auth = a } }

// NewAuth adds an auth implementation by name.
func NewAuth(name string, a func(...auth.Option) auth.Auth) Option {
	return func(o *Options) { o.Auths[name] = a }
}

// Config points the --config flag at c.
func Config(c *config.Config) Option { return func(o *Options) { o.Config = c } }

// NewConfig adds a config implementation by name.
func NewConfig(name string, c func(...config.Option) (config.Config, error)) Option {
	return func(o *Options) { o.Configs[name] = c }
}

// NewStore adds a store backend by name.
func NewStore(name string, s func(...store.Option) store.Store) Option {
	return func(o *Options) { o.Stores[name] = s }
}
