package micro

import (
	"errors"
	"fmt"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
	authwrapper "github.com/seed-b3892490/micro/wrapper/auth"
)

// enforced reports whether a turns enforcement on: any auth but noop.
func enforced(a auth.Auth) bool { return a != nil && a.String() != "noop" }

// authOptions returns the server options that enforce the service's auth, once: the
// handler wrapper (for RPCs and streams) and the subscriber wrapper. Called with mu held.
func (s *service) authOptions() []server.Option {
	o := &s.opts
	if !enforced(o.Auth) || s.authOn != nil {
		return nil
	}
	s.authOn = o.Auth
	hopts := authwrapper.HandlerOptions{Auth: o.Auth, Rules: o.AuthRules, SkipEndpoints: o.PublicEndpoints}
	name := o.Server.Options().Name
	return []server.Option{
		server.WrapHandler(authwrapper.AuthHandler(hopts)),
		server.WrapSubscriber(authwrapper.AuthSubscriber(name, hopts)),
	}
}

// wrapAuthClient makes the service's client attach the service's own token, once.
// Called with mu held.
func (s *service) wrapAuthClient() {
	o := &s.opts
	if !enforced(o.Auth) || s.authCli != nil || o.Client == nil {
		return
	}
	s.authCli = o.Auth
	o.Client = authwrapper.ServiceClient(o.Auth, o.Server.Options().Name)(o.Client)
}

// applyIdentity gives the transport and the broker the service's certificate, once:
// mutual TLS for calls and deliveries. A service without a transport gets one of its own.
// Called with mu held.
func (s *service) applyIdentity() {
	o := &s.opts
	if o.Identity == nil || s.tlsFor == o.Identity {
		return
	}
	s.tlsFor = o.Identity
	cfg := o.Identity.PeerTLSConfig()
	if o.Transport == nil {
		o.Transport = transport.NewHTTPTransport(transport.TLSConfig(cfg))
	} else if err := o.Transport.Init(transport.TLSConfig(cfg)); err != nil {
		s.fail(fmt.Errorf("micro: configure transport for TLS: %w", err))
	}
	if o.Broker == nil {
		o.Broker = broker.NewBroker(broker.TLSConfig(cfg))
		s.ownBroker = o.Broker
	} else if err := o.Broker.Init(broker.TLSConfig(cfg)); err != nil && !errors.Is(err, broker.ErrConnected) {
		s.fail(fmt.Errorf("micro: configure broker for TLS: %w", err))
	}
}
