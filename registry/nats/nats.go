// Package nats is a registry over plain NATS subjects (core NATS, no JetStream). There is
// no central store: every registry instance holds its own registrations, answers lookups
// for them, and announces their changes to watchers.
//
// # Messages
//
// The messages are those of Go Micro's registry/nats, which should let instances of both
// share a deployment (not tested against Go Micro itself):
//
//   - A lookup publishes a query on QueryTopic (default "micro.nats.query"): JSON of a
//     registry.Result with Action "get" and the service's name, or "list", and a reply
//     inbox. Every instance answers with one JSON registry.Service per version it holds,
//     with its live nodes (split into several messages if one would exceed the server's
//     max payload).
//   - Register publishes, for each node, an announcement on WatchTopic (default
//     "micro.nats.watch"): JSON of a registry.Result whose Service holds that node, with
//     Action RegisterAction (default "create"). Deregister publishes Action "delete".
//   - Nodes carry one field more than Go Micro's, "ttl": the milliseconds until the node
//     expires unless renewed (0 or absent: never). Go Micro ignores it.
//
// # TTL and expiry
//
// A node registered with registry.RegisterTTL expires TTL after its last Register;
// registering it again renews it (a server re-registers every RegisterInterval). Its
// owner stops answering for it once it expires, and a process that died answers nothing,
// so lookups lose it at once. Each Watcher keeps a table of the nodes it has seen (from
// announcements, and from one lookup it makes when it starts) with their expiry, and
// reports "delete" when a node's TTL passes without a renewal: a crashed node leaves
// watchers, and the registry/cache of clients, within its TTL of its last renewal. A
// node registered without a TTL never expires: it leaves lookups when its process dies
// but stays in watchers' tables and caches until it is deregistered, so give servers a
// TTL. Watchers report "create" for a node they have not seen, "update" when its address,
// metadata or its service's metadata or endpoints change, nothing for a renewal, and
// "delete". A watcher that falls more than 1024 results (or 4096 messages) behind ends
// with registry.ErrWatcherOverflow rather than losing results silently.
//
// # Costs
//
// A lookup (GetService, ListServices) publishes one query and collects answers for
// Timeout (default 100 ms), so it takes Timeout unless Quorum ends it sooner: put a
// registry/cache in front (selectors do). Every instance receives every query, and every
// watcher every announcement. Register and Deregister publish one message per node and
// wait for the server to confirm (one round trip, at most 1 s or the call's context
// deadline). Watch subscribes, makes one lookup in the background to learn the nodes that
// exist, and waits for the server to confirm the subscription.
//
// # Connection
//
// The registry connects on first use, to registry.Addrs (default nats://127.0.0.1:4222);
// a connection attempt that does not complete within Timeout fails with an error matching
// ErrUnavailable and leaves nothing running. NATS reconnects by itself after a
// disconnection; if it gives up, the next call connects again. The value returned by
// NewNatsRegistry also implements io.Closer: Close deregisters what the instance still
// holds, stops its watchers and closes the connection.
//
// The registry is safe for concurrent use.
package nats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
)

// The errors of the registry, matched with errors.Is.
var (
	// ErrInvalidService is returned for a nil service or one without a name.
	ErrInvalidService = errors.New("nats registry: service is nil or has no name")
	// ErrInvalidOption is returned by every call of a registry given an invalid option,
	// and by Init.
	ErrInvalidOption = errors.New("nats registry: invalid option")
	// ErrTooLarge is returned by Register when a node's announcement exceeds the NATS
	// server's max payload (1 MiB by default).
	ErrTooLarge = errors.New("nats registry: message exceeds the NATS max payload")
	// ErrUnavailable is returned when NATS cannot be reached, the connection is down, or
	// the server did not confirm a write in time.
	ErrUnavailable = errors.New("nats registry: NATS unavailable")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("nats registry: closed")
)

const (
	// writeTimeout bounds the wait for the server to confirm a Register, Deregister or
	// Watch when the call's context has no earlier deadline.
	writeTimeout = time.Second
	// queryBuffer is how many queries an instance holds before NATS drops new ones.
	queryBuffer = 4096
)

type localNode struct {
	node    *registry.Node
	expires time.Time // zero: never
}

type localVersion struct {
	metadata  map[string]string
	endpoints []*registry.Endpoint
	nodes     map[string]*localNode
}

