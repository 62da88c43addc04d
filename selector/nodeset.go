package selector

import (
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/seed-b3892490/micro/registry"
)

// A nodeSet is what the registry selector derives from one services slice: its nodes in
// a flat list with their hashes and load records, and the Next of each built-in strategy
// over them. The registry cache never modifies a slice it returned, so the set made for
// the slice the cache returns is shared by every Select of it (while no filter or
// ejection narrows it): such a Select allocates nothing.
type nodeSet struct {
	services []*registry.Service // what it was made of, compared by identity
	nodes    []*registry.Node
	hashes   []uint64    // nodeHash of each node's ID
	loads    []*nodeLoad // of each node
	turn     *atomic.Uint64
	clock    func() int64

	// the Next of the built-in strategies, made once for a shared set
	random, roundRobin, leastLoaded Next
}

// serviceState is what the registry selector keeps per service.
type serviceState struct {
	set   *nodeSet             // of the slice the cache returned last
	loads map[string]*nodeLoad // by node ID: exactly the nodes of that slice
	turn  atomic.Uint64        // round robin's, shared by all Selects of the service
}

// sameSlice reports whether a and b are the same slice (not merely equal contents).
func sameSlice(a, b []*registry.Service) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// state returns the state of service and the shared set of all, its cached services,
// making them when the cache returned a new slice. The load table then keeps the
// records of the nodes still there, adds the new nodes and forgets those that left.
func (s *registrySelector) state(service string, all []*registry.Service) (*serviceState, *nodeSet) {
	s.smu.RLock()
	st := s.states[service]
	if st != nil && sameSlice(st.set.services, all) {
		set := st.set
		s.smu.RUnlock()
		return st, set
	}
	s.smu.RUnlock()

	s.smu.Lock()
	defer s.smu.Unlock()
	st = s.states[service]
	if st != nil && sameSlice(st.set.services, all) {
		return st, st.set
	}
	if st == nil {
		st = new(serviceState)
		st.turn.Store(rand.Uint64())
		if s.states == nil {
			s.states = make(map[string]*serviceState)
		}
		s.states[service] = st
	}
	loads := make(map[string]*nodeLoad, countNodes(all))
	for _, svc := range all {
		for _, n := range svc.Nodes {
			l := st.loads[n.Id]
			if l == nil {
				l = new(nodeLoad)
			}
			loads[n.Id] = l
		}
	}
	st.loads = loads
	set := s.makeSet(st, all)
	set.random, set.roundRobin, set.leastLoaded = set.pickRandom, set.pickRoundRobin, set.pickLeastLoaded
	st.set = set
	return st, set
}

// filteredSet makes a set of services, a filtered subset of the nodes of st.
func (s *registrySelector) filteredSet(st *serviceState, services []*registry.Service) *nodeSet {
	s.smu.RLock()
	defer s.smu.RUnlock()
	return s.makeSet(st, services)
}

// makeSet makes the set of services with st's load records. Called with smu held.
func (s *registrySelector) makeSet(st *serviceState, services []*registry.Service) *nodeSet {
	n := countNodes(services)
	set := &nodeSet{
		services: services,
		nodes:    make([]*registry.Node, 0, n),
		hashes:   make([]uint64, 0, n),
		loads:    make([]*nodeLoad, 0, n),
		turn:     &st.turn,
		clock:    s.clock,
	}
	for _, svc := range services {
		for _, node := range svc.Nodes {
			l := st.loads[node.Id]
			if l == nil { // a filter invented a node: it is not tracked
				l = new(nodeLoad)
			}
			set.nodes = append(set.nodes, node)
			set.hashes = append(set.hashes, nodeHash(node.Id))
			set.loads = append(set.loads, l)
		}
	}
	return set
}

func (ns *nodeSet) pickRandom() (*registry.Node, error) {
	if len(ns.nodes) == 0 {
		return nil, ErrNoneAvailable
	}
	return ns.nodes[rand.IntN(len(ns.nodes))], nil
}

