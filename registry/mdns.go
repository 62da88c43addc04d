package registry

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/seed-b3892490/micro/internal/mdns"
	"github.com/seed-b3892490/micro/logger"
)

// The mDNS registry's defaults and limits.
const (
	// MDNSDefaultDomain is the domain services are named under, as in Go Micro:
	// <node>.<service>.micro.
	MDNSDefaultDomain = "micro"
	// MDNSDefaultTimeout is how long GetService and ListServices collect answers.
	MDNSDefaultTimeout = 100 * time.Millisecond
	// MDNSDefaultRecordTTL is the TTL of the records of a registration without a TTL.
	MDNSDefaultRecordTTL = 120 * time.Second
	// MDNSMaxText is the largest node description (JSON, before compression) a TXT record
	// may carry, and the most a received one may inflate to.
	MDNSMaxText = 64 << 10

	mdnsMaxView     = 10000           // most remote nodes tracked for watchers
	mdnsTombstone   = 2 * time.Minute // how long a goodbye is remembered
	mdnsLegacyTTL   = 10              // RFC 6762 §6.7: TTL cap of answers to one-shot queries
	mdnsMinInterval = time.Second     // RFC 6762 §6: one multicast of a record per second
)

// DefaultRegistry is the registry used when none is given: the mDNS registry.
// Constructing it starts nothing; it opens sockets on first use.
var DefaultRegistry = NewRegistry()

// NewRegistry returns the default kind of registry, the mDNS registry (Go Micro v5.3's
// name for NewMDNSRegistry).
func NewRegistry(opts ...Option) Registry { return NewMDNSRegistry(opts...) }

type mdnsDomainKey struct{}
type mdnsIfacesKey struct{}

// MDNSDomain sets the domain of an mDNS registry (default "micro"). Go Micro's string
// context key "mdns.domain" is honoured too.
func MDNSDomain(domain string) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, mdnsDomainKey{}, domain)
	}
}

// MDNSInterfaces limits an mDNS registry to the named network interfaces (default:
// every interface that is up and can multicast).
func MDNSInterfaces(names ...string) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, mdnsIfacesKey{}, names)
	}
}

// mdnsTxt is the node description carried, zlib-compressed and hex-encoded, in TXT
// records. The first four fields are Go Micro's, so that its services and ours read
// each other; Address, Seq and TTL are ours and Go Micro ignores them.
type mdnsTxt struct {
	Service   string
	Version   string
	Endpoints []*Endpoint
	Metadata  map[string]string
	// Address is the node's address exactly as registered.
	Address string `json:",omitempty"`
	// Seq orders the announcements of one node: a receiver ignores one older than the
	// last it saw, so that a copy delayed on another address family cannot undo a change.
	Seq uint64 `json:",omitempty"`
	// TTL is the registration's record TTL in seconds, which answers to one-shot
	// queries may not carry in the records themselves.
	TTL uint32 `json:",omitempty"`
}

// txtEncoder writes node descriptions, reusing its compressor (whose state is most of a
// megabyte). It is not safe for concurrent use.
type txtEncoder struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

func (e *txtEncoder) encode(t *mdnsTxt) ([]string, error) {
	js, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if len(js) > MDNSMaxText {
		return nil, fmt.Errorf("its description takes %d bytes, over the %d-byte limit", len(js), MDNSMaxText)
	}
	e.buf.Reset()
	if e.zw == nil {
		e.zw = zlib.NewWriter(&e.buf)
	} else {
		e.zw.Reset(&e.buf)
	}
	_, _ = e.zw.Write(js)
	_ = e.zw.Close()
	h := hex.EncodeToString(e.buf.Bytes())
	out := make([]string, 0, len(h)/255+1)
	for len(h) > 255 {
		out = append(out, h[:255])
		h = h[255:]
	}
	return append(out, h), nil
}

// encodeTxt writes a node description with an encoder of its own.
func encodeTxt(t *mdnsTxt) ([]string, error) {
	var e txtEncoder
	return e.encode(t)
}

// txtDecoder reads node descriptions, reusing its buffers and inflater, so that a flood
// of hostile packets makes little garbage. It is not safe for concurrent use.
type txtDecoder struct {
	raw []byte // hex text, then the compressed bytes in place
	out []byte // the inflated description, at most MDNSMaxText
	br  bytes.Reader
	zr  io.ReadCloser
}

