// Package etcd is a registry backed by etcd (v3 API), through go.etcd.io/etcd/client/v3.
//
// # Layout
//
// Each node is one key, /micro/registry/<service>/<node id>, with slashes in the service
// name and the node id replaced by "-". Its value is the JSON of a registry.Service
// holding that one node, with the service's version, metadata and endpoints: the layout of
// Go Micro's etcd registry, so both can share a cluster. Lookups group the nodes of a name
// by version, one *registry.Service per version.
//
// # Leases
//
// A registration with a TTL is attached to an etcd lease of that many seconds (rounded up,
// at least 1); a TTL of 0 attaches none, and the key stays until Deregister. The lease is
// renewed by registering again before it runs out, as a server does every
// RegisterInterval: an unchanged re-registration costs one lease renewal and no write, a
// changed one writes the key too, and a lease etcd no longer knows (it expired, for
// example while etcd was unreachable for longer than the TTL) is replaced by a new one
// and the key written again. No goroutine renews leases in the background: a process that
// dies, or stops re-registering, disappears after its TTL, and watchers see a delete. (A
// key deleted by another client while its lease lives is written again only when the
// node changes or its lease is lost: unchanged re-registrations do not read it back.)
//
// # Connection and lifecycle
//
// NewEtcdRegistry neither blocks nor starts anything; the first call connects, and every
// call is bounded by the registry's Timeout (default 5 s), so an unreachable etcd gives an
// error within it, matchable with errors.Is(err, context.DeadlineExceeded). The registry
// implements io.Closer: Close ends its watchers and its connection (registrations are left
// to expire). A registry is safe for concurrent use.
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/seed-b3892490/micro/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	// DefaultAddress is the etcd endpoint used when no registry.Addrs is given.
	DefaultAddress = "127.0.0.1:2379"
	// DefaultTimeout bounds each call when registry.Timeout is not given (or not positive).
	DefaultTimeout = 5 * time.Second
	// MaxEntrySize is the largest encoded node entry (key and JSON value) Register writes;
	// etcd itself refuses requests over 1.5 MiB by default.
	MaxEntrySize = 1 << 20
	// Prefix is the key prefix under which nodes are stored.
	Prefix = "/micro/registry/"

	defaultPort = "2379"
	// keepAliveTime is how often an idle connection is probed, so that a dead one is
	// replaced; etcd refuses probes more often than every 5 s.
	keepAliveTime = 10 * time.Second
)

var (
	// ErrInvalidService is returned (wrapped, with the reason) by Register and Deregister
	// for a service they cannot store: nil, without a name or nodes, a node without an id,
	// invalid UTF-8 in a name or id, or an entry larger than MaxEntrySize.
	ErrInvalidService = errors.New("registry/etcd: invalid service")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("registry/etcd: registry closed")
)

// nodeState is what the registry knows about a node it registered: its lease and the hash
// of the value last written. mu serialises the registrations of the node.
type nodeState struct {
	mu     sync.Mutex
	lease  clientv3.LeaseID // 0: none
	ttl    int64            // of lease, in seconds
	hash   uint64           // of the value written, valid when stored
	stored bool
}

// conn is the registry's connection to etcd and what calls on it need.
type conn struct {
	cli     *clientv3.Client
	timeout time.Duration
	at      string // the endpoints, for error messages
}

type etcdRegistry struct {
	connMu sync.Mutex // serialises connecting

	mu       sync.Mutex
	opts     registry.Options
	conn     *conn // nil until the first call, and after Init
	gen      int   // counts Inits: a connection made with older options is dropped
	closed   bool
	watchers map[*watcher]struct{}

	nodesMu sync.Mutex
	nodes   map[string]*nodeState // by key
}

// NewEtcdRegistry returns a registry stored in etcd. Options: registry.Addrs (default
// DefaultAddress; an address without a port gets 2379), registry.Timeout (default
// DefaultTimeout), registry.Secure and registry.TLSConfig (TLS with the system's roots
// when Secure is set without a config), Auth and LogConfig. It connects on first use,
// implements io.Closer, and is safe for concurrent use; see the package documentation.
func NewEtcdRegistry(opts ...registry.Option) registry.Registry {
	defaults := []registry.Option{registry.Addrs(DefaultAddress), registry.Timeout(DefaultTimeout)}
	return &etcdRegistry{
		opts:     *registry.NewOptions(append(defaults, opts...)...),
		watchers: make(map[*watcher]struct{}),
		nodes:    make(map[string]*nodeState),
	}
}

