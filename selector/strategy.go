package selector

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/seed-b3892490/micro/registry"
)

func countNodes(services []*registry.Service) int {
	n := 0
	for _, s := range services {
		n += len(s.Nodes)
	}
	return n
}

// nodeAt returns the i-th node across services.
func nodeAt(services []*registry.Service, i int) *registry.Node {
	for _, s := range services {
		if i < len(s.Nodes) {
			return s.Nodes[i]
		}
		i -= len(s.Nodes)
	}
	return nil
}

// Random picks a node uniformly at random among all nodes of all services, on each call.
func Random(services []*registry.Service) Next {
	n := countNodes(services)
	return func() (*registry.Node, error) {
		if n == 0 {
			return nil, ErrNoneAvailable
		}
		return nodeAt(services, rand.IntN(n)), nil
	}
}

// RoundRobin walks all nodes in turn, starting at a random one.
func RoundRobin(services []*registry.Service) Next {
	n := countNodes(services)
	var i atomic.Uint64
	if n > 0 {
		i.Store(uint64(rand.IntN(n)))
	}
	return func() (*registry.Node, error) {
		if n == 0 {
			return nil, ErrNoneAvailable
		}
		return nodeAt(services, int((i.Add(1)-1)%uint64(n))), nil
	}
}