// decode reads a node description, refusing any that inflates past MDNSMaxText.
func (d *txtDecoder) decode(strs []string) (*mdnsTxt, error) {
	n := 0
	for _, s := range strs {
		n += len(s)
	}
	if n == 0 || n > 2*mdns.MaxMessage*4 {
		return nil, errors.New("mdns: TXT payload empty or too long")
	}
	d.raw = d.raw[:0]
	for _, s := range strs {
		d.raw = append(d.raw, s...)
	}
	k, err := hex.Decode(d.raw, d.raw) // in place: each byte is written behind its reads
	if err != nil {
		return nil, err
	}
	d.br.Reset(d.raw[:k])
	if d.zr == nil {
		if d.zr, err = zlib.NewReader(&d.br); err != nil {
			d.zr = nil
			return nil, err
		}
	} else if err := d.zr.(zlib.Resetter).Reset(&d.br, nil); err != nil {
		return nil, err
	}
	if d.out == nil {
		d.out = make([]byte, MDNSMaxText+1)
	}
	m, err := io.ReadFull(d.zr, d.out)
	switch {
	case err == nil:
		return nil, errors.New("mdns: TXT payload inflates past the limit")
	case err != io.ErrUnexpectedEOF && err != io.EOF:
		return nil, err
	}
	var t mdnsTxt
	if err := json.Unmarshal(d.out[:m], &t); err != nil {
		return nil, err
	}
	if t.Service == "" {
		return nil, errors.New("mdns: TXT payload names no service")
	}
	return &t, nil
}

// decodeTxt reads a node description with a decoder of its own.
func decodeTxt(strs []string) (*mdnsTxt, error) {
	var d txtDecoder
	return d.decode(strs)
}

// mdnsReg is one node registered by this process.
type mdnsReg struct {
	svc       *Service // the service with this one node
	inst      *mdns.Instance
	ttl       uint32    // record TTL, seconds
	expires   time.Time // zero: never
	seq       uint64
	announced time.Time // last announcement
	again     time.Time // second announcement of a burst due; zero: none
}

// mdnsNode is a node known to this registry: registered here (local) or heard of.
type mdnsNode struct {
	svc     *Service
	seq     uint64
	expires time.Time // zero for local nodes
}

type mdnsTomb struct {
	seq uint64
	at  time.Time
}

// mdnsLookup collects the answers to one GetService or ListServices.
type mdnsLookup struct {
	service string // "" lists every service
	id      uint16
	found   map[string]*mdnsNode
	gone    map[string]uint64
	names   []string
}

type mdnsRateKey struct {
	name    string
	ifIndex int
	v6      bool
}

type mdnsRegistry struct {
	mu       sync.Mutex
	opts     Options
	regs     map[string]*mdnsReg  // service \x00 node id
	view     map[string]*mdnsNode // service \x00 node id
	tombs    map[string]mdnsTomb
	watchers map[*queueWatcher]struct{}
	lookups  map[*mdnsLookup]struct{}
	rate     map[mdnsRateKey]time.Time
	users    int // registrations (as one), watchers and lookups in progress
	epoch    int // counts Closes: a user of an earlier epoch was already let go
	regEpoch int // the epoch the registrations were counted in
	conn     *mdns.Conn
	warned   bool
	full     bool // the view is full: warned once
	timer    *time.Timer
	timerAt  time.Time
	seq      uint64
	txt      txtDecoder // used under mu
	enc      txtEncoder // used under mu
}

