package micro

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/store"
)

type service struct {
	mu       sync.Mutex
	opts     Options
	cmdDone  bool
	ownedCli bool          // the client was made by this service
	baseCli  client.Client // that client, before wrappers
	// ownBroker is the broker the service made (it was given none), disconnected by Stop
	// even when the server never ran: its client connects it to publish.
	ownBroker broker.Broker
	// authOn is the auth whose enforcement the server got; authCli the one whose token
	// the client attaches (each installed once).
	authOn, authCli auth.Auth
	// tlsFor is the identity the transport and broker were given.
	tlsFor *ca.Identity
	// ownStore is the store the service made (or cmd made for it), closed by Stop;
	// storeTable is the table the service gave it, kept equal to the service's name
	// while the store's table is still that one.
	ownStore   store.Store
	storeTable string
	err        error // a handler registration or flag error, returned by Start and Run
}

func newService(opts ...Option) *service {
	o := Options{Context: context.Background(), Signal: true}
	for _, f := range opts {
		f(&o)
	}
	if o.Config == nil {
		o.Config = config.DefaultConfig
	}
	if o.Auth == nil {
		o.Auth = auth.DefaultAuth
	}
	s := &service{opts: o}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.build()
	return s
}

// build makes or configures the server and client from the recorded options and
// registers handlers not registered yet. Called with mu held.
func (s *service) build() {
	o := &s.opts
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Logger == nil {
		o.Logger = logger.DefaultLogger
	}
	if o.Server == nil {
		o.Server = server.NewServer()
	}
	sopts := []server.Option{server.WithLogger(o.Logger), server.Context(o.Context)}
	copts := []client.Option{client.WithLogger(o.Logger)}
	if o.Registry != nil {
		sopts = append(sopts, server.Registry(o.Registry))
		copts = append(copts, client.Registry(o.Registry))
		// the broker finds subscribers in the service's registry too (the HTTP broker
		// does); a service given none gets a broker of its own rather than changing
		// the shared DefaultBroker
		if o.Broker == nil {
			o.Broker = broker.NewBroker(broker.Registry(o.Registry))
			s.ownBroker = o.Broker
		} else if err := o.Broker.Init(broker.Registry(o.Registry)); err != nil && !errors.Is(err, broker.ErrConnected) {
			s.fail(fmt.Errorf("micro: configure broker: %w", err))
		}
	}
	s.applyIdentity()
	if o.Broker != nil {
		sopts = append(sopts, server.Broker(o.Broker))
		copts = append(copts, client.Broker(o.Broker))
	}
	if o.Transport != nil {
		sopts = append(sopts, server.Transport(o.Transport))
		copts = append(copts, client.Transport(o.Transport))
	}
	if o.Selector != nil {
		copts = append(copts, client.Selector(o.Selector))
	}
	sopts = append(sopts, s.authOptions()...)
	sopts = append(sopts, o.serverOpts...)
	copts = append(copts, o.clientOpts...)
	if err := o.Server.Init(sopts...); err != nil {
		s.fail(fmt.Errorf("micro: configure server: %w", err))
	}
	if o.Client == nil {
		o.Client = client.NewClient(copts...)
		s.ownedCli, s.baseCli = true, o.Client
		for i := len(o.wrappers) - 1; i >= 0; i-- {
			o.Client = o.wrappers[i](o.Client)
		}
		o.wrappers = nil
	} else {
		if err := o.Client.Init(copts...); err != nil {
			s.fail(fmt.Errorf("micro: configure client: %w", err))
		}
		for i := len(o.wrappers) - 1; i >= 0; i-- {
			o.Client = o.wrappers[i](o.Client)
		}
		o.wrappers = nil
	}
	o.serverOpts, o.clientOpts = nil, nil
	s.wrapAuthClient()
	s.buildStore()
	for ; o.applied < len(o.handlers); o.applied++ {
		h := o.handlers[o.applied]
		if err := o.Server.Handle(o.Server.NewHandler(h)); err != nil {
			s.fail(err)
		}
	}
}

// buildStore makes the service's store when it has none, and keeps the table of a store
// it made equal to the service's name. Called with mu held.
func (s *service) buildStore() {
	o := &s.opts
	name := o.Server.Options().Name
	if s.ownStore != nil && o.Store != s.ownStore {
		// micro.Store replaced the store the service made
		s.closeOwnStore()
	}
	if o.Store == nil {
		o.Store = store.NewStore(store.Table(name))
		s.ownStore, s.storeTable = o.Store, name
		return
	}
	if o.Store == s.ownStore && s.storeTable != name && o.Store.Options().Table == s.storeTable {
		if err := o.Store.Init(store.Table(name)); err != nil {
			s.fail(fmt.Errorf("micro: configure store: %w", err))
			return
		}
		s.storeTable = name
	}
}

// closeOwnStore closes the store the service made, which it no longer uses. Called with
// mu held.
func (s *service) closeOwnStore() {
	if err := s.ownStore.Close(); err != nil {
		s.fail(fmt.Errorf("micro: close the replaced store: %w", err))
	}
	s.ownStore, s.storeTable = nil, ""
}

