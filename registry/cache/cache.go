// Package cache is a caching layer in front of any registry: lookups are served from
// memory, kept fresh by watching the registry, expired after a TTL, and served stale
// (with one logged warning per outage) while the registry is unreachable.
//
// An entry is trusted only while the cache's watch of the registry runs: when the watch
// fails, every entry is looked up again until a new watch runs. Concurrent misses of one
// service share one lookup.
package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
)

var (
	// DefaultTTL (one minute) is the TTL of caches made without WithTTL: how long a
	// looked-up service is trusted while no watch result arrives for it. Watch results
	// keep it fresh meanwhile.
	DefaultTTL = time.Minute
	// DefaultMinimumRetryInterval (5 s) is the retry interval of caches made without
	// WithMinimumRetryInterval: how long to wait after a failed lookup before asking the
	// registry again for the same service.
	DefaultMinimumRetryInterval = 5 * time.Second
)

// Cache is a registry with a cache in front: GetService answers from memory when it
// can; Register, Deregister, ListServices and Watch go to the registry. The services
// GetService returns are shared with other callers: treat them as read-only. A Cache
// is safe for concurrent use; Stop ends its watch.
type Cache interface {
	registry.Registry
	// Stop stops watching the registry and waits for the watch to end. Idempotent.
	Stop()
}

// Options configure a Cache.
type Options struct {
	// Logger receives the warning logged when stale entries are served. Default
	// logger.DefaultLogger.
	Logger logger.Logger
	// TTL is how long an entry is trusted without a watch result before a new lookup.
	// Default DefaultTTL; zero or less also means DefaultTTL.
	TTL time.Duration
	// MinimumRetryInterval is the least time between failed lookups of one service;
	// meanwhile the stale entry (or the last error) is returned. Default
	// DefaultMinimumRetryInterval; zero or less retries on every call.
	MinimumRetryInterval time.Duration
}

// Option sets a field of Options.
type Option func(*Options)

// WithTTL sets Options.TTL, the entry TTL (default DefaultTTL).
func WithTTL(t time.Duration) Option { return func(o *Options) { o.TTL = t } }

// WithLogger sets Options.Logger (default logger.DefaultLogger).
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithMinimumRetryInterval sets Options.MinimumRetryInterval, the least time between
// failed lookups of one service (default DefaultMinimumRetryInterval).
func WithMinimumRetryInterval(d time.Duration) Option {
	return func(o *Options) { o.MinimumRetryInterval = d }
}

type entry struct {
	services []*registry.Service // shared with callers: never modified in place
	fetched  time.Time
	failed   time.Time // last failed lookup
	err      error     // its error, returned while there is nothing stale to serve
	warned   bool      // a stale-serving warning was logged since the last success
}

type lookup struct {
	done chan struct{}
	res  []*registry.Service
	err  error
	// changed is set (under cache.mu) when a watch result for the name arrives during
	// the lookup, or the watch stops or starts again: the answer may predate a change it
	// will never be told of, so it is stored as already expired.
	changed bool
	// abandoned is set when the lookup failed after its caller's context ended: the
	// registry is not to blame, and waiters look up again.
	abandoned bool
}

type cache struct {
	registry.Registry
	opts Options

	mu       sync.RWMutex
	entries  map[string]*entry
	inflight map[string]*lookup

	watchOnce sync.Once
	stopOnce  sync.Once
	exit      chan struct{}
	done      chan struct{}
	watching  bool
	// watchOK is true while a registry watch is running: only then can entries be
	// trusted for the TTL; looked up without a watch, they count as expired at once.
	watchOK bool
}