// NewMDNSRegistry returns the multicast DNS registry, the default: zero configuration
// between processes on one host and across a link (RFC 6762, DNS-SD names after RFC
// 6763, the record layout of Go Micro's mDNS registry so that both read each other).
//
// Register announces a node (twice, one second apart, then every half record TTL while
// it lives) and answers queries for it; its record TTL is the RegisterTTL (120 s when
// none is given), and a registration that is not renewed within its TTL is withdrawn.
// Deregister sends goodbye records (TTL 0), which remove the node from other processes'
// watchers and caches at once. GetService and ListServices send one query and collect
// answers for Options.Timeout (default 100 ms); a node whose process died answers no
// more. Watch reports nodes as they are announced, changed, said goodbye to or not
// renewed within their TTL. Node metadata and endpoints ride in TXT records; a node
// whose records would not fit in one mDNS message (9000 bytes) is refused by Register.
//
// Where no interface can multicast (no route, a container without multicast), the
// first use logs one warning naming the registries that need no multicast, and the
// registry keeps working within this process. Constructing it starts nothing: sockets
// are open only while it has registrations, watchers or lookups in progress. It is safe
// for concurrent use; Close withdraws everything at once.
func NewMDNSRegistry(opts ...Option) Registry {
	o := *NewOptions(opts...)
	return &mdnsRegistry{
		opts:     o,
		regs:     map[string]*mdnsReg{},
		view:     map[string]*mdnsNode{},
		tombs:    map[string]mdnsTomb{},
		watchers: map[*queueWatcher]struct{}{},
		lookups:  map[*mdnsLookup]struct{}{},
		rate:     map[mdnsRateKey]time.Time{},
	}
}

func (r *mdnsRegistry) Init(opts ...Option) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range opts {
		o(&r.opts)
	}
	return nil
}