type natsRegistry struct {
	mu       sync.Mutex
	opts     registry.Options
	cfg      config
	err      error                               // of the options: returned by every call
	local    map[string]map[string]*localVersion // name, version
	watchers map[*watcher]struct{}
	closed   bool

	// pubMu orders changes of the registrations with their announcements, and answers
	// with announcements: a watcher learning nodes from answers misses no change.
	pubMu sync.Mutex

	connMu sync.Mutex // held while connecting
	conn   *connection
}

// connection is one NATS connection, with two goroutines: the responder answering
// queries, and the router passing replies to the lookups waiting for them.
type connection struct {
	nc          *nats.Conn
	cfg         config
	querySub    *nats.Subscription
	replySub    *nats.Subscription
	replyPrefix string        // a lookup's replies come to replyPrefix + its token
	lost        chan struct{} // closed when the NATS connection has closed
	lostOnce    sync.Once
	stop        chan struct{} // closed to stop the goroutines
	stopOnce    sync.Once
	wg          sync.WaitGroup

	mu      sync.Mutex
	lookups map[string]*pending // by token
	tokens  uint64
}

// pending holds the replies of one lookup until it reads them.
type pending struct {
	mu    sync.Mutex
	msgs  [][]byte
	bytes int
	wake  chan struct{}
}

// maxReplyBytes bounds what one lookup accepts; later replies are dropped.
const maxReplyBytes = 64 << 20

func (p *pending) add(data []byte) {
	p.mu.Lock()
	if p.bytes+len(data) <= maxReplyBytes {
		p.msgs = append(p.msgs, data)
		p.bytes += len(data)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pending) take() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	msgs := p.msgs
	p.msgs = nil
	return msgs
}

// NewNatsRegistry returns a registry over NATS (see the package documentation). It
// connects on first use; invalid options make every call return an error matching
// ErrInvalidOption. The returned value implements io.Closer.
func NewNatsRegistry(opts ...registry.Option) registry.Registry {
	r := &natsRegistry{
		opts:     *registry.NewOptions(append([]registry.Option{registry.Timeout(DefaultTimeout)}, opts...)...),
		local:    make(map[string]map[string]*localVersion),
		watchers: make(map[*watcher]struct{}),
	}
	r.cfg, r.err = newConfig(r.opts)
	return r
}

// NewRegistry is NewNatsRegistry, under Go Micro's older name.
func NewRegistry(opts ...registry.Option) registry.Registry { return NewNatsRegistry(opts...) }

// Init applies opts, if they are valid together with the earlier ones. Lookup settings
// (Timeout, Quorum, RegisterAction) apply at once; connection settings (addresses, TLS,
// NatsOptions, topics) apply to the next connection.
func (r *natsRegistry) Init(opts ...registry.Option) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.opts
	for _, f := range opts {
		f(&o)
	}
	cfg, err := newConfig(o)
	if err != nil {
		return err
	}
	r.opts, r.cfg, r.err = o, cfg, nil
	return nil
}

// Options returns the registry's options.
func (r *natsRegistry) Options() registry.Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

// String returns "nats".
func (r *natsRegistry) String() string { return "nats" }

func (r *natsRegistry) settings() (config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return config{}, ErrClosed
	}
	return r.cfg, r.err
}

func (r *natsRegistry) logger() logger.Logger {
	r.mu.Lock()
	defer r.mu.Unlock()
	return logger.LoggerOrDefault(r.opts.Logger)
}

// connect returns the connection, making it if there is none or NATS closed it.
func (r *natsRegistry) connect() (*connection, error) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	cfg, err := r.settings()
	if err != nil {
		return nil, err
	}
	if c := r.conn; c != nil {
		if !c.nc.IsClosed() {
			return c, nil
		}
		c.shutdown()
		r.conn = nil
	}
	c, err := dial(cfg, r.logger())
	if err != nil {
		return nil, err
	}
	if err := r.start(c); err != nil {
		c.shutdown()
		c.nc.Close()
		return nil, err
	}
	r.conn = c
	return c, nil
}

