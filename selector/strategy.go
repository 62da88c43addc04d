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

// RoundRobin walks all nodes in turn, starting at a random one. Called directly, its
// turn is per Next, as in Go Micro; the registry selector keeps one turn per service
// across all its Selects, so that successive calls go to successive nodes.
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

// LeastLoaded sends calls to the nodes with the least load. In the registry selector
// (NewSelector, which recognises it by identity) each pick draws two distinct nodes at
// random and takes the one with the lower cost: its latency average times its calls in
// flight plus one, both learned from the calls the selector's clients make (see
// Tracker). The average is weighted by time (it covers about the last second) and,
// while a node has nothing in flight, decays towards zero, so a slow node that went
// idle is tried again after a few seconds and regains its share once it is fast. A node
// with no latency data yet (one that just joined) is compared by calls in flight alone,
// so it gets traffic at once without taking a flood. Failures that show a sick node
// (the call was never sent, or a 5xx) count as at least 1 s. Elsewhere, with no load
// to learn from, LeastLoaded picks at random, as Random does.
func LeastLoaded(services []*registry.Service) Next { return Random(services) }

// Hash returns a strategy that ranks nodes by rendezvous hashing of key: each Next
// returns the next node in the key's ranking, starting with the same node for the same
// key and node set. A node joining or leaving moves only the keys that rank it first.
// The registry selector does the same for WithHashKey, without allocating per node.
func Hash(key string) Strategy {
	return func(services []*registry.Service) Next {
		ns := &nodeSet{nodes: make([]*registry.Node, 0, countNodes(services))}
		for _, s := range services {
			ns.nodes = append(ns.nodes, s.Nodes...)
		}
		ns.hashes = make([]uint64, len(ns.nodes))
		for i, n := range ns.nodes {
			ns.hashes[i] = nodeHash(n.Id)
		}
		return ns.hash(key, new(atomic.Uint32))
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv64a is FNV-1a of s, without the allocations of hash/fnv.
func fnv64a(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// nodeHash and keyHash are the two halves of a rendezvous score; the score of a key for
// a node is mix(keyHash ^ nodeHash).
func nodeHash(id string) uint64 { return mix(fnv64a(id) ^ 0x9e3779b97f4a7c15) }
func keyHash(key string) uint64 { return mix(fnv64a(key)) }

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