// NewRegistry is NewEtcdRegistry, under the name Go Micro's plugins use.
func NewRegistry(opts ...registry.Option) registry.Registry { return NewEtcdRegistry(opts...) }

// Init applies opts. The current connection, if any, is closed (calls in flight on it
// fail, and watchers end with an error) and the next call connects with the new options.
func (r *etcdRegistry) Init(opts ...registry.Option) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	for _, o := range opts {
		o(&r.opts)
	}
	r.gen++
	old := r.conn
	r.conn = nil
	r.mu.Unlock()
	if old != nil {
		_ = old.cli.Close()
	}
	return nil
}

// Options returns the registry's options.
func (r *etcdRegistry) Options() registry.Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

// String returns "etcd".
func (r *etcdRegistry) String() string { return "etcd" }

// Close stops the registry's watchers and closes its connection; later calls return
// ErrClosed. Registrations are not removed: they expire with their leases. It is
// idempotent.
func (r *etcdRegistry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	c := r.conn
	r.conn = nil
	watchers := make([]*watcher, 0, len(r.watchers))
	for w := range r.watchers {
		watchers = append(watchers, w)
	}
	r.mu.Unlock()
	for _, w := range watchers {
		w.Stop()
	}
	if c == nil {
		return nil
	}
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("registry/etcd: close: %w", err)
	}
	return nil
}

// client returns the connection, connecting if there is none.
func (r *etcdRegistry) client() (*conn, error) {
	r.mu.Lock()
	c, closed := r.conn, r.closed
	r.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case c != nil:
		return c, nil
	}

	r.connMu.Lock()
	defer r.connMu.Unlock()
	for {
		r.mu.Lock()
		c, closed, opts, gen := r.conn, r.closed, r.opts, r.gen
		r.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case c != nil:
			return c, nil
		}
		cfg := clientConfig(opts)
		at := strings.Join(cfg.Endpoints, ",")
		// Without Auth, New does not block; with it, it authenticates within DialTimeout.
		cli, err := clientv3.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("registry/etcd: connect to %s: %w", at, err)
		}
		c = &conn{cli: cli, timeout: timeoutOf(opts), at: at}
		r.mu.Lock()
		closed, current := r.closed, r.gen == gen
		if !closed && current {
			r.conn = c
		}
		r.mu.Unlock()
		if !closed && current {
			return c, nil
		}
		_ = cli.Close() // closed, or Init changed the options meanwhile
	}
}

// errorf returns an error of a call to etcd: the message, where etcd was, and err.
func (c *conn) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("registry/etcd: %s at %s: %w", fmt.Sprintf(format, args...), c.at, err)
}

func timeoutOf(o registry.Options) time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// clientConfig turns registry options into an etcd client configuration.
func clientConfig(o registry.Options) clientv3.Config {
	timeout := timeoutOf(o)
	cfg := clientv3.Config{
		DialTimeout:          timeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: timeout,
		Logger:               zap.NewNop(),
	}
	for _, a := range o.Addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			if _, _, err := net.SplitHostPort(a); err != nil {
				a = net.JoinHostPort(strings.Trim(a, "[]"), defaultPort)
			}
		}
		cfg.Endpoints = append(cfg.Endpoints, a)
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{DefaultAddress}
	}
	switch {
	case o.TLSConfig != nil:
		cfg.TLS = o.TLSConfig.Clone()
	case o.Secure:
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c, ok := authOf(o); ok {
		cfg.Username, cfg.Password = c.username, c.password
	}
	if lc := logConfigOf(o); lc != nil {
		cfg.Logger, cfg.LogConfig = nil, lc
	}
	return cfg
}

// callContext returns the context of one call: parent (Background when nil) bounded by
// the timeout.
func callContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, timeout)
}

// escape makes a service name or node id usable as one key segment.
func escape(s string) string { return strings.ReplaceAll(s, "/", "-") }

func servicePrefix(name string) string { return Prefix + escape(name) + "/" }

func nodeKey(name, id string) string { return servicePrefix(name) + escape(id) }

// ttlSeconds is the lease TTL of a registration: whole seconds, rounded up, at least 1;
// 0 for none.
func ttlSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(1, int64((d+time.Second-1)/time.Second))
}

// check validates a service for Register (nodes required) or Deregister.
func check(s *registry.Service, needNodes bool) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil service", ErrInvalidService)
	case s.Name == "":
		return fmt.Errorf("%w: service has no name", ErrInvalidService)
	case !utf8.ValidString(s.Name):
		return fmt.Errorf("%w: service name %q is not valid UTF-8", ErrInvalidService, s.Name)
	}
	nodes := 0
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		nodes++
		if n.Id == "" {
			return fmt.Errorf("%w: a node of %s has no id", ErrInvalidService, s.Name)
		}
		if !utf8.ValidString(n.Id) {
			return fmt.Errorf("%w: node id %q of %s is not valid UTF-8", ErrInvalidService, n.Id, s.Name)
		}
	}
	if needNodes && nodes == 0 {
		return fmt.Errorf("%w: service %s has no nodes", ErrInvalidService, s.Name)
	}
	return nil
}