func dial(cfg config, log logger.Logger) (*connection, error) {
	c := &connection{cfg: cfg, lost: make(chan struct{}), stop: make(chan struct{}), lookups: make(map[string]*pending)}
	nopts := cfg.nopts
	d := &boundedDialer{timeout: cfg.timeout, inner: nopts.CustomDialer}
	d.connectBy.Store(time.Now().Add(cfg.timeout).UnixNano())
	nopts.CustomDialer = d
	userClosed := nopts.ClosedCB
	nopts.ClosedCB = func(nc *nats.Conn) {
		c.lostOnce.Do(func() { close(c.lost) })
		if userClosed != nil {
			userClosed(nc)
		}
	}
	if nopts.AsyncErrorCB == nil {
		nopts.AsyncErrorCB = func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Logf(logger.WarnLevel, "nats registry: subject %q: %v", subject, err)
		}
	}
	nc, err := nopts.Connect()
	d.connectBy.Store(0)
	if err != nil {
		if derr := d.failure(); derr != nil && errors.Is(err, nats.ErrNoServers) {
			// nats reports only that no server was left: say why the last one failed
			return nil, fmt.Errorf("%w: connect to %s (timeout %s): %w: %w", ErrUnavailable, strings.Join(nopts.Servers, ","), cfg.timeout, err, derr)
		}
		return nil, fmt.Errorf("%w: connect to %s (timeout %s): %w", ErrUnavailable, strings.Join(nopts.Servers, ","), cfg.timeout, err)
	}
	c.nc = nc
	return c, nil
}

// start subscribes c to queries and to the replies of its lookups, and starts the
// goroutines that handle them, stopped by shutdown or the end of the connection.
func (r *natsRegistry) start(c *connection) error {
	queries := make(chan *nats.Msg, queryBuffer)
	var err error
	if c.querySub, err = c.nc.ChanSubscribe(c.cfg.queryTopic, queries); err != nil {
		return fmt.Errorf("%w: subscribe to %s: %w", ErrUnavailable, c.cfg.queryTopic, err)
	}
	replies := make(chan *nats.Msg, queryBuffer)
	c.replyPrefix = c.nc.NewInbox() + "."
	if c.replySub, err = c.nc.ChanSubscribe(c.replyPrefix+"*", replies); err != nil {
		return fmt.Errorf("%w: subscribe to %s*: %w", ErrUnavailable, c.replyPrefix, err)
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case m := <-queries:
				r.answer(c, m)
			case <-c.stop:
				return
			case <-c.lost:
				return
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		for {
			select {
			case m := <-replies:
				c.mu.Lock()
				p := c.lookups[strings.TrimPrefix(m.Subject, c.replyPrefix)]
				c.mu.Unlock()
				if p != nil {
					p.add(m.Data)
				}
			case <-c.stop:
				return
			case <-c.lost:
				return
			}
		}
	}()
	return nil
}

// shutdown stops c's goroutines, waits for them and unsubscribes.
func (c *connection) shutdown() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
	if c.querySub != nil {
		_ = c.querySub.Unsubscribe()
	}
	if c.replySub != nil {
		_ = c.replySub.Unsubscribe()
	}
}

// await returns the reply subject of a new lookup and where its replies go.
func (c *connection) await() (string, *pending) {
	p := &pending{wake: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens++
	token := strconv.FormatUint(c.tokens, 36)
	c.lookups[token] = p
	return token, p
}

func (c *connection) forget(token string) {
	c.mu.Lock()
	delete(c.lookups, token)
	c.mu.Unlock()
}

// maxPayload returns the server's limit (NATS's default before the first connect).
func (c *connection) maxPayload() int64 {
	if m := c.nc.MaxPayload(); m > 0 {
		return m
	}
	return 1 << 20
}

// flush waits for the server to confirm what was published, within ctx and writeTimeout.
func (c *connection) flush(ctx context.Context, what string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	fctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("nats registry: %s: %w", what, ctx.Err())
		}
		return fmt.Errorf("%w: %s: the server did not confirm: %w", ErrUnavailable, what, err)
	}
	return nil
}

