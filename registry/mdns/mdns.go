// Package mdns is the multicast DNS registry, micro's default: services on one host or
// one network link find each other with no server and no configuration.
//
// It is the registry registry.NewMDNSRegistry builds (and registry.DefaultRegistry
// is); this package gives it the name the other backends have (registry/etcd,
// registry/nats) and its options. Nodes are named <node>.<service>.micro. with PTR,
// SRV, TXT and A/AAAA records, the layout of Go Micro's mDNS registry, so that micro
// and Go Micro services on one network find each other.
//
// What it promises:
//   - Register announces a node at once (and again a second later, then every half
//     record TTL), and answers queries for it while it is registered. The record TTL
//     is the RegisterTTL (120 s without one); a registration not renewed within it is
//     withdrawn with goodbye records.
//   - Deregister sends goodbye records (TTL 0): watchers and caches elsewhere drop the
//     node at once.
//   - GetService and ListServices send one query and collect answers for the lookup
//     window, registry.Timeout (default 100 ms). A node whose process died does not
//     answer, so it is gone from lookups at once; watchers drop it when its record TTL
//     passes without an announcement.
//   - A node whose records would not fit in one mDNS message (9000 bytes: metadata and
//     endpoints compressed) is refused by Register with an error saying so.
//   - Where multicast is unavailable (no interface with multicast, a container), the
//     first use logs one warning naming --registry=etcd, nats and memory, and the
//     registry still works within the process.
//   - Malformed or hostile packets are ignored; only responses from port 5353, unicast
//     answers to our own queries, and queries from the local link are taken in.
//
// Several processes on one host share port 5353 (SO_REUSEADDR, SO_REUSEPORT); answers
// to lookups come back by unicast to the querying socket (RFC 6762 §6.7).
package mdns

import (
	"github.com/seed-b3892490/micro/registry"
)

// NewRegistry returns the mDNS registry (see the package documentation). Constructing
// it starts nothing; it is safe for concurrent use. The concrete value has a Close
// method (io.Closer) that withdraws every registration and stops its watchers.
func NewRegistry(opts ...registry.Option) registry.Registry { return registry.NewMDNSRegistry(opts...) }

// Domain sets the domain services are named under (default "micro").
func Domain(d string) registry.Option { return registry.MDNSDomain(d) }

// Interfaces limits the registry to the named network interfaces (default: every
// interface that is up and can multicast).
func Interfaces(names ...string) registry.Option { return registry.MDNSInterfaces(names...) }