// New returns a cache in front of r. It starts nothing until the first lookup, which
// starts a watch of r that runs until Stop.
func New(r registry.Registry, opts ...Option) Cache {
	o := Options{TTL: DefaultTTL, MinimumRetryInterval: DefaultMinimumRetryInterval, Logger: logger.DefaultLogger}
	for _, f := range opts {
		f(&o)
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = logger.DefaultLogger
	}
	return &cache{
		Registry: r,
		opts:     o,
		entries:  make(map[string]*entry),
		inflight: make(map[string]*lookup),
		exit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (c *cache) String() string { return "cache" }

// GetService returns the cached services of name. The returned slice and services are
// shared: callers must not modify them.
func (c *cache) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	now := time.Now()
	c.mu.RLock()
	e := c.entries[name]
	if e != nil && e.services != nil && now.Sub(e.fetched) < c.opts.TTL {
		s := e.services
		c.mu.RUnlock()
		return s, nil
	}
	c.mu.RUnlock()
	c.startWatch()
	return c.refresh(name, now, opts)
}

// maxWaits bounds how many abandoned lookups (see lookup.abandoned) a caller waits for
// before it gives up with the last one's error.
const maxWaits = 16

// refresh asks the registry for name, one lookup at a time per name. The caller's
// context (GetContext) bounds its wait and its own lookup; a lookup that ended with it
// is not taken for a registry failure.
func (c *cache) refresh(name string, now time.Time, opts []registry.GetOption) ([]*registry.Service, error) {
	var ctx context.Context
	if len(opts) > 0 {
		var o registry.GetOptions
		for _, f := range opts {
			f(&o)
		}
		ctx = o.Context
	}
	var cancelled <-chan struct{}
	if ctx != nil {
		cancelled = ctx.Done()
	}
	for waits := 0; ; waits++ {
		if ctx != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.mu.Lock()
		e := c.entries[name]
		if e != nil && e.services != nil && time.Since(e.fetched) < c.opts.TTL {
			// another caller refreshed it meanwhile
			s := e.services
			c.mu.Unlock()
			return s, nil
		}
		if e != nil && !e.failed.IsZero() && now.Sub(e.failed) < c.opts.MinimumRetryInterval {
			// The registry failed recently: do not hammer it.
			s := e.services
			c.mu.Unlock()
			if s != nil {
				return s, nil
			}
			return nil, e.err
		}
		if l, ok := c.inflight[name]; ok {
			c.mu.Unlock()
			select {
			case <-l.done:
			case <-cancelled:
				return nil, ctx.Err()
			}
			if l.abandoned && waits < maxWaits {
				continue // its caller gave up: look up again
			}
			return l.res, l.err
		}
		l := &lookup{done: make(chan struct{})}
		c.inflight[name] = l
		c.mu.Unlock()
		return c.lookup(ctx, name, l, opts)
	}
}

// lookup asks the registry for name on behalf of l's waiters and stores the answer.
func (c *cache) lookup(ctx context.Context, name string, l *lookup, opts []registry.GetOption) ([]*registry.Service, error) {
	res, err := c.Registry.GetService(name, opts...)

	c.mu.Lock()
	delete(c.inflight, name)
	e := c.entries[name]
	warn := false
	switch {
	case err == nil:
		fetched := time.Now()
		if !c.watchOK || l.changed {
			fetched = time.Time{}
		}
		c.entries[name] = &entry{services: res, fetched: fetched}
		l.res = res
	case ctx != nil && ctx.Err() != nil:
		// The caller's context ended: this says nothing of the registry.
		l.abandoned = true
		l.err = err
	case errors.Is(err, registry.ErrNotFound):
		delete(c.entries, name)
		l.err = err
	case e != nil && e.services != nil:
		e.failed = time.Now()
		warn = !e.warned
		e.warned = true
		l.res = e.services
	default:
		c.entries[name] = &entry{failed: time.Now(), err: err}
		l.err = err
	}
	c.mu.Unlock()
	close(l.done)
	if warn { // not under c.mu: the logger is the user's, and may block
		c.opts.Logger.Logf(logger.WarnLevel, "registry cache: lookup of %s failed, serving cached nodes: %v", name, err)
	}
	return l.res, l.err
}

// startWatch starts the watch goroutine once.
func (c *cache) startWatch() {
	c.watchOnce.Do(func() {
		c.mu.Lock()
		select {
		case <-c.exit: // stopped before first use
			c.mu.Unlock()
			return
		default:
		}
		c.watching = true
		c.mu.Unlock()
		// Watch before the first lookup, so no change between the two is missed.
		w, err := c.Registry.Watch()
		if err != nil {
			w = nil
		} else {
			c.mu.Lock()
			c.watchOK = true
			c.mu.Unlock()
		}
		go c.watch(w)
	})
}

// watch applies registry changes to cached entries until Stop, restarting the registry
// watch with backoff when it fails.
func (c *cache) watch(w registry.Watcher) {
	defer close(c.done)
	backoff := 10 * time.Millisecond
	for {
		var err error
		if w == nil {
			if w, err = c.Registry.Watch(); err == nil {
				c.setWatchOK(true)
			}
		}
		if err == nil {
			backoff = 10 * time.Millisecond
			stopped := make(chan struct{})
			go func() {
				select {
				case <-c.exit:
					w.Stop()
				case <-stopped:
				}
			}()
			for {
				r, err := w.Next()
				if err != nil {
					break
				}
				c.apply(r)
			}
			close(stopped)
			w.Stop()
			w = nil
			// Results may have been missed: look everything up again, and keep doing so
			// until a new watch runs.
			c.setWatchOK(false)
		}
		select {
		case <-c.exit:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// setWatchOK records whether a watch runs and expires every entry: those looked up
// before a new watch began may have missed changes. So may the answers of lookups under
// way, which are stored expired.
func (c *cache) setWatchOK(ok bool) {
	c.mu.Lock()
	c.watchOK = ok
	for _, e := range c.entries {
		e.fetched = time.Time{}
	}
	for _, l := range c.inflight {
		l.changed = true
	}
	c.mu.Unlock()
}

// apply applies one watch result to the cached entry of its service.
func (c *cache) apply(r *registry.Result) {
	if r == nil || r.Service == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.inflight[r.Service.Name]; l != nil {
		l.changed = true
	}
	e := c.entries[r.Service.Name]
	if e == nil || e.services == nil {
		return
	}
	var next []*registry.Service
	found := false
	for _, s := range e.services {
		if s.Version != r.Service.Version {
			next = append(next, s)
			continue
		}
		found = true
		ns := registry.CopyService(s)
		switch r.Action {
		case "delete":
			ns.Nodes = removeNodes(ns.Nodes, r.Service.Nodes)
		default:
			ns.Nodes = mergeNodes(ns.Nodes, r.Service.Nodes)
			if r.Service.Endpoints != nil {
				ns.Endpoints = registry.CopyService(r.Service).Endpoints
			}
			if r.Service.Metadata != nil {
				ns.Metadata = registry.CopyService(r.Service).Metadata
			}
		}
		if len(ns.Nodes) > 0 {
			next = append(next, ns)
		}
	}
	if !found && r.Action != "delete" {
		next = append(next, registry.CopyService(r.Service))
	}
	if len(next) == 0 {
		delete(c.entries, r.Service.Name)
		return
	}
	e.services = next
	// A fresh entry plus every result since is the registry's state: it stays fresh. An
	// expired one may lack results that arrived before it was stored, so it stays expired
	// and the next lookup asks the registry.
	if now := time.Now(); now.Sub(e.fetched) < c.opts.TTL {
		e.fetched = now
	}
}

func removeNodes(have, gone []*registry.Node) []*registry.Node {
	out := have[:0:0]
	for _, n := range have {
		keep := true
		for _, g := range gone {
			if g.Id == n.Id {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

func mergeNodes(have, add []*registry.Node) []*registry.Node {
	out := append([]*registry.Node(nil), have...)
	for _, a := range add {
		replaced := false
		for i, n := range out {
			if n.Id == a.Id {
				out[i] = registry.CopyService(&registry.Service{Nodes: []*registry.Node{a}}).Nodes[0]
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, registry.CopyService(&registry.Service{Nodes: []*registry.Node{a}}).Nodes[0])
		}
	}
	return out
}

// Stop ends the watch and waits for it.
func (c *cache) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		close(c.exit)
		watching := c.watching
		c.mu.Unlock()
		if watching {
			<-c.done
		}
	})
}