func (r *mdnsRegistry) Options() Options {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

func (r *mdnsRegistry) String() string { return "mdns" }

func (r *mdnsRegistry) domainLocked() string {
	if r.opts.Context != nil {
		if d, ok := r.opts.Context.Value(mdnsDomainKey{}).(string); ok && d != "" {
			return strings.Trim(d, ".")
		}
		if d, ok := r.opts.Context.Value("mdns.domain").(string); ok && d != "" { //nolint:staticcheck // Go Micro's key
			return strings.Trim(d, ".")
		}
	}
	return MDNSDefaultDomain
}

func (r *mdnsRegistry) windowLocked() time.Duration {
	if r.opts.Timeout > 0 {
		return r.opts.Timeout
	}
	return MDNSDefaultTimeout
}

func (r *mdnsRegistry) log() logger.Logger {
	if r.opts.Logger != nil {
		return r.opts.Logger
	}
	return logger.DefaultLogger
}

// acquireLocked counts a user, opens the sockets if they are closed, and returns the
// epoch to release the user in.
func (r *mdnsRegistry) acquireLocked() int {
	r.users++
	if r.conn != nil {
		return r.epoch
	}
	var ifaces []string
	if r.opts.Context != nil {
		ifaces, _ = r.opts.Context.Value(mdnsIfacesKey{}).([]string)
	}
	c, err := mdns.Listen(mdns.Config{Interfaces: ifaces, Handler: r.handle})
	if err != nil {
		if !r.warned {
			r.warned = true
			r.log().Logf(logger.WarnLevel, "registry: %v; services in other processes cannot be found, nor this one by them. "+
				"Choose a registry that needs no multicast: --registry=etcd or --registry=nats with --registry_address "+
				"(MICRO_REGISTRY, MICRO_REGISTRY_ADDRESS), or --registry=memory within one process", err)
		}
		return r.epoch
	}
	r.conn = c
	return r.epoch
}

// release uncounts a user of epoch; the last one closes the sockets.
func (r *mdnsRegistry) release(epoch int) {
	r.mu.Lock()
	if epoch != r.epoch {
		r.mu.Unlock()
		return // Close let it go already
	}
	r.users--
	var c *mdns.Conn
	if r.users <= 0 {
		r.users = 0
		c, r.conn = r.conn, nil
	}
	r.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

func (r *mdnsRegistry) nextSeqLocked() uint64 {
	s := uint64(time.Now().UnixNano())
	if s <= r.seq {
		s = r.seq + 1
	}
	r.seq = s
	return s
}

func nodeKey(service, node string) string { return service + "\x00" + node }

func recordTTL(d time.Duration) uint32 {
	if d <= 0 {
		d = MDNSDefaultRecordTTL
	}
	s := math.Ceil(d.Seconds())
	if s > math.MaxInt32 {
		s = math.MaxInt32
	}
	return uint32(s)
}

// instance builds the records of one node, checking that they fit in a message.
func (r *mdnsRegistry) instance(domain string, s *Service, n *Node, ttl uint32, seq uint64) (*mdns.Instance, error) {
	if err := mdns.CheckName(s.Name); err != nil {
		return nil, fmt.Errorf("registry: mdns: service name %v", err)
	}
	if err := mdns.CheckName(n.Id); err != nil {
		return nil, fmt.Errorf("registry: mdns: node id %v", err)
	}
	txt, err := r.enc.encode(&mdnsTxt{Service: s.Name, Version: s.Version, Endpoints: s.Endpoints, Metadata: n.Metadata, Address: n.Address, Seq: seq, TTL: ttl})
	if err != nil {
		return nil, fmt.Errorf("registry: mdns: node %s of %s: %v", n.Id, s.Name, err)
	}
	in := &mdns.Instance{Service: s.Name, Node: n.Id, Text: txt, TTL: ttl}
	if host, port, err := net.SplitHostPort(n.Address); err == nil {
		p, _ := strconv.ParseUint(port, 10, 16)
		if a, err := netip.ParseAddr(host); err == nil {
			in.Addr = netip.AddrPortFrom(a.WithZone(""), uint16(p))
		} else {
			in.Addr = netip.AddrPortFrom(netip.Addr{}, uint16(p))
		}
	}
	size, err := mdns.Announcement(domain, in, ttl).Pack()
	if err != nil {
		return nil, fmt.Errorf("registry: mdns: node %s of %s: %v", n.Id, s.Name, err)
	}
	if len(size) > mdns.MaxMessage {
		return nil, fmt.Errorf("registry: mdns: node %s of %s needs %d bytes of records, over the %d-byte limit of an mDNS message (RFC 6762 §17): "+
			"register less metadata or fewer endpoints, or use --registry=etcd or --registry=nats", n.Id, s.Name, len(size), mdns.MaxMessage)
	}
	return in, nil
}

func sameNode(a, b *Service) bool {
	if a.Version != b.Version || len(a.Nodes) != 1 || len(b.Nodes) != 1 {
		return false
	}
	na, nb := a.Nodes[0], b.Nodes[0]
	return na.Address == nb.Address && maps.Equal(na.Metadata, nb.Metadata) && reflect.DeepEqual(a.Endpoints, b.Endpoints)
}

// oneNode returns a copy of s holding only n.
func oneNode(s *Service, n *Node) *Service {
	c := CopyService(&Service{Name: s.Name, Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints})
	c.Nodes = []*Node{copyNode(n)}
	return c
}

// Register announces the service's nodes, or renews them. A node whose records do not
// fit in one mDNS message, or whose name cannot be a DNS name, is refused with an error
// and nothing is registered.
func (r *mdnsRegistry) Register(s *Service, opts ...RegisterOption) error {
	if s == nil || s.Name == "" {
		return errors.New("registry: service has no name")
	}
	if len(s.Nodes) == 0 {
		return fmt.Errorf("registry: mdns: service %s has no node to announce", s.Name)
	}
	var o RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	ttl := recordTTL(o.TTL)
	r.mu.Lock()
	defer r.mu.Unlock()
	domain := r.domainLocked()
	now := time.Now()
	type change struct {
		key string
		reg *mdnsReg
	}
	var changes []change
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		key := nodeKey(s.Name, n.Id)
		svc := oneNode(s, n)
		old := r.regs[key]
		if old != nil && old.ttl == ttl && sameNode(old.svc, svc) {
			changes = append(changes, change{key, &mdnsReg{svc: old.svc, inst: old.inst, ttl: ttl, seq: old.seq}})
			continue
		}
		seq := r.nextSeqLocked()
		in, err := r.instance(domain, s, n, ttl, seq)
		if err != nil {
			return err
		}
		changes = append(changes, change{key, &mdnsReg{svc: svc, inst: in, ttl: ttl, seq: seq}})
	}
	if len(r.regs) == 0 && len(changes) > 0 {
		r.regEpoch = r.acquireLocked()
	}
	for _, c := range changes {
		var expires time.Time
		if o.TTL > 0 {
			expires = now.Add(o.TTL)
		}
		old := r.regs[c.key]
		if old != nil && old.seq == c.reg.seq {
			old.expires = expires // a renewal: the periodic announcements carry on
			continue
		}
		c.reg.expires = expires
		c.reg.announced = now
		c.reg.again = now.Add(mdnsMinInterval)
		r.regs[c.key] = c.reg
		r.sendLocked(mdns.Announcement(domain, c.reg.inst, c.reg.ttl))
		r.applyLocked(c.key, c.reg.svc, c.reg.seq, time.Time{}, false)
	}
	r.armLocked(now)
	return nil
}

// Deregister sends goodbyes for the service's nodes registered here.
func (r *mdnsRegistry) Deregister(s *Service, opts ...DeregisterOption) error {
	if s == nil {
		return errors.New("registry: nil service")
	}
	r.mu.Lock()
	had := len(r.regs) > 0
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		key := nodeKey(s.Name, n.Id)
		if reg := r.regs[key]; reg != nil {
			r.withdrawLocked(key, reg)
		}
	}
	last := had && len(r.regs) == 0
	epoch := r.regEpoch
	r.armLocked(time.Now())
	r.mu.Unlock()
	if last {
		r.release(epoch)
	}
	return nil
}

