package selector

import (
	"hash/fnv"
	"math/rand/v2"
	"sort"
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

// Hash returns a strategy that ranks nodes by rendezvous hashing of key: each Next
// returns the next node in the key's ranking, starting with the same node for the same
// key and node set.
func Hash(key string) Strategy {
	return func(services []*registry.Service) Next {
		type ranked struct {
			node  *registry.Node
			score uint64
		}
		var all []ranked
		for _, s := range services {
			for _, n := range s.Nodes {
				h := fnv.New64a()
				_, _ = h.Write([]byte(key))
				_, _ = h.Write([]byte{0})
				_, _ = h.Write([]byte(n.Id))
				all = append(all, ranked{n, mix(h.Sum64())})
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].score > all[j].score })
		var i atomic.Uint64
		return func() (*registry.Node, error) {
			if len(all) == 0 {
				return nil, ErrNoneAvailable
			}
			return all[(i.Add(1)-1)%uint64(len(all))].node, nil
		}
	}
}

// mix spreads the bits of a hash (a finaliser of splitmix64), so that close inputs give
// unrelated scores.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
