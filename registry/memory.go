package registry

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"sort"
	"sync"
	"time"
)

type servicesKey struct{}

// Services preloads a memory registry with services, by name.
func Services(s map[string][]*Service) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, servicesKey{}, s)
	}
}

type memNode struct {
	node    *Node
	expires time.Time // zero: never
}

type memService struct {
	name, version string
	metadata      map[string]string
	endpoints     []*Endpoint
	nodes         map[string]*memNode
}

type memoryRegistry struct {
	mu       sync.Mutex
	opts     Options
	services map[string]map[string]*memService // name, version
	watchers map[*queueWatcher]struct{}
	timer    *time.Timer
	timerAt  time.Time
	// timerGen counts the timers armed and stopped: a timer whose function starts after
	// it was stopped or replaced (its Stop came too late) sees a newer generation and
	// leaves the current timer alone.
	timerGen uint64
}

// NewMemoryRegistry returns a registry held in this process's memory. Registrations with
// a TTL expire unless renewed, with a delete event to watchers. It uses no goroutine (a
// timer fires at the earliest expiry) and is safe for concurrent use.
func NewMemoryRegistry(opts ...Option) Registry {
	m := &memoryRegistry{
		opts:     *NewOptions(opts...),
		services: make(map[string]map[string]*memService),
		watchers: make(map[*queueWatcher]struct{}),
	}
	if pre, ok := m.opts.Context.Value(servicesKey{}).(map[string][]*Service); ok {
		for _, list := range pre {
			for _, s := range list {
				_ = m.Register(s)
			}
		}
	}
	return m
}