// encode returns the key and value of one node of s.
func encode(s *registry.Service, n *registry.Node) (string, []byte, error) {
	key := nodeKey(s.Name, n.Id)
	val, err := json.Marshal(&registry.Service{
		Name:      s.Name,
		Version:   s.Version,
		Metadata:  s.Metadata,
		Endpoints: s.Endpoints,
		Nodes:     []*registry.Node{n},
	})
	if err != nil {
		return "", nil, fmt.Errorf("%w: encode node %s of %s: %v", ErrInvalidService, n.Id, s.Name, err)
	}
	if size := len(key) + len(val); size > MaxEntrySize {
		return "", nil, fmt.Errorf("%w: node %s of %s is %d bytes encoded, more than the %d allowed", ErrInvalidService, n.Id, s.Name, size, MaxEntrySize)
	}
	return key, val, nil
}

// decode parses a stored value: a service with exactly one node that has an id.
func decode(val []byte) (*registry.Service, error) {
	var s registry.Service
	if err := json.Unmarshal(val, &s); err != nil {
		return nil, err
	}
	if s.Name == "" || len(s.Nodes) != 1 || s.Nodes[0] == nil || s.Nodes[0].Id == "" {
		return nil, errors.New("registry/etcd: not a node entry")
	}
	return &s, nil
}