// withdrawLocked sends a node's goodbye and forgets it.
func (r *mdnsRegistry) withdrawLocked(key string, reg *mdnsReg) {
	delete(r.regs, key)
	domain := r.domainLocked()
	seq := r.nextSeqLocked()
	bye := *reg.inst
	if txt, err := r.enc.encode(&mdnsTxt{Service: reg.svc.Name, Version: reg.svc.Version, Metadata: reg.svc.Nodes[0].Metadata, Address: reg.svc.Nodes[0].Address, Seq: seq}); err == nil {
		bye.Text = txt
	}
	r.sendLocked(mdns.Announcement(domain, &bye, 0))
	r.applyLocked(key, reg.svc, seq, time.Time{}, true)
}

func (r *mdnsRegistry) sendLocked(m *dns.Msg) {
	if r.conn == nil {
		return
	}
	b, err := m.Pack()
	if err != nil {
		return
	}
	_ = r.conn.Multicast(b)
}

// applyLocked updates the view with what is known of one node and tells watchers.
func (r *mdnsRegistry) applyLocked(key string, svc *Service, seq uint64, expires time.Time, goodbye bool) {
	now := time.Now()
	if t, ok := r.tombs[key]; ok && seq != 0 && seq <= t.seq {
		return
	}
	cur := r.view[key]
	if cur != nil && seq != 0 && seq < cur.seq {
		return
	}
	if goodbye {
		_, tombed := r.tombs[key]
		r.tombs[key] = mdnsTomb{seq: seq, at: now}
		switch {
		case cur != nil:
			delete(r.view, key)
			r.notifyLocked("delete", cur.svc)
		case !tombed && svc != nil && len(svc.Nodes) > 0:
			r.notifyLocked("delete", svc)
		}
		return
	}
	delete(r.tombs, key)
	if cur == nil {
		if len(r.view) >= mdnsMaxView {
			if !r.full {
				r.full = true
				r.log().Logf(logger.WarnLevel, "registry: mdns: tracking %d nodes already; ignoring new ones until some go", mdnsMaxView)
			}
			return
		}
		r.view[key] = &mdnsNode{svc: svc, seq: seq, expires: expires}
		r.notifyLocked("create", svc)
		return
	}
	if seq > cur.seq {
		cur.seq = seq
	}
	cur.expires = expires
	if !sameNode(cur.svc, svc) {
		cur.svc = svc
		r.notifyLocked("update", svc)
	}
}

func (r *mdnsRegistry) notifyLocked(action string, svc *Service) {
	events := []*Result{{Action: action, Service: svc}}
	for w := range r.watchers {
		if !w.push(events) {
			delete(r.watchers, w)
		}
	}
}

// armLocked sets the timer to the next expiry or announcement.
func (r *mdnsRegistry) armLocked(now time.Time) {
	var next time.Time
	soon := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, reg := range r.regs {
		soon(reg.expires)
		soon(reg.again)
		soon(reg.announced.Add(time.Duration(reg.ttl) * time.Second / 2))
	}
	for _, n := range r.view {
		soon(n.expires)
	}
	for _, t := range r.tombs {
		soon(t.at.Add(mdnsTombstone))
	}
	if next.IsZero() {
		if r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
		return
	}
	if r.timer != nil && r.timerAt.Equal(next) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerAt = next
	r.timer = time.AfterFunc(max(next.Sub(now), time.Millisecond), r.tick)
}

