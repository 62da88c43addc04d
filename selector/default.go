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
}

// NewSelector returns the registry selector: it reads Options.Registry (default
// registry.DefaultRegistry) through a registry/cache made on first use, and picks nodes
// with Options.Strategy (default Random). Nodes that Mark reports as unreachable or
// timing out are ejected for a while (see the outlier ejection rules). It is safe for
// concurrent use; Close stops its cache.
func NewSelector(opts ...Option) Selector {
	s := &registrySelector{health: health{now: time.Now}}
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

// Select returns a Next over the nodes of service that pass the filters.
func (s *registrySelector) Select(service string, opts ...SelectOption) (Next, error) {
	var so SelectOptions
	if len(opts) > 0 {
		// Options are applied to a heap copy only when there are any: a plain Select
		// then allocates nothing but its Next.
		p := new(SelectOptions)
		for _, o := range opts {
			o(p)
		}
		so = *p
	}
	c, strategy := s.registry()
	services, err := c.GetService(service)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	services = s.health.filter(service, services)
	for _, f := range so.Filters {
		services = f(services)
	}
	if !hasNodes(services) {
		return nil, ErrNoneAvailable
	}
	if so.HashKey != "" {
		return Hash(so.HashKey)(services), nil
	}
	if so.Strategy != nil {
		strategy = so.Strategy
	}
	return strategy(services), nil
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
func (s *registrySelector) Mark(service string, node *registry.Node, err error) {
	s.health.mark(service, node, err)
}

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
