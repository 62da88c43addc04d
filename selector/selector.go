// Package selector chooses the node of a service that a call goes to.
//
// The Selector looks services up in a registry (through a registry/cache by default),
// applies Filters, then a Strategy that returns a Next function yielding nodes. The
// default strategy is Random, as in Go Micro; RoundRobin takes turns, LeastLoaded
// prefers the nodes with the fewest calls in flight and the lowest latency (learned
// through Tracker), and WithHashKey sends calls with one key to one node.
package selector

import (
	"errors"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

// Selector picks nodes of a service. Implementations are safe for concurrent use.
type Selector interface {
	Init(opts ...Option) error
	Options() Options
	// Select returns a Next function over the nodes of service.
	Select(service string, opts ...SelectOption) (Next, error)
	// Mark reports the outcome of a call to node; nil err is a success.
	Mark(service string, node *registry.Node, err error)
	// Reset forgets what Mark reported about service.
	Reset(service string)
	// Close releases the selector's resources (its registry cache).
	Close() error
	String() string
}

// Next returns the next node to use.
type Next func() (*registry.Node, error)

// Tracker is implemented by selectors that learn the load of nodes from the calls made
// to them, as the registry selector does for LeastLoaded. The client calls Track when
// an attempt on node (a call, or the opening of a stream) begins, and done exactly once
// when it ends, with its outcome: nil for a success. done only feeds load (calls in
// flight, latency); the client reports the outcome to Mark as well, which alone decides
// ejection. Implementations are safe for concurrent use. A Selector that wraps another
// should forward Track, or its inner selector learns nothing.
type Tracker interface {
	Track(service string, node *registry.Node) (done func(err error))
}

// Latencies is implemented by selectors that learn the latency of nodes from the
// attempts they track (the registry selector does). Latency returns the quantile q of a
// node's recent latencies (0.95: the p95), or false when it knows too little of the
// node; for a nil node, the least quantile among the service's nodes (that of its
// quickest node). The client uses it for the delay of hedged calls.
type Latencies interface {
	Latency(service string, node *registry.Node, q float64) (time.Duration, bool)
}

// Filter narrows the services (and their nodes) a selection considers. A Filter must not
// modify the slice or services it is given; it returns new ones where it removes anything.
type Filter func([]*registry.Service) []*registry.Service

// Strategy turns services into a Next function.
type Strategy func([]*registry.Service) Next

var (
	// ErrNotFound is returned by Select when the registry has no such service.
	ErrNotFound = errors.New("not found")
	// ErrNoneAvailable is returned when the filters leave no node.
	ErrNoneAvailable = errors.New("none available")
)