func (ns *nodeSet) pickRoundRobin() (*registry.Node, error) {
	if len(ns.nodes) == 0 {
		return nil, ErrNoneAvailable
	}
	return ns.nodes[(ns.turn.Add(1)-1)%uint64(len(ns.nodes))], nil
}

// pickLeastLoaded takes the lighter of two distinct nodes drawn at random (the power of
// two choices).
func (ns *nodeSet) pickLeastLoaded() (*registry.Node, error) {
	n := len(ns.nodes)
	switch n {
	case 0:
		return nil, ErrNoneAvailable
	case 1:
		return ns.nodes[0], nil
	}
	i, j := rand.IntN(n), rand.IntN(n-1)
	if j >= i {
		j++
	}
	if lighter(ns.loads[j], ns.loads[i], ns.clock) {
		i = j
	}
	return ns.nodes[i], nil
}

// hash returns a Next that walks the rendezvous ranking of key over the set, counting
// its picks in picks.
func (ns *nodeSet) hash(key string, picks *atomic.Uint32) Next {
	hk := keyHash(key)
	return func() (*registry.Node, error) {
		if len(ns.nodes) == 0 {
			return nil, ErrNoneAvailable
		}
		k := int(picks.Add(1)-1) % len(ns.nodes)
		return ns.nodes[ns.ranked(hk, k)], nil
	}
}

// ranked returns the index of the node ranked k-th (from 0) for the key hash hk: by
// score, highest first, ties by index. It takes O(k·n) time and allocates nothing; k is
// the number of retries so far.
func (ns *nodeSet) ranked(hk uint64, k int) int {
	prev, prevScore := -1, uint64(0)
	for r := 0; r <= k; r++ {
		best, bestScore := -1, uint64(0)
		for i, h := range ns.hashes {
			score := mix(hk ^ h)
			if prev >= 0 && !ranksBefore(prevScore, prev, score, i) {
				continue // ranked at or before the previous one
			}
			if best < 0 || ranksBefore(score, i, bestScore, best) {
				best, bestScore = i, score
			}
		}
		prev, prevScore = best, bestScore
	}
	return prev
}

// ranksBefore reports whether (score a, index i) ranks before (score b, index j).
func ranksBefore(a uint64, i int, b uint64, j int) bool { return a > b || (a == b && i < j) }

// counters hands out the pick counters of WithHashKey's Nexts from blocks of 64, so
// that the Next itself is the one allocation of such a Select.
type counters struct {
	mu   sync.Mutex
	free []atomic.Uint32
}

func (c *counters) get() *atomic.Uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free) == 0 {
		c.free = make([]atomic.Uint32, 64)
	}
	p := &c.free[0]
	c.free = c.free[1:]
	return p
}

// builtin names the strategies the registry selector implements itself.
type builtin uint8

const (
	custom builtin = iota
	random
	roundRobin
	leastLoaded
)

// builtinOf recognises Random, RoundRobin and LeastLoaded by their code. Any other
// strategy, closures included, is custom: called on every Select, as in Go Micro.
func builtinOf(s Strategy) builtin {
	switch reflect.ValueOf(s).Pointer() {
	case reflect.ValueOf(Random).Pointer():
		return random
	case reflect.ValueOf(RoundRobin).Pointer():
		return roundRobin
	case reflect.ValueOf(LeastLoaded).Pointer():
		return leastLoaded
	}
	return custom
}

// next returns the set's Next for b: the shared one when the set is shared.
func (ns *nodeSet) next(b builtin) Next {
	if ns.random != nil {
		switch b {
		case random:
			return ns.random
		case roundRobin:
			return ns.roundRobin
		case leastLoaded:
			return ns.leastLoaded
		}
	}
	switch b {
	case random:
		return ns.pickRandom
	case roundRobin:
		return ns.pickRoundRobin
	case leastLoaded:
		return ns.pickLeastLoaded
	}
	return nil
}
