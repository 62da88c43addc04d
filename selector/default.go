package selector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
)

// DefaultSelector is the selector of clients given none. Constructing it starts nothing.
var DefaultSelector = NewSelector()

type registrySelector struct {
	mu     sync.Mutex
	opts   Options
	cache  cache.Cache // built on first Select
	health health

	// now and base are the clock of load records: clock() is now() - base in ns.
	now  func() time.Time
	base time.Time

	smu    sync.RWMutex
	states map[string]*serviceState // by service

	picks    counters  // WithHashKey's pick counters
	selectOs sync.Pool // *SelectOptions, to apply a Select's options to
}

// NewSelector returns the registry selector: it reads Options.Registry (default
// registry.DefaultRegistry) through a registry/cache made on first use, and picks nodes
// with Options.Strategy (default Random). Nodes that Mark reports as unreachable or
// timing out are ejected for a while (see the outlier ejection rules). It implements
// Tracker: the load it learns of each node (kept for the nodes the registry lists, and
// forgotten when they leave) is what LeastLoaded picks by.
//
// Random, RoundRobin and LeastLoaded are recognised and run over node sets the selector
// keeps per cached service list: a Select without filters, while no node is ejected,
// allocates nothing, and RoundRobin takes turns across all Selects of a service, not
// per Select. Other strategies are called on every Select, as in Go Micro.
//
// It and the Nexts it returns are safe for concurrent use; Close stops its cache.
func NewSelector(opts ...Option) Selector {
	now := time.Now
	s := &registrySelector{health: health{now: now}, now: now, base: now()}
	s.selectOs.New = func() any { return new(SelectOptions) }
	s.opts = Options{Context: context.Background()}
	for _, o := range opts {
		o(&s.opts)
	}
	s.fill()
	return s
}

func (s *registrySelector) fill() {
	if s.opts.Registry == nil {
		s.opts.Registry = registry.DefaultRegistry
	}
	if s.opts.Strategy == nil {
		s.opts.Strategy = Random
	}
	if s.opts.Logger == nil {
		s.opts.Logger = logger.DefaultLogger
	}
	s.health.mu.Lock()
	s.health.after, s.health.first, s.health.most = s.opts.EjectAfter, s.opts.EjectFor, s.opts.EjectMax
	s.health.mu.Unlock()
}

// Init applies options; a new registry replaces the cache.
func (s *registrySelector) Init(opts ...Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.opts.Registry
	for _, o := range opts {
		o(&s.opts)
	}
	s.fill()
	if s.opts.Registry != old && s.cache != nil {
		s.cache.Stop()
		s.cache = nil
	}
	return nil
}

func (s *registrySelector) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

func (s *registrySelector) registry() (cache.Cache, Strategy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = cache.New(s.opts.Registry, cache.WithLogger(s.opts.Logger))
	}
	return s.cache, s.opts.Strategy
}

// Select returns a Next over the nodes of service that pass the filters and are not
// ejected.
func (s *registrySelector) Select(service string, opts ...SelectOption) (Next, error) {
	var so SelectOptions
	if len(opts) > 0 {
		// The options need a pointer that escapes: a pooled one, so that options cost
		// no allocation of their own.
		p := s.selectOs.Get().(*SelectOptions)
		for _, o := range opts {
			o(p)
		}
		so = *p
		*p = SelectOptions{}
		s.selectOs.Put(p)
	}
	c, strategy := s.registry()
	all, err := c.GetService(service)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			s.forget(service)
			return nil, ErrNotFound
		}
		return nil, err
	}
	st, set := s.state(service, all)
	services := s.health.filter(service, all, func(id string) bool { return s.busy(service, id) })
	for _, f := range so.Filters {
		services = f(services)
	}
	if !hasNodes(services) {
		return nil, ErrNoneAvailable
	}
	if so.Strategy != nil {
		strategy = so.Strategy
	}
	b := builtinOf(strategy)
	if b == custom && so.HashKey == "" {
		return strategy(services), nil
	}
	if !sameSlice(services, all) {
		set = s.filteredSet(st, services) // narrowed: a set of its own
	}
	if so.HashKey != "" {
		return set.hash(so.HashKey, s.picks.get()), nil
	}
	return set.next(b), nil
}

// Track counts an attempt on node in flight until done, and learns its latency; see
// Tracker. Nodes the selector does not list for service (addresses given to a call)
// are not tracked.
func (s *registrySelector) Track(service string, node *registry.Node) (done func(err error)) {
	if node == nil {
		return untracked
	}
	s.smu.RLock()
	var l *nodeLoad
	if st := s.states[service]; st != nil {
		l = st.loads[node.Id]
	}
	s.smu.RUnlock()
	if l == nil {
		return untracked
	}
	start := s.clock()
	l.begin()
	return func(err error) { l.end(start, s.clock(), err) }
}

func untracked(error) {}

// busy reports whether an attempt on the node is in flight.
func (s *registrySelector) busy(service, id string) bool {
	s.smu.RLock()
	defer s.smu.RUnlock()
	if st := s.states[service]; st != nil {
		if l := st.loads[id]; l != nil {
			return l.inflight.Load() > 0
		}
	}
	return false
}

// clock returns the time on the clock of load records, in ns.
func (s *registrySelector) clock() int64 { return int64(s.now().Sub(s.base)) }

// forget drops what the selector knows of a service the registry no longer has.
func (s *registrySelector) forget(service string) {
	s.smu.RLock()
	_, known := s.states[service]
	s.smu.RUnlock()
	if !known {
		return
	}
	s.smu.Lock()
	delete(s.states, service)
	s.smu.Unlock()
}

func hasNodes(services []*registry.Service) bool {
	for _, s := range services {
		if len(s.Nodes) > 0 {
			return true
		}
	}
	return false
}

// Mark records the outcome of a call to node: unreachable and timing-out nodes are
// ejected from selection for a while.
//
// A timeout counts towards ejection only when the node has answered nothing for
// aliveWindow: a node that keeps answering other calls is loaded, not gone, and ejecting
// it would pile its load on the others (LeastLoaded steers around slow nodes instead).
func (s *registrySelector) Mark(service string, node *registry.Node, err error) {
	if node != nil && isTimeout(err) {
		s.smu.RLock()
		var l *nodeLoad
		if st := s.states[service]; st != nil {
			l = st.loads[node.Id]
		}
		s.smu.RUnlock()
		if l != nil && l.answeredWithin(s.clock(), aliveWindow) {
			return
		}
	}
	s.health.mark(service, node, err)
}

// aliveWindow is how recently a node must have answered for its timeouts not to count
// towards ejection.
const aliveWindow = 200 * time.Millisecond

// Reset forgets the failures of service's nodes: every node is selectable again.
func (s *registrySelector) Reset(service string) { s.health.reset(service) }

// Close stops the cache.
func (s *registrySelector) Close() error {
	s.mu.Lock()
	c := s.cache
	s.cache = nil
	s.mu.Unlock()
	if c != nil {
		c.Stop()
	}
	return nil
}

func (s *registrySelector) String() string { return "registry" }
