package micro

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/transport"
)

// Options configure a Service. Options only record settings: the service applies them to
// its server and client when it is made and at Init, so the order in which they are given
// does not matter (micro.Server(s) then micro.Name(n) names s).
type Options struct {
	Registry  registry.Registry
	Cmd       cmd.Cmd
	Client    client.Client
	Server    server.Server
	Context   context.Context
	Transport transport.Transport
	Logger    logger.Logger
	Broker    broker.Broker
	Selector  selector.Selector
	// Store is the service's store. Default: a file store of its own (store.NewStore) in
	// the table named after the service; see Store.
	Store store.Store
	// Auth authenticates the service's callers. Default auth.DefaultAuth (noop), which
	// enforces nothing; any other (auth/jwt, or --auth=jwt) turns enforcement on: see
	// Auth.
	Auth auth.Auth
	// AuthRules authorise callers once Auth is on; nil admits any authenticated caller.
	AuthRules auth.Rules
	// PublicEndpoints are served without authentication once Auth is on.
	PublicEndpoints []string
	// Identity is the service's certificate from the service CA: with it, the service
	// serves, calls and delivers messages over mutual TLS. See ServiceIdentity.
	Identity *ca.Identity

	// Config is the service's configuration: config.DefaultConfig unless set. The
	// service loads no source into it; the program does (see package config).
	Config config.Config

	BeforeStart []func() error
	AfterStart  []func() error
	AfterStop   []func() error
	BeforeStop  []func() error

	// Signal makes Run stop on SIGINT, SIGTERM and SIGQUIT. Default true.
	Signal bool

	serverOpts []server.Option
	clientOpts []client.Option
	wrappers   []client.Wrapper
	handlers   []interface{}
	flags      []cli.Flag
	action     func(*cli.Context) error
	applied    int // how many handlers have been registered
}

// Option sets a field of Options.
type Option func(*Options)

// Broker sets the broker of the server and client.
func Broker(b broker.Broker) Option { return func(o *Options) { o.Broker = b } }

// Cmd sets the flag parser Init uses.
func Cmd(c cmd.Cmd) Option { return func(o *Options) { o.Cmd = c } }

// Client sets the service's client.
func Client(c client.Client) Option { return func(o *Options) { o.Client = c } }

// Context sets the context whose end stops Run, and the parent of handler contexts.
func Context(ctx context.Context) Option { return func(o *Options) { o.Context = ctx } }

// Handle registers a handler value with the service's server.
func Handle(v interface{}) Option { return func(o *Options) { o.handlers = append(o.handlers, v) } }

// HandleSignal sets whether Run stops on SIGINT, SIGTERM and SIGQUIT.
func HandleSignal(b bool) Option { return func(o *Options) { o.Signal = b } }

// Server sets the service's server.
func Server(s server.Server) Option { return func(o *Options) { o.Server = s } }

// Store sets the service's store, used as it is: the service neither changes its table
// nor closes it. A service given none makes a file store (store.NewStore) whose table is
// the service's name, follows renames of the service while nobody else set the table
// (--store_table does), and closes it when it stops.
func Store(s store.Store) Option { return func(o *Options) { o.Store = s } }

// Auth sets the service's auth. With any auth but noop, the service enforces it:
//
//   - every RPC and stream must carry "Authorization: Bearer <token>" that the auth
//     accepts (or come over mutual TLS with a certificate from the service CA, see
//     auth/ca); without, the caller gets 401 and the handler never runs;
//   - every message for the service's subscribers must carry a publisher's token too
//     (whether it came through the broker or straight to the RPC port);
//   - the rules of AuthRules, when given, authorise each call (403 when they refuse);
//   - the service's client attaches the service's own token to its calls and
//     publications, renewing it before it expires (see wrapper/auth.ServiceClient).
//
// Endpoints named by PublicEndpoints are served to anyone.
func Auth(a auth.Auth) Option { return func(o *Options) { o.Auth = a } }

