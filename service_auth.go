package micro

import (
	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/server"
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