// tick withdraws registrations that were not renewed, announces what is due, and
// expires nodes that were not announced again within their TTL.
func (r *mdnsRegistry) tick() {
	r.mu.Lock()
	r.timer = nil
	r.timerAt = time.Time{}
	now := time.Now()
	domain := r.domainLocked()
	had := len(r.regs) > 0
	for key, reg := range r.regs {
		switch {
		case !reg.expires.IsZero() && !reg.expires.After(now):
			r.withdrawLocked(key, reg)
		case !reg.again.IsZero() && !reg.again.After(now):
			reg.again = time.Time{}
			reg.announced = now
			r.sendLocked(mdns.Announcement(domain, reg.inst, reg.ttl))
		case !reg.announced.Add(time.Duration(reg.ttl) * time.Second / 2).After(now):
			reg.announced = now
			r.sendLocked(mdns.Announcement(domain, reg.inst, reg.ttl))
		}
	}
	for key, n := range r.view {
		if !n.expires.IsZero() && !n.expires.After(now) {
			delete(r.view, key)
			r.full = false
			r.tombs[key] = mdnsTomb{seq: n.seq, at: now}
			r.notifyLocked("delete", n.svc)
		}
	}
	for key, t := range r.tombs {
		if now.Sub(t.at) >= mdnsTombstone {
			delete(r.tombs, key)
		}
	}
	for k, t := range r.rate {
		if now.Sub(t) >= mdnsMinInterval {
			delete(r.rate, k)
		}
	}
	last := had && len(r.regs) == 0
	epoch := r.regEpoch
	r.armLocked(now)
	r.mu.Unlock()
	if last {
		r.release(epoch)
	}
}