// Init applies opts; services given with Services are registered (again).
func (m *memoryRegistry) Init(opts ...Option) error {
	m.mu.Lock()
	for _, o := range opts {
		o(&m.opts)
	}
	ctx := m.opts.Context
	m.mu.Unlock()
	if ctx == nil {
		return nil
	}
	if pre, ok := ctx.Value(servicesKey{}).(map[string][]*Service); ok {
		for _, list := range pre {
			for _, s := range list {
				if err := m.Register(s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (m *memoryRegistry) Options() Options {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opts
}

func (m *memoryRegistry) String() string { return "memory" }

// Register adds or updates the service's nodes.
func (m *memoryRegistry) Register(s *Service, opts ...RegisterOption) error {
	if s == nil || s.Name == "" {
		return errors.New("registry: service has no name")
	}
	var o RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	var expires time.Time
	if o.TTL > 0 {
		expires = time.Now().Add(o.TTL)
	}
	m.mu.Lock()
	now := time.Now()
	m.expireLocked(now)
	versions := m.services[s.Name]
	if versions == nil {
		versions = make(map[string]*memService)
		m.services[s.Name] = versions
	}
	ms := versions[s.Version]
	action := ""
	if ms == nil {
		ms = &memService{name: s.Name, version: s.Version, nodes: make(map[string]*memNode)}
		versions[s.Version] = ms
		action = "create"
	}
	if !reflect.DeepEqual(ms.metadata, s.Metadata) || !reflect.DeepEqual(ms.endpoints, s.Endpoints) {
		if action == "" {
			action = "update"
		}
		ms.metadata = maps.Clone(s.Metadata)
		ms.endpoints = CopyService(&Service{Endpoints: s.Endpoints}).Endpoints
	}
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		old, ok := ms.nodes[n.Id]
		switch {
		case !ok:
			if action == "" {
				action = "create"
			}
		case old.node.Address != n.Address || !maps.Equal(old.node.Metadata, n.Metadata):
			if action == "" {
				action = "update"
			}
		}
		ms.nodes[n.Id] = &memNode{node: copyNode(n), expires: expires}
	}
	var events []*Result
	if action != "" {
		events = append(events, &Result{Action: action, Service: ms.snapshot(now)})
	}
	m.armLocked()
	m.notifyLocked(events)
	m.mu.Unlock()
	return nil
}

// snapshot returns a copy of the service with its live nodes.
func (ms *memService) snapshot(now time.Time) *Service {
	s := &Service{Name: ms.name, Version: ms.version, Metadata: maps.Clone(ms.metadata)}
	s.Endpoints = CopyService(&Service{Endpoints: ms.endpoints}).Endpoints
	ids := make([]string, 0, len(ms.nodes))
	for id, n := range ms.nodes {
		if n.expires.IsZero() || n.expires.After(now) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		s.Nodes = append(s.Nodes, copyNode(ms.nodes[id].node))
	}
	return s
}

// Deregister removes the service's nodes; a version without nodes is removed.
func (m *memoryRegistry) Deregister(s *Service, opts ...DeregisterOption) error {
	if s == nil {
		return errors.New("registry: nil service")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.services[s.Name][s.Version]
	if ms == nil {
		return nil
	}
	removed := &Service{Name: ms.name, Version: ms.version, Metadata: maps.Clone(ms.metadata)}
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		if old, ok := ms.nodes[n.Id]; ok {
			removed.Nodes = append(removed.Nodes, copyNode(old.node))
			delete(ms.nodes, n.Id)
		}
	}
	m.pruneLocked(ms)
	m.armLocked()
	if len(removed.Nodes) > 0 {
		m.notifyLocked([]*Result{{Action: "delete", Service: removed}})
	}
	return nil
}

func (m *memoryRegistry) pruneLocked(ms *memService) {
	if len(ms.nodes) > 0 {
		return
	}
	delete(m.services[ms.name], ms.version)
	if len(m.services[ms.name]) == 0 {
		delete(m.services, ms.name)
	}
}

// expireLocked removes expired nodes and tells watchers.
func (m *memoryRegistry) expireLocked(now time.Time) {
	var events []*Result
	for _, versions := range m.services {
		for _, ms := range versions {
			var gone []*Node
			for id, n := range ms.nodes {
				if !n.expires.IsZero() && !n.expires.After(now) {
					gone = append(gone, copyNode(n.node))
					delete(ms.nodes, id)
				}
			}
			if len(gone) > 0 {
				sort.Slice(gone, func(i, j int) bool { return gone[i].Id < gone[j].Id })
				events = append(events, &Result{Action: "delete", Service: &Service{Name: ms.name, Version: ms.version, Metadata: maps.Clone(ms.metadata), Nodes: gone}})
				m.pruneLocked(ms)
			}
		}
	}
	m.notifyLocked(events)
}

// armLocked sets the timer to the earliest expiry.
func (m *memoryRegistry) armLocked() {
	var next time.Time
	for _, versions := range m.services {
		for _, ms := range versions {
			for _, n := range ms.nodes {
				if !n.expires.IsZero() && (next.IsZero() || n.expires.Before(next)) {
					next = n.expires
				}
			}
		}
	}
	if next.IsZero() {
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
			m.timerGen++
		}
		return
	}
	if m.timer != nil && m.timerAt.Equal(next) {
		return
	}
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerGen++
	gen := m.timerGen
	m.timerAt = next
	m.timer = time.AfterFunc(time.Until(next), func() { m.onTimer(gen) })
}

// onTimer expires nodes and re-arms, if the timer of generation gen is still the
// current one. (Otherwise it was stopped or replaced while firing: had it cleared
// m.timer, the current timer would stay pending unreferenced and, firing, arm yet
// another, one more timer for every such race for as long as nodes have TTLs.)
func (m *memoryRegistry) onTimer(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.timerGen {
		return
	}
	m.timer = nil
	m.timerAt = time.Time{}
	m.expireLocked(time.Now())
	m.armLocked()
}

func (m *memoryRegistry) GetService(name string, opts ...GetOption) ([]*Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.expireLocked(now)
	versions := m.services[name]
	if len(versions) == 0 {
		return nil, ErrNotFound
	}
	out := make([]*Service, 0, len(versions))
	for _, ms := range versions {
		out = append(out, ms.snapshot(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

func (m *memoryRegistry) ListServices(opts ...ListOption) ([]*Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.expireLocked(now)
	var out []*Service
	for _, versions := range m.services {
		for _, ms := range versions {
			out = append(out, &Service{Name: ms.name, Version: ms.version, Metadata: maps.Clone(ms.metadata)})
		}
	}
	sortServices(out)
	return out, nil
}

// Watch returns a watcher of changes, in order. A watcher that falls more than 1024
// results behind is ended with ErrWatcherOverflow rather than losing results silently.
func (m *memoryRegistry) Watch(opts ...WatchOption) (Watcher, error) {
	var o WatchOptions
	for _, f := range opts {
		f(&o)
	}
	w := newQueueWatcher(o, func(w *queueWatcher) {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	})
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	w.stopWith(o.Context)
	return w, nil
}

// notifyLocked queues results for watchers; it never blocks.
func (m *memoryRegistry) notifyLocked(events []*Result) {
	if len(events) == 0 {
		return
	}
	for w := range m.watchers {
		if !w.push(events) {
			delete(m.watchers, w) // ended by overflow: nothing more to tell it
		}
	}
}

// Register registers s with DefaultRegistry.
func Register(s *Service, opts ...RegisterOption) error { return DefaultRegistry.Register(s, opts...) }

// Deregister deregisters s from DefaultRegistry.
func Deregister(s *Service) error { return DefaultRegistry.Deregister(s) }

// GetService looks name up in DefaultRegistry.
func GetService(name string) ([]*Service, error) { return DefaultRegistry.GetService(name) }

// ListServices lists DefaultRegistry's services.
func ListServices() ([]*Service, error) { return DefaultRegistry.ListServices() }

// Watch watches DefaultRegistry.
func Watch(opts ...WatchOption) (Watcher, error) { return DefaultRegistry.Watch(opts...) }

// String names DefaultRegistry's implementation.
func String() string { return DefaultRegistry.String() }