func (s *service) fail(err error) {
	s.opts.Logger.Logf(logger.ErrorLevel, "%v", err)
	s.err = errors.Join(s.err, err)
}

func (s *service) Name() string { return s.Server().Options().Name }

func (s *service) String() string { return "micro" }

// Init applies options. The first call also parses flags and MICRO_* environment
// variables through the Cmd (which prints help and exits for --help); a flag error is
// logged and returned by Run.
func (s *service) Init(opts ...Option) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range opts {
		f(&s.opts)
	}
	s.build()
	if s.cmdDone {
		return
	}
	s.cmdDone = true
	o := &s.opts
	if o.Cmd == nil {
		o.Cmd = cmd.NewCmd()
	}
	app := o.Cmd.App()
	app.Flags = append(app.Flags, o.flags...)
	if o.action != nil {
		app.Action = o.action
	}
	name := o.Server.Options().Name
	before := o.Store
	err := o.Cmd.Init(
		cmd.Name(name),
		cmd.Registry(&o.Registry),
		cmd.Broker(&o.Broker),
		cmd.Transport(&o.Transport),
		cmd.Selector(&o.Selector),
		cmd.Client(&o.Client),
		cmd.Server(&o.Server),
		cmd.Logger(&o.Logger),
		cmd.Store(&o.Store),
		cmd.Config(&o.Config),
		cmd.Auth(&o.Auth),
	)
	if err != nil {
		s.fail(fmt.Errorf("micro: flags: %w", err))
	}
	if o.Store != before {
		// --store replaced the store, in the same table: the one cmd made is the
		// service's
		table := s.storeTable
		if before == s.ownStore {
			s.closeOwnStore()
		}
		s.ownStore, s.storeTable = o.Store, table
	}
	if opts := s.authOptions(); len(opts) > 0 {
		// --auth turned auth on
		if err := o.Server.Init(opts...); err != nil {
			s.fail(fmt.Errorf("micro: configure server: %w", err))
		}
	}
	s.wrapAuthClient()
	s.buildStore()
}

func (s *service) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

func (s *service) Client() client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Client
}

func (s *service) Server() server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Server
}

func (s *service) Handle(v interface{}, opts ...server.HandlerOption) error {
	srv := s.Server()
	return srv.Handle(srv.NewHandler(v, opts...))
}

// Start runs the BeforeStart hooks in order, starts the server, then runs the AfterStart
// hooks in order. When a step fails, what already started is stopped again.
func (s *service) Start() error {
	s.mu.Lock()
	o, err := s.opts, s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, fn := range o.BeforeStart {
		if err := fn(); err != nil {
			return fmt.Errorf("micro: before start: %w", err)
		}
	}
	if err := o.Server.Start(); err != nil {
		return err
	}
	for _, fn := range o.AfterStart {
		if err := fn(); err != nil {
			return errors.Join(fmt.Errorf("micro: after start: %w", err), o.Server.Stop())
		}
	}
	return nil
}

// Stop runs the BeforeStop hooks in reverse order, stops the server, runs the AfterStop
// hooks in reverse order, and returns every error joined.
func (s *service) Stop() error {
	s.mu.Lock()
	o := s.opts
	owned, base, ownBroker := s.ownedCli, s.baseCli, s.ownBroker
	ownStore := s.ownStore
	s.mu.Unlock()
	var errs []error
	for i := len(o.BeforeStop) - 1; i >= 0; i-- {
		if err := o.BeforeStop[i](); err != nil {
			errs = append(errs, fmt.Errorf("micro: before stop: %w", err))
		}
	}
	if err := o.Server.Stop(); err != nil {
		errs = append(errs, err)
	}
	for i := len(o.AfterStop) - 1; i >= 0; i-- {
		if err := o.AfterStop[i](); err != nil {
			errs = append(errs, fmt.Errorf("micro: after stop: %w", err))
		}
	}
	if ownBroker != nil && o.Broker == ownBroker {
		if err := ownBroker.Disconnect(); err != nil && !errors.Is(err, broker.ErrNotConnected) {
			errs = append(errs, fmt.Errorf("micro: disconnect the broker: %w", err))
		}
	}
	// the client the service made, under any wrappers
	if c, ok := base.(io.Closer); ok && owned {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if ownStore != nil && o.Store == ownStore {
		if err := ownStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("micro: close the store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run starts the service, waits for a signal or the end of the Context, then stops it.
// Signals are watched from before the start, so none is missed.
func (s *service) Run() error {
	o := s.Options()
	var sig chan os.Signal
	if o.Signal {
		sig = make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
		defer signal.Stop(sig)
	}
	if err := s.Start(); err != nil {
		return err
	}
	o.Logger.Logf(logger.InfoLevel, "Starting [service] %s", o.Server.Options().Name)
	select {
	case got := <-sig:
		o.Logger.Logf(logger.InfoLevel, "Received signal %s, stopping", got)
	case <-o.Context.Done():
	}
	return s.Stop()
}