func hashOf(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// lockNode returns the locked state of the node at key, creating it if needed.
func (r *etcdRegistry) lockNode(key string) *nodeState {
	for {
		r.nodesMu.Lock()
		st := r.nodes[key]
		if st == nil {
			st = &nodeState{}
			r.nodes[key] = st
		}
		r.nodesMu.Unlock()
		st.mu.Lock()
		r.nodesMu.Lock()
		current := r.nodes[key] == st
		r.nodesMu.Unlock()
		if current {
			return st
		}
		st.mu.Unlock() // removed by a Deregister meanwhile
	}
}

// forgetNode drops the state of the node at key; the caller holds st.mu.
func (r *etcdRegistry) forgetNode(key string, st *nodeState) {
	r.nodesMu.Lock()
	if r.nodes[key] == st {
		delete(r.nodes, key)
	}
	r.nodesMu.Unlock()
}

// Register stores each node of s, with a lease of the TTL given by registry.RegisterTTL
// (none by default). See the package documentation for how leases are renewed. The call
// is bounded by the registry's Timeout and by registry.RegisterContext.
func (r *etcdRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if err := check(s, true); err != nil {
		return err
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	type entry struct {
		key string
		val []byte
	}
	entries := make([]entry, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		key, val, err := encode(s, n)
		if err != nil {
			return err
		}
		entries = append(entries, entry{key, val})
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext(o.Context, c.timeout)
	defer cancel()
	ttl := ttlSeconds(o.TTL)
	var errs []error
	for _, e := range entries {
		if err := r.registerNode(ctx, c, e.key, e.val, ttl); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// registerNode stores one node with a lease of ttl seconds (none for 0), renewing the
// node's lease when it has a live one of that TTL and writing only what changed.
func (r *etcdRegistry) registerNode(ctx context.Context, c *conn, key string, val []byte, ttl int64) error {
	cli := c.cli
	h := hashOf(val)
	st := r.lockNode(key)
	defer st.mu.Unlock()

	if ttl == 0 {
		if st.lease == 0 && st.stored && st.hash == h {
			return nil
		}
		if _, err := cli.Put(ctx, key, string(val)); err != nil {
			st.stored = false
			return c.errorf(err, "register %s", key)
		}
		old := st.lease
		st.lease, st.ttl, st.hash, st.stored = 0, 0, h, true
		if old != 0 {
			// The key no longer uses the old lease: revoking it deletes nothing.
			revoke(ctx, cli, old)
		}
		return nil
	}

	if st.lease != 0 && st.ttl == ttl {
		_, err := cli.KeepAliveOnce(ctx, st.lease)
		switch {
		case err == nil:
			if st.stored && st.hash == h {
				return nil
			}
			if _, err := cli.Put(ctx, key, string(val), clientv3.WithLease(st.lease)); err != nil {
				st.stored = false
				return c.errorf(err, "register %s", key)
			}
			st.hash, st.stored = h, true
			return nil
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			// Expired, and its key deleted with it: start again with a new lease.
			st.lease, st.stored = 0, false
		default:
			return c.errorf(err, "renew the lease of %s", key)
		}
	}

	grant, err := cli.Grant(ctx, ttl)
	if err != nil {
		return c.errorf(err, "grant a lease for %s", key)
	}
	old := st.lease
	st.lease, st.ttl, st.stored = grant.ID, ttl, false
	if _, err := cli.Put(ctx, key, string(val), clientv3.WithLease(grant.ID)); err != nil {
		return c.errorf(err, "register %s", key)
	}
	st.hash, st.stored = h, true
	if old != 0 {
		revoke(ctx, cli, old) // a lease of another TTL, which the key no longer uses
	}
	return nil
}

// revoke revokes a lease the registry no longer uses. Failing is harmless: the lease then
// expires with its TTL.
func revoke(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID) {
	_, _ = cli.Revoke(ctx, id)
}

// Deregister deletes the keys of s's nodes and revokes their leases. The version of s is
// not compared: a node id is deleted whatever version it was registered with. The call
// is bounded by the registry's Timeout and by registry.DeregisterContext.
func (r *etcdRegistry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	if err := check(s, false); err != nil {
		return err
	}
	var o registry.DeregisterOptions
	for _, f := range opts {
		f(&o)
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext(o.Context, c.timeout)
	defer cancel()
	var errs []error
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		key := nodeKey(s.Name, n.Id)
		st := r.lockNode(key)
		if _, err := c.cli.Delete(ctx, key); err != nil {
			st.mu.Unlock()
			errs = append(errs, c.errorf(err, "deregister %s", key))
			continue
		}
		if st.lease != 0 {
			revoke(ctx, c.cli, st.lease)
		}
		r.forgetNode(key, st)
		st.mu.Unlock()
	}
	return errors.Join(errs...)
}

// GetService returns the nodes registered under name, one *registry.Service per version
// (sorted by version, nodes by id), or registry.ErrNotFound. Entries that are not valid
// node entries are skipped. The call is bounded by the registry's Timeout and by
// registry.GetContext.
func (r *etcdRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	if name == "" {
		return nil, registry.ErrNotFound
	}
	c, err := r.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := callContext(o.Context, c.timeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, servicePrefix(name), clientv3.WithPrefix())
	if err != nil {
		return nil, c.errorf(err, "get %s", name)
	}
	type version struct {
		svc *registry.Service
		rev int64 // of the entry whose metadata and endpoints svc holds
	}
	versions := make(map[string]*version)
	for _, kv := range resp.Kvs {
		s, err := decode(kv.Value)
		if err != nil || s.Name != name {
			continue
		}
		v := versions[s.Version]
		if v == nil {
			v = &version{svc: &registry.Service{Name: s.Name, Version: s.Version}}
			versions[s.Version] = v
		}
		if v.rev < kv.ModRevision {
			// the latest registration describes the service
			v.rev = kv.ModRevision
			v.svc.Metadata, v.svc.Endpoints = s.Metadata, s.Endpoints
		}
		v.svc.Nodes = append(v.svc.Nodes, s.Nodes[0])
	}
	if len(versions) == 0 {
		return nil, registry.ErrNotFound
	}
	out := make([]*registry.Service, 0, len(versions))
	for _, v := range versions {
		sort.Slice(v.svc.Nodes, func(i, j int) bool { return v.svc.Nodes[i].Id < v.svc.Nodes[j].Id })
		out = append(out, v.svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// ListServices returns one entry per service name and version, with the service's
// metadata and no nodes, sorted by name then version. The call is bounded by the
// registry's Timeout and by registry.ListContext.
func (r *etcdRegistry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	c, err := r.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := callContext(o.Context, c.timeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, c.errorf(err, "list")
	}
	type version struct {
		svc *registry.Service
		rev int64
	}
	type id struct{ name, version string }
	seen := make(map[id]*version)
	for _, kv := range resp.Kvs {
		s, err := decode(kv.Value)
		if err != nil {
			continue
		}
		k := id{s.Name, s.Version}
		v := seen[k]
		if v == nil {
			v = &version{svc: &registry.Service{Name: s.Name, Version: s.Version}}
			seen[k] = v
		}
		if v.rev < kv.ModRevision {
			v.rev = kv.ModRevision
			v.svc.Metadata = s.Metadata
		}
	}
	out := make([]*registry.Service, 0, len(seen))
	for _, v := range seen {
		out = append(out, v.svc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}