// handle is the packet handler: it answers queries for the nodes registered here and
// learns from responses. Malformed packets are ignored.
func (r *mdnsRegistry) handle(p mdns.Packet) {
	var m dns.Msg
	if err := m.Unpack(p.Data); err != nil {
		return
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return // RFC 6762 §18.3, §18.11
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !m.Response {
		if !p.Reply {
			r.answerLocked(&m, p)
		}
		return
	}
	if p.Src.Port() != mdns.Port {
		return // RFC 6762 §6: responses come from the mDNS port
	}
	if p.Reply && !r.awaitedLocked(m.Id) {
		return // a unicast response must answer a query of ours
	}
	r.learnLocked(&m)
}

func (r *mdnsRegistry) awaitedLocked(id uint16) bool {
	for l := range r.lookups {
		if l.id == id {
			return true
		}
	}
	return false
}

// answerLocked answers a query about the nodes registered here: by unicast to a one-shot
// querier on the link (RFC 6762 §6.7), else by multicast on the interface it came from,
// at most once a second per node and interface.
func (r *mdnsRegistry) answerLocked(q *dns.Msg, p mdns.Packet) {
	if len(r.regs) == 0 || r.conn == nil || len(q.Question) == 0 {
		return
	}
	domain := r.domainLocked()
	keys := make([]string, 0, len(r.regs))
	for k := range r.regs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	instances := make([]*mdns.Instance, 0, len(keys))
	for _, k := range keys {
		instances = append(instances, r.regs[k].inst)
	}
	msgs := mdns.Answer(domain, q, instances)
	if len(msgs) == 0 {
		return
	}
	legacy := p.Src.Port() != mdns.Port
	if legacy && !r.conn.OnLink(p.IfIndex, p.Src.Addr()) {
		return
	}
	now := time.Now()
	v6 := p.Src.Addr().Is6() && !p.Src.Addr().Is4In6()
	for _, m := range msgs {
		if legacy {
			m.Id = q.Id
			m.Question = q.Question
			for _, sec := range [][]dns.RR{m.Answer, m.Extra} {
				for _, rr := range sec {
					if h := rr.Header(); h.Ttl > mdnsLegacyTTL {
						h.Ttl = mdnsLegacyTTL
					}
				}
			}
			if b, err := m.Pack(); err == nil {
				_ = r.conn.Unicast(b, p.Src)
			}
			continue
		}
		k := mdnsRateKey{name: strings.ToLower(m.Answer[0].Header().Name + "|" + m.Answer[0].String()), ifIndex: p.IfIndex, v6: v6}
		if t, ok := r.rate[k]; ok && now.Sub(t) < mdnsMinInterval {
			continue
		}
		r.rate[k] = now
		if b, err := m.Pack(); err == nil {
			_ = r.conn.MulticastOn(p.IfIndex, v6, b)
		}
	}
	r.armLocked(now)
}

// learnLocked takes in what a response says about nodes: for watchers, and for the
// lookups in progress.
func (r *mdnsRegistry) learnLocked(m *dns.Msg) {
	domain := r.domainLocked()
	parsed := mdns.Parse(domain, m)
	now := time.Now()
	if len(parsed.Services) > 0 {
		for l := range r.lookups {
			if l.service == "" {
				l.names = append(l.names, parsed.Services...)
			}
		}
	}
	for _, seen := range parsed.Instances {
		svc, seq, ttl, ok := r.decodeSeen(domain, seen)
		if !ok {
			continue
		}
		key := nodeKey(svc.Name, svc.Nodes[0].Id)
		if _, own := r.regs[key]; own {
			continue // what this process registered is known better here
		}
		for l := range r.lookups {
			if l.service != "" && l.service != svc.Name {
				continue
			}
			if seen.Goodbye {
				l.gone[key] = max(l.gone[key], seq)
				if f := l.found[key]; f != nil && (seq == 0 || f.seq <= seq) {
					delete(l.found, key)
				}
				continue
			}
			if f := l.found[key]; f == nil || seq >= f.seq {
				if g, ok := l.gone[key]; !ok || (seq != 0 && seq > g) {
					l.found[key] = &mdnsNode{svc: svc, seq: seq}
				}
			}
		}
		var expires time.Time
		if !seen.Goodbye {
			expires = now.Add(time.Duration(ttl) * time.Second)
		}
		r.applyLocked(key, svc, seq, expires, seen.Goodbye)
	}
	r.armLocked(now)
}

// decodeSeen turns the records of one instance into a service with one node.
func (r *mdnsRegistry) decodeSeen(domain string, s *mdns.Seen) (*Service, uint64, uint32, bool) {
	if !s.HasText {
		// a goodbye of the PTR alone: enough to forget a node known by name
		if !s.Goodbye || s.Service == "" {
			return nil, 0, 0, false
		}
		for _, n := range r.view {
			if strings.EqualFold(n.svc.Nodes[0].Id+"."+mdns.ServiceName(n.svc.Name, domain), s.Name) {
				return n.svc, 0, 0, true
			}
		}
		return nil, 0, 0, false
	}
	t, err := r.txt.decode(s.Text)
	if err != nil {
		return nil, 0, 0, false
	}
	if s.Service != "" && !strings.EqualFold(s.Service, t.Service) {
		return nil, 0, 0, false
	}
	suffix := "." + mdns.ServiceName(t.Service, domain)
	if len(s.Name) <= len(suffix) || !strings.EqualFold(s.Name[len(s.Name)-len(suffix):], suffix) {
		return nil, 0, 0, false
	}
	id := s.Name[:len(s.Name)-len(suffix)]
	addr := t.Address
	if addr == "" {
		for _, a := range s.Addrs {
			if addr == "" || a.Is4() {
				addr = netip.AddrPortFrom(a, s.Port).String()
			}
		}
	}
	ttl := t.TTL
	if ttl == 0 {
		// a peer that does not say its TTL (Go Micro): answers to one-shot queries carry
		// at most 10 s, so take the usual record TTL at least
		ttl = max(s.TTL, uint32(MDNSDefaultRecordTTL/time.Second))
	}
	svc := &Service{Name: t.Service, Version: t.Version, Endpoints: t.Endpoints, Nodes: []*Node{{Id: id, Address: addr, Metadata: t.Metadata}}}
	return svc, t.Seq, ttl, true
}

// lookup sends a query for name and collects answers for the lookup window.
func (r *mdnsRegistry) lookup(ctx context.Context, service string, names ...string) *mdnsLookup {
	if ctx == nil {
		ctx = context.Background()
	}
	q := new(dns.Msg)
	q.Id = dns.Id()
	for _, n := range names {
		q.Question = append(q.Question, dns.Question{Name: n, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
	}
	l := &mdnsLookup{service: service, id: q.Id, found: map[string]*mdnsNode{}, gone: map[string]uint64{}}
	r.mu.Lock()
	epoch := r.acquireLocked()
	conn := r.conn
	window := r.windowLocked()
	r.lookups[l] = struct{}{}
	r.mu.Unlock()
	if conn != nil {
		if b, err := q.Pack(); err == nil && conn.Query(b) == nil {
			t := time.NewTimer(window)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	r.mu.Lock()
	delete(r.lookups, l)
	r.mu.Unlock()
	r.release(epoch)
	return l
}

// results merges a lookup's answers with the nodes registered here, by version.
func (r *mdnsRegistry) results(l *mdnsLookup) []*Service {
	r.mu.Lock()
	nodes := maps.Clone(l.found)
	for key, reg := range r.regs {
		if l.service == "" || reg.svc.Name == l.service {
			nodes[key] = &mdnsNode{svc: reg.svc, seq: reg.seq}
		}
	}
	r.mu.Unlock()
	byVersion := map[string]*Service{}
	for _, n := range nodes {
		k := n.svc.Name + "\x00" + n.svc.Version
		s := byVersion[k]
		if s == nil {
			s = CopyService(&Service{Name: n.svc.Name, Version: n.svc.Version, Endpoints: n.svc.Endpoints})
			byVersion[k] = s
		}
		s.Nodes = append(s.Nodes, copyNode(n.svc.Nodes[0]))
	}
	out := make([]*Service, 0, len(byVersion))
	for _, s := range byVersion {
		sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Id < s.Nodes[j].Id })
		out = append(out, s)
	}
	sortServices(out)
	return out
}

// GetService asks the network for the service's nodes and returns those that answered
// within the lookup window, with the nodes registered here, one *Service per version.
func (r *mdnsRegistry) GetService(name string, opts ...GetOption) ([]*Service, error) {
	if mdns.CheckName(name) != nil {
		return nil, ErrNotFound
	}
	var o GetOptions
	for _, f := range opts {
		f(&o)
	}
	r.mu.Lock()
	domain := r.domainLocked()
	r.mu.Unlock()
	out := r.results(r.lookup(o.Context, name, mdns.ServiceName(name, domain)))
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// ListServices asks the network for every service and returns them by name and version
// (services of Go Micro peers, which announce no versions here, come with an empty one).
func (r *mdnsRegistry) ListServices(opts ...ListOption) ([]*Service, error) {
	var o ListOptions
	for _, f := range opts {
		f(&o)
	}
	r.mu.Lock()
	domain := r.domainLocked()
	r.mu.Unlock()
	l := r.lookup(o.Context, "", mdns.EnumName(domain), mdns.LegacyEnumName(domain))
	full := r.results(l)
	out := make([]*Service, 0, len(full))
	known := map[string]bool{}
	for _, s := range full {
		known[s.Name] = true
		out = append(out, &Service{Name: s.Name, Version: s.Version})
	}
	for _, n := range l.names {
		if !known[n] && mdns.CheckName(n) == nil {
			known[n] = true
			out = append(out, &Service{Name: n})
		}
	}
	sortServices(out)
	return out, nil
}

// Watch reports nodes as they are registered here or announced on the network, change,
// say goodbye or are not announced again within their TTL, in order. The sockets stay
// open while a watcher runs.
func (r *mdnsRegistry) Watch(opts ...WatchOption) (Watcher, error) {
	var o WatchOptions
	for _, f := range opts {
		f(&o)
	}
	var epoch int
	w := newQueueWatcher(o, func(w *queueWatcher) {
		r.mu.Lock()
		_, ok := r.watchers[w]
		delete(r.watchers, w)
		e := epoch
		r.mu.Unlock()
		if ok {
			r.release(e)
		}
	})
	r.mu.Lock()
	epoch = r.acquireLocked()
	r.watchers[w] = struct{}{}
	r.mu.Unlock()
	w.stopWith(o.Context)
	return w, nil
}

// Close sends goodbyes for every node registered here, stops the watchers and closes
// the sockets. The registry may be used again afterwards.
func (r *mdnsRegistry) Close() error {
	r.mu.Lock()
	for key, reg := range r.regs {
		r.withdrawLocked(key, reg)
	}
	ws := make([]*queueWatcher, 0, len(r.watchers))
	for w := range r.watchers {
		ws = append(ws, w)
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.view = map[string]*mdnsNode{}
	r.tombs = map[string]mdnsTomb{}
	c := r.conn
	r.conn, r.users = nil, 0
	r.epoch++
	r.watchers = map[*queueWatcher]struct{}{}
	r.mu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
	if c != nil {
		return c.Close()
	}
	return nil
}
