package testutil

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

// DeregisterProbe wraps a registry and records whether a server's listener still accepted
// connections at the moment the server deregistered: a graceful stop deregisters first.
type DeregisterProbe struct {
	registry.Registry
	addr     atomic.Value
	accepted atomic.Int32 // 1 accepted, -1 refused, 0 not deregistered yet
}

// Probe sets the listen address to dial on Deregister.
func (p *DeregisterProbe) Probe(addr string) { p.addr.Store(addr) }

// Addr returns the address set with Probe.
func (p *DeregisterProbe) Addr() string {
	a, _ := p.addr.Load().(string)
	return a
}

// AcceptedAtDeregister reports whether the listener accepted when Deregister ran.
func (p *DeregisterProbe) AcceptedAtDeregister() bool { return p.accepted.Load() == 1 }

// Deregister dials the watched address, then deregisters.
func (p *DeregisterProbe) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	if a := p.Addr(); a != "" {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			p.accepted.Store(1)
		} else {
			p.accepted.Store(-1)
		}
	}
	return p.Registry.Deregister(s, opts...)
}