// answer answers a query with the live registrations it asks for.
func (r *natsRegistry) answer(c *connection, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	q, err := decodeQuery(m.Data)
	if err != nil {
		return
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.mu.Lock()
	answers := r.answersLocked(q, time.Now())
	r.mu.Unlock()
	max := c.maxPayload()
	for _, a := range answers {
		for _, data := range encodeAnswer(a, max) {
			if err := c.nc.Publish(m.Reply, data); err != nil {
				return
			}
		}
	}
}

// answersLocked returns the live registrations a query asks for, forgetting expired
// ones. The answers share maps and slices with r.local, which are replaced, never
// modified, and only under pubMu.
func (r *natsRegistry) answersLocked(q query, now time.Time) []*wireService {
	names := []string{q.name}
	if q.list {
		names = make([]string, 0, len(r.local))
		for name := range r.local {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	var out []*wireService
	for _, name := range names {
		versions := r.local[name]
		if versions == nil {
			continue
		}
		for version, lv := range versions {
			ws := &wireService{Name: name, Version: version, Metadata: lv.metadata, Endpoints: lv.endpoints}
			for id, ln := range lv.nodes {
				var left time.Duration
				if !ln.expires.IsZero() {
					if left = ln.expires.Sub(now); left <= 0 {
						delete(lv.nodes, id)
						continue
					}
				}
				ws.Nodes = append(ws.Nodes, wireNodeOf(ln.node, left))
			}
			if len(ws.Nodes) == 0 {
				delete(versions, version)
				continue
			}
			sort.Slice(ws.Nodes, func(i, j int) bool { return ws.Nodes[i].Id < ws.Nodes[j].Id })
			out = append(out, ws)
		}
		if len(versions) == 0 {
			delete(r.local, name)
		}
	}
	return out
}

func nodesOf(s *registry.Service) []*registry.Node {
	out := make([]*registry.Node, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Register registers the service's nodes with this instance, which answers lookups for
// them, and announces each to watchers; registering a node again renews its TTL. It
// returns once the NATS server has the announcements. A node whose announcement would
// exceed the server's max payload fails the whole call with ErrTooLarge, before anything
// is registered. A service without nodes registers nothing.
func (r *natsRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if s == nil || s.Name == "" {
		return ErrInvalidService
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	if o.TTL < 0 {
		return fmt.Errorf("%w: negative TTL %s", ErrInvalidOption, o.TTL)
	}
	nodes := nodesOf(s)
	if len(nodes) == 0 {
		return nil
	}
	c, err := r.connect()
	if err != nil {
		return err
	}
	cfg, err := r.settings()
	if err != nil {
		return err
	}
	msgs, err := c.announcements(cfg.registerAction, s, nodes, o.TTL)
	if err != nil {
		return err
	}

	r.pubMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.pubMu.Unlock()
		return ErrClosed
	}
	r.storeLocked(s, nodes, o.TTL)
	r.mu.Unlock()
	err = c.publish(c.cfg.watchTopic, msgs)
	r.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: announce %s: %w", ErrUnavailable, s.Name, err)
	}
	return c.flush(o.Context, "register "+s.Name)
}

// announcements encodes one announcement per node, refusing any the server would not
// take.
func (c *connection) announcements(action string, s *registry.Service, nodes []*registry.Node, ttl time.Duration) ([][]byte, error) {
	max := c.maxPayload()
	msgs := make([][]byte, len(nodes))
	for i, n := range nodes {
		data, err := encodeAnnouncement(action, s, n, ttl)
		if err != nil {
			return nil, fmt.Errorf("nats registry: encode %s: %w", s.Name, err)
		}
		if int64(len(data)) > max {
			return nil, fmt.Errorf("%w: service %s node %q is %d bytes, the server allows %d", ErrTooLarge, s.Name, n.Id, len(data), max)
		}
		msgs[i] = data
	}
	return msgs, nil
}

func (c *connection) publish(subject string, msgs [][]byte) error {
	for _, data := range msgs {
		if err := c.nc.Publish(subject, data); err != nil {
			return err
		}
	}
	return nil
}

// storeLocked records nodes of s. It replaces maps and slices, never modifies them: the
// responder encodes them without r.mu.
func (r *natsRegistry) storeLocked(s *registry.Service, nodes []*registry.Node, ttl time.Duration) {
	versions := r.local[s.Name]
	if versions == nil {
		versions = make(map[string]*localVersion)
		r.local[s.Name] = versions
	}
	lv := versions[s.Version]
	if lv == nil {
		lv = &localVersion{nodes: make(map[string]*localNode)}
		versions[s.Version] = lv
	}
	lv.metadata = maps.Clone(s.Metadata)
	lv.endpoints = registry.CopyService(&registry.Service{Endpoints: s.Endpoints}).Endpoints
	var expires time.Time
	if ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	for _, n := range nodes {
		lv.nodes[n.Id] = &localNode{node: &registry.Node{Id: n.Id, Address: n.Address, Metadata: maps.Clone(n.Metadata)}, expires: expires}
	}
}

// Deregister removes the service's nodes from this instance and announces their deletion
// to watchers, also of nodes this instance does not hold (so a crashed node registered
// without a TTL can be removed by anyone). It returns once the NATS server has the
// announcements.
func (r *natsRegistry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	if s == nil || s.Name == "" {
		return ErrInvalidService
	}
	var o registry.DeregisterOptions
	for _, f := range opts {
		f(&o)
	}
	nodes := nodesOf(s)
	if len(nodes) == 0 {
		return nil
	}
	c, err := r.connect()
	if err != nil {
		return err
	}
	msgs, err := c.announcements("delete", s, nodes, 0)
	if err != nil {
		return err
	}
	r.pubMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.pubMu.Unlock()
		return ErrClosed
	}
	if versions := r.local[s.Name]; versions != nil {
		if lv := versions[s.Version]; lv != nil {
			for _, n := range nodes {
				delete(lv.nodes, n.Id)
			}
			if len(lv.nodes) == 0 {
				delete(versions, s.Version)
			}
		}
		if len(versions) == 0 {
			delete(r.local, s.Name)
		}
	}
	r.mu.Unlock()
	err = c.publish(c.cfg.watchTopic, msgs)
	r.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: announce the deletion of %s: %w", ErrUnavailable, s.Name, err)
	}
	return c.flush(o.Context, "deregister "+s.Name)
}

type versionKey struct{ name, version string }

// gathered merges lookup answers by version and node id.
type gathered struct {
	services map[versionKey]*registry.Service
	nodes    map[versionKey]map[string]*registry.Node
}

// add merges an answer and returns how many nodes its version now has.
func (g *gathered) add(s *registry.Service) int {
	k := versionKey{s.Name, s.Version}
	if g.services[k] == nil {
		g.services[k] = &registry.Service{Name: s.Name, Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints}
		g.nodes[k] = make(map[string]*registry.Node)
	}
	for _, n := range s.Nodes {
		g.nodes[k][n.Id] = n
	}
	return len(g.nodes[k])
}

// list returns the services with their nodes, sorted by name, version and node id.
func (g *gathered) list() []*registry.Service {
	out := make([]*registry.Service, 0, len(g.services))
	for k, s := range g.services {
		for _, n := range g.nodes[k] {
			s.Nodes = append(s.Nodes, n)
		}
		sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Id < s.Nodes[j].Id })
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// lookup asks every instance for name (all services if empty) and gathers the answers
// for the Timeout, until quorum nodes of one version, or until ctx ends (an error).
func (r *natsRegistry) lookup(ctx context.Context, name string, quorum bool) (*gathered, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats registry: lookup: %w", err)
	}
	c, err := r.connect()
	if err != nil {
		return nil, err
	}
	cfg, err := r.settings()
	if err != nil {
		return nil, err
	}
	if !c.nc.IsConnected() {
		return nil, fmt.Errorf("%w: lookup: connection %s", ErrUnavailable, c.nc.Status())
	}
	token, p := c.await()
	defer c.forget(token)
	if err := c.nc.PublishRequest(c.cfg.queryTopic, c.replyPrefix+token, encodeQuery(name)); err != nil {
		return nil, fmt.Errorf("%w: lookup: %w", ErrUnavailable, err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	g := &gathered{services: make(map[versionKey]*registry.Service), nodes: make(map[versionKey]map[string]*registry.Node)}
	// merge merges what arrived and reports whether the quorum is reached.
	merge := func() bool {
		for _, data := range p.take() {
			s, _, err := decodeAnswer(data)
			if err != nil || (name != "" && s.Name != name) {
				continue
			}
			if n := g.add(s); quorum && cfg.quorum > 0 && n >= cfg.quorum {
				return true
			}
		}
		return false
	}
	for {
		select {
		case <-p.wake:
			if merge() {
				return g, nil
			}
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("nats registry: lookup: %w", err)
			}
			merge()
			return g, nil
		case <-c.lost:
			return nil, fmt.Errorf("%w: lookup: the NATS connection closed", ErrUnavailable)
		}
	}
}

// GetService asks every instance for the service and returns one service per version,
// with the nodes of all answers merged by node id, or registry.ErrNotFound. It takes
// Timeout, unless Quorum ends it sooner or GetContext's context ends (an error).
func (r *natsRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	if name == "" {
		return nil, registry.ErrNotFound
	}
	g, err := r.lookup(o.Context, name, true)
	if err != nil {
		return nil, err
	}
	out := g.list()
	if len(out) == 0 {
		return nil, registry.ErrNotFound
	}
	return out, nil
}

// ListServices asks every instance for all it holds and returns each service version
// once (name, version and metadata, without nodes), sorted. It takes Timeout.
func (r *natsRegistry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	g, err := r.lookup(o.Context, "", false)
	if err != nil {
		return nil, err
	}
	out := g.list()
	for i, s := range out {
		out[i] = &registry.Service{Name: s.Name, Version: s.Version, Metadata: s.Metadata}
	}
	return out, nil
}

// Watch returns a watcher of registrations (of WatchService's service, or all), in the
// order it sees them. It returns once the NATS server has the subscription: every change
// announced after that is seen. WatchContext's context stops the watcher when it ends.
func (r *natsRegistry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	if o.Context != nil && o.Context.Err() != nil {
		return nil, fmt.Errorf("nats registry: watch: %w", o.Context.Err())
	}
	c, err := r.connect()
	if err != nil {
		return nil, err
	}
	cfg, err := r.settings()
	if err != nil {
		return nil, err
	}
	w := &watcher{
		reg:    r,
		conn:   c,
		ch:     make(chan *nats.Msg, watchBuffer),
		window: cfg.timeout,
		table:  newTable(o.Service),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	unsubscribe := func() {
		if w.sub != nil {
			_ = w.sub.Unsubscribe()
		}
		if w.seedSub != nil {
			_ = w.seedSub.Unsubscribe()
		}
	}
	if w.sub, err = c.nc.ChanSubscribe(c.cfg.watchTopic, w.ch); err != nil {
		return nil, fmt.Errorf("%w: watch: %w", ErrUnavailable, err)
	}
	w.slow = w.sub.StatusChanged(nats.SubscriptionSlowConsumer)
	inbox := c.nc.NewInbox()
	if w.seedSub, err = c.nc.ChanSubscribe(inbox, w.ch); err != nil {
		unsubscribe()
		return nil, fmt.Errorf("%w: watch: %w", ErrUnavailable, err)
	}
	if err := c.nc.PublishRequest(c.cfg.queryTopic, inbox, encodeQuery(o.Service)); err != nil {
		unsubscribe()
		return nil, fmt.Errorf("%w: watch: %w", ErrUnavailable, err)
	}
	if err := c.flush(o.Context, "watch"); err != nil {
		unsubscribe()
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		unsubscribe()
		return nil, ErrClosed
	}
	r.watchers[w] = struct{}{}
	r.mu.Unlock()
	go w.run()
	if o.Context != nil && o.Context.Done() != nil {
		stop := context.AfterFunc(o.Context, w.Stop)
		w.mu.Lock()
		w.stopCtx = stop // under w.mu: the AfterFunc may be running Stop already
		w.mu.Unlock()
	}
	return w, nil
}

// forget removes a stopped watcher.
func (r *natsRegistry) forget(w *watcher) {
	r.mu.Lock()
	delete(r.watchers, w)
	r.mu.Unlock()
}

// Close deregisters the nodes the instance still holds (announcing their deletion,
// waiting at most 1 s for the server), stops its watchers (their Next returns
// registry.ErrWatcherStopped) and closes the NATS connection; later calls return
// ErrClosed. It is idempotent and returns an error only when the deletions could not be
// confirmed.
func (r *natsRegistry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	watchers := r.watchers
	r.watchers = make(map[*watcher]struct{})
	local := r.local
	r.local = make(map[string]map[string]*localVersion)
	r.mu.Unlock()

	for w := range watchers {
		w.Stop()
	}
	r.connMu.Lock()
	c := r.conn
	r.conn = nil
	r.connMu.Unlock()
	if c == nil {
		return nil
	}
	c.shutdown()
	var err error
	if msgs := goodbyes(local); len(msgs) > 0 && !c.nc.IsClosed() {
		// under pubMu: after the announcements of Registers that raced with Close
		r.pubMu.Lock()
		err = c.publish(c.cfg.watchTopic, msgs)
		r.pubMu.Unlock()
		if err == nil {
			err = c.flush(context.Background(), "close")
		} else {
			err = fmt.Errorf("%w: close: %w", ErrUnavailable, err)
		}
	}
	c.nc.Close()
	return err
}

// goodbyes returns the deletions of the live nodes of local.
func goodbyes(local map[string]map[string]*localVersion) [][]byte {
	now := time.Now()
	var msgs [][]byte
	for name, versions := range local {
		for version, lv := range versions {
			s := &registry.Service{Name: name, Version: version}
			for _, ln := range lv.nodes {
				if !ln.expires.IsZero() && !ln.expires.After(now) {
					continue
				}
				if data, err := encodeAnnouncement("delete", s, ln.node, 0); err == nil {
					msgs = append(msgs, data)
				}
			}
		}
	}
	return msgs
}