// ServiceIdentity gives the service its certificate from the service CA (auth/ca), and
// turns on mutual TLS with it: the server accepts only callers with a certificate from
// the same CA, the client presents the certificate and accepts only servers with one,
// and the broker does the same for deliveries. A caller's service, from its verified
// certificate, reaches the handlers' auth as the account ID <service> with scope
// "service:<service>" (see wrapper/auth). Certificates rotate before they expire.
func ServiceIdentity(id *ca.Identity) Option { return func(o *Options) { o.Identity = id } }

// AuthRules sets the rules that authorise callers once auth is on.
func AuthRules(r auth.Rules) Option { return func(o *Options) { o.AuthRules = r } }

// PublicEndpoints names endpoints ("Greeter.Health") served without authentication once
// auth is on.
func PublicEndpoints(endpoints ...string) Option {
	return func(o *Options) { o.PublicEndpoints = append(o.PublicEndpoints, endpoints...) }
}

// Config sets the service's configuration (Options().Config).
func Config(c config.Config) Option { return func(o *Options) { o.Config = c } }

// Registry sets the registry of the server and client.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Selector sets the client's selector.
func Selector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// Transport sets the transport of the server and client.
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Logger sets the logger of the service, server and client.
func Logger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// Address sets the server's listen address.
func Address(addr string) Option { return serverOption(server.Address(addr)) }

// Name sets the service name.
func Name(n string) Option { return serverOption(server.Name(n)) }

// Version sets the service version.
func Version(v string) Option { return serverOption(server.Version(v)) }

// Metadata sets the node's registry metadata.
func Metadata(md map[string]string) Option { return serverOption(server.Metadata(md)) }

// RegisterTTL sets how long a registration lives without renewal.
func RegisterTTL(t time.Duration) Option { return serverOption(server.RegisterTTL(t)) }

// RegisterInterval sets how often the registration is renewed.
func RegisterInterval(t time.Duration) Option { return serverOption(server.RegisterInterval(t)) }

// WrapHandler adds handler wrappers; the first given runs first.
func WrapHandler(w ...server.HandlerWrapper) Option {
	return func(o *Options) {
		for _, wrap := range w {
			o.serverOpts = append(o.serverOpts, server.WrapHandler(wrap))
		}
	}
}

// WrapSubscriber adds subscriber wrappers; the first given runs first.
func WrapSubscriber(w ...server.SubscriberWrapper) Option {
	return func(o *Options) {
		for _, wrap := range w {
			o.serverOpts = append(o.serverOpts, server.WrapSubscriber(wrap))
		}
	}
}

// AddListenOption adds a server option applied when the server is built, as Go Micro's
// option of this name does.
func AddListenOption(option server.Option) Option { return serverOption(option) }

// WrapClient wraps the client; the first given is the outermost.
func WrapClient(w ...client.Wrapper) Option {
	return func(o *Options) { o.wrappers = append(o.wrappers, w...) }
}

// WrapCall adds call wrappers; the first given runs first.
func WrapCall(w ...client.CallWrapper) Option {
	return func(o *Options) { o.clientOpts = append(o.clientOpts, client.WrapCall(w...)) }
}

// Flags adds command-line flags, read at the first Init.
func Flags(flags ...cli.Flag) Option { return func(o *Options) { o.flags = append(o.flags, flags...) } }

// Action sets a function run with the parsed flags at the first Init.
func Action(a func(*cli.Context) error) Option { return func(o *Options) { o.action = a } }

// BeforeStart adds a hook run before the server starts.
func BeforeStart(fn func() error) Option {
	return func(o *Options) { o.BeforeStart = append(o.BeforeStart, fn) }
}

// BeforeStop adds a hook run before the server stops.
func BeforeStop(fn func() error) Option {
	return func(o *Options) { o.BeforeStop = append(o.BeforeStop, fn) }
}

// AfterStart adds a hook run after the server started.
func AfterStart(fn func() error) Option {
	return func(o *Options) { o.AfterStart = append(o.AfterStart, fn) }
}

// AfterStop adds a hook run after the server stopped.
func AfterStop(fn func() error) Option {
	return func(o *Options) { o.AfterStop = append(o.AfterStop, fn) }
}

func serverOption(so server.Option) Option {
	return func(o *Options) { o.serverOpts = append(o.serverOpts, so) }
}
