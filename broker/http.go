package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/addr"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
	"github.com/seed-b3892490/micro/transport/headers"
)

// The HTTP broker's settings and the names it uses in the registry (Go Micro's, so that
// Go Micro publishers and subscribers interoperate with it).
var (
	// DefaultAddress is where an HTTP broker listens when given no Addrs: every
	// interface, a free port. The address it advertises is the machine's private
	// address (or the listen host, when it names one), so that other hosts reach it.
	DefaultAddress = ":0"
	// DefaultPath is the path the HTTP broker's receiver serves.
	DefaultPath = "/"
	// HTTPBrokerService is the registry service under which HTTP broker subscriptions
	// are registered: one node per subscription, the version naming its queue group.
	HTTPBrokerService = "micro.http.broker"
	// HTTPBroadcastVersion is the version of subscriptions without a queue group.
	HTTPBroadcastVersion = "ff.http.broadcast"
	// DefaultPublishTimeout bounds a Publish of the HTTP broker whose PublishContext has
	// no deadline.
	DefaultPublishTimeout = 10 * time.Second
	// DefaultMaxMessageSize is the largest message body an HTTP broker receives.
	DefaultMaxMessageSize int64 = 4 << 20
)

const (
	topicHeader  = "Micro-Topic"
	httpBrokerID = "go.micro.broker"
	// registration of subscriptions: TTL and renewal, as Go Micro's
	subscriptionTTL   = time.Minute
	subscriptionRenew = 30 * time.Second
	// maxHeaderBytes bounds the headers of a delivery (the envelope's headers are in its
	// body, bounded with it).
	maxHeaderBytes = 1 << 20
)

// httpBroker is the HTTP broker; see NewHttpBroker.
type httpBroker struct {
	id string

	mu        sync.RWMutex
	opts      Options
	connected bool
	address   string // advertised host:port
	ln        net.Listener
	srv       *http.Server
	cache     cache.Cache
	client    *http.Client
	subs      map[string]*httpSubscriber // by registry node id
	stop      chan struct{}              // closed by Disconnect: ends the renewal loop
	done      chan struct{}              // closed when the renewal loop has ended
	served    chan struct{}              // closed when Serve has returned
	local     atomic.Int64               // deliveries made in process, for tests
}

// NewHttpBroker returns the HTTP broker, the default broker (NewBroker). Connect starts
// an HTTP server (Addrs[0], default DefaultAddress); each Subscribe registers a node of
// the service "micro.http.broker" in the registry (Options.Registry, default
// registry.DefaultRegistry) that names the topic, the queue group (as the version) and
// the broker's address. Publish finds the subscriptions of its topic through a registry
// cache and POSTs the message to each of them: every subscription without a queue group,
// and one member of each queue group. Wire format and registry layout are Go Micro's,
// so Go Micro services publish to micro subscribers and the other way round.
//
// Delivery promise: no silent loss. Publish waits for every target: it returns nil
// only when each one's handler returned nil (the receiver answers 2xx after its handler
// ran), and otherwise an error naming each target that failed and why, a handler's
// *errors.Error included, so the caller's retry logic sees it. A queue group whose chosen
// member cannot be reached (connection refused, subscription gone) is tried on its other
// members. A Publish that returned an error may have reached some targets: retrying it
// gives those a duplicate (at least once, when the caller retries). A topic nobody
// subscribes to takes the message and drops it, returning nil, as every broker does; so
// does a subscription that left while a publisher's cache still lists it (its receiver
// answers that it no longer has it).
// Publish is bounded by its PublishContext, or DefaultPublishTimeout.
//
// Slow subscribers slow their publishers down (each Publish waits for the handlers),
// which is the broker's backpressure: nothing queues in memory. Event.Ack does nothing:
// the handler's return is the acknowledgement, with or without DisableAutoAck.
//
// With Options.TLSConfig (or Secure) the receiver serves HTTPS and deliveries verify the
// subscriber's certificate with that configuration; verification is never skipped.
func NewHttpBroker(opts ...Option) Broker {
	o := NewOptions(opts...)
	return &httpBroker{id: uuid.New().String(), opts: *o, subs: map[string]*httpSubscriber{}}
}

func (h *httpBroker) Init(opts ...Option) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.connected {
		return ErrConnected
	}
	for _, o := range opts {
		o(&h.opts)
	}
	return nil
}

func (h *httpBroker) Options() Options {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.opts
}

// Address returns the advertised address of the receiver while connected.
func (h *httpBroker) Address() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.address
}

func (h *httpBroker) logger() logger.Logger {
	if h.opts.Logger != nil {
		return h.opts.Logger
	}
	return logger.DefaultLogger
}

func (h *httpBroker) reg() registry.Registry {
	if h.opts.Registry != nil {
		return h.opts.Registry
	}
	return registry.DefaultRegistry
}

// Connect starts the receiver, the registry cache and the renewal of subscriptions.
// Connecting a connected broker does nothing.
func (h *httpBroker) Connect() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.connected {
		return nil
	}
	listen := DefaultAddress
	if len(h.opts.Addrs) > 0 && h.opts.Addrs[0] != "" {
		listen = h.opts.Addrs[0]
	}
	tlsConf := h.opts.TLSConfig
	if h.opts.Secure && tlsConf == nil {
		return stderrors.New("broker: Secure needs a TLSConfig (the HTTP broker never skips certificate verification)")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("broker: listen on %s: %w", listen, err)
	}
	advertised, err := addr.Advertise(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("broker: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(DefaultPath, http.HandlerFunc(h.serveHTTP))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if tlsConf != nil {
		srv.TLSConfig = tlsConf.Clone()
		ln = tls.NewListener(ln, srv.TLSConfig)
		tr.TLSClientConfig = tlsConf.Clone()
	}
	h.ln, h.srv, h.address = ln, srv, advertised
	h.client = &http.Client{Transport: tr}
	h.cache = cache.New(h.reg(), cache.WithLogger(h.logger()))
	h.stop, h.done, h.served = make(chan struct{}), make(chan struct{}), make(chan struct{})
	h.connected = true
	go func(served chan struct{}) {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !stderrors.Is(err, http.ErrServerClosed) {
			h.logger().Logf(logger.ErrorLevel, "broker: HTTP receiver on %s stopped: %v", advertised, err)
		}
	}(h.served)
	go h.renew(h.stop, h.done)
	return nil
}

// Disconnect deregisters every subscription, stops the receiver (letting deliveries in
// progress finish, for at most 5 s) and the cache. Disconnecting a disconnected broker
// does nothing.
func (h *httpBroker) Disconnect() error {
	h.mu.Lock()
	if !h.connected {
		h.mu.Unlock()
		return nil
	}
	h.connected = false
	subs := h.subs
	h.subs = map[string]*httpSubscriber{}
	srv, c, client, stop, done, served := h.srv, h.cache, h.client, h.stop, h.done, h.served
	h.address = ""
	h.mu.Unlock()

	close(stop)
	<-done
	var errs []error
	for _, s := range subs {
		s.closed.Store(true)
		if s.stopCtx != nil {
			s.stopCtx()
		}
		if err := h.reg().Deregister(s.service()); err != nil {
			errs = append(errs, fmt.Errorf("deregister the subscription to %s: %w", s.topic, err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	<-served
	c.Stop()
	client.CloseIdleConnections()
	if len(errs) > 0 {
		return fmt.Errorf("broker: disconnect: %w", stderrors.Join(errs...))
	}
	return nil
}

// renew re-registers the subscriptions every subscriptionRenew, until stop.
func (h *httpBroker) renew(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(subscriptionRenew)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h.mu.RLock()
		subs := make([]*httpSubscriber, 0, len(h.subs))
		for _, s := range h.subs {
			subs = append(subs, s)
		}
		h.mu.RUnlock()
		for _, s := range subs {
			if err := h.reg().Register(s.service(), registry.RegisterTTL(subscriptionTTL)); err != nil {
				h.logger().Logf(logger.WarnLevel, "broker: renew the subscription to %s: %v", s.topic, err)
			}
		}
	}
}

// Subscribe registers h for topic (see NewHttpBroker). The subscription is live for
// publishers once the registry (and their cache of it) shows it.
func (h *httpBroker) Subscribe(topic string, handler Handler, opts ...SubscribeOption) (Subscriber, error) {
	if topic == "" {
		return nil, ErrMissingTopic
	}
	if handler == nil {
		return nil, ErrMissingHandler
	}
	so := NewSubscribeOptions(opts...)
	ctx := so.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	if !h.connected {
		h.mu.Unlock()
		return nil, ErrNotConnected
	}
	s := &httpSubscriber{
		b: h, topic: topic, handler: handler, opts: so,
		node: &registry.Node{
			Id:      topic + "-" + uuid.New().String(),
			Address: h.address,
			Metadata: map[string]string{
				"broker": "http",
				"topic":  topic,
				"secure": strconv.FormatBool(h.opts.TLSConfig != nil),
			},
		},
	}
	h.subs[s.node.Id] = s
	h.mu.Unlock()
	if err := h.reg().Register(s.service(), registry.RegisterTTL(subscriptionTTL)); err != nil {
		h.mu.Lock()
		delete(h.subs, s.node.Id)
		h.mu.Unlock()
		return nil, fmt.Errorf("broker: register the subscription to %s: %w", topic, err)
	}
	if ctx.Done() != nil {
		s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Unsubscribe() })
	}
	return s, nil
}

// Publish delivers msg to the subscriptions of topic, as NewHttpBroker describes.
func (h *httpBroker) Publish(topic string, msg *Message, opts ...PublishOption) error {
	if topic == "" {
		return ErrMissingTopic
	}
	var po PublishOptions
	for _, o := range opts {
		o(&po)
	}
	ctx := po.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.RLock()
	connected, c := h.connected, h.cache
	h.mu.RUnlock()
	if !connected {
		return ErrNotConnected
	}
	services, err := c.GetService(HTTPBrokerService)
	if stderrors.Is(err, registry.ErrNotFound) {
		return nil // nobody subscribes to anything
	}
	if err != nil {
		return fmt.Errorf("broker: find the subscribers of %s: %w", topic, err)
	}
	broadcast, groups := targets(services, topic)
	if len(broadcast) == 0 && len(groups) == 0 {
		return nil
	}
	env := Message{Header: make(map[string]string, 1)}
	if msg != nil {
		maps.Copy(env.Header, msg.Header)
		env.Body = msg.Body
	}
	env.Header[topicHeader] = topic
	body, err := json.Marshal(&env)
	if err != nil {
		return fmt.Errorf("broker: encode the message to %s: %w", topic, err)
	}

	n := len(broadcast) + len(groups)
	errs := make([]error, n)
	var wg sync.WaitGroup
	i := 0
	run := func(fn func() error) {
		k := i
		i++
		if n == 1 {
			errs[k] = fn()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = fn()
		}()
	}
	for _, node := range broadcast {
		run(func() error {
			_, err := h.deliver(ctx, node, topic, &env, body)
			if err != nil && !isGone(err) {
				return fmt.Errorf("subscriber %s at %s: %w", node.Id, node.Address, err)
			}
			return nil // delivered, or the subscriber left
		})
	}
	for group, members := range groups {
		run(func() error { return h.deliverGroup(ctx, group, members, topic, &env, body) })
	}
	wg.Wait()
	if err := stderrors.Join(errs...); err != nil {
		return fmt.Errorf("broker: publish to %s: %w", topic, err)
	}
	return nil
}

// deliverGroup delivers to one member of a queue group, trying the others in random
// order while the message provably did not reach a handler.
func (h *httpBroker) deliverGroup(ctx context.Context, group string, members []*registry.Node, topic string, env *Message, body []byte) error {
	order := rand.Perm(len(members))
	var errs []error
	gone := 0
	for _, k := range order {
		node := members[k]
		notDelivered, err := h.deliver(ctx, node, topic, env, body)
		if err == nil {
			return nil
		}
		if isGone(err) {
			gone++
		} else {
			errs = append(errs, fmt.Errorf("member %s at %s: %w", node.Id, node.Address, err))
		}
		if !notDelivered || ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 && gone == len(members) {
		return nil // every member left: the group is gone
	}
	return fmt.Errorf("queue group %s: %w", group, stderrors.Join(errs...))
}

// deliver sends the message to one subscription and waits for its handler. notDelivered
// reports that the message provably did not reach a handler (the connection could not be
// made, or the subscription is gone), so that another member of a group may take it.
func (h *httpBroker) deliver(ctx context.Context, node *registry.Node, topic string, env *Message, body []byte) (notDelivered bool, err error) {
	h.mu.RLock()
	sub := h.subs[node.Id]
	client := h.client
	h.mu.RUnlock()
	if sub != nil {
		// a subscription of this broker: no need to go through the network
		h.local.Add(1)
		if sub.closed.Load() {
			return true, &goneError{stderrors.New("unsubscribed")}
		}
		if err := sub.handle(topic, env, ""); err != nil {
			return false, err
		}
		return false, nil
	}
	scheme := "http"
	if node.Metadata["secure"] == "true" {
		scheme = "https"
	}
	u := scheme + "://" + node.Address + DefaultPath + "?id=" + url.QueryEscape(node.Id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if stderrors.As(err, &op) && op.Op == "dial" {
			return true, fmt.Errorf("unreachable: %w", err)
		}
		return false, err
	}
	defer rsp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(rsp.Body, 64<<10))
	if rsp.StatusCode/100 == 2 {
		return false, nil
	}
	e := errors.Parse(string(rb))
	if e.Code == 0 {
		e = errors.New(httpBrokerID, fmt.Sprintf("delivery answered %s: %s", rsp.Status, bytes.TrimSpace(rb)), int32(rsp.StatusCode)).(*errors.Error)
	}
	if rsp.Header.Get(headers.NotStarted) == "unsubscribed" {
		return true, &goneError{e}
	}
	return false, e
}

// goneError is the answer of a receiver that no longer has the subscription: the
// subscriber left, so the message is nobody's to lose.
type goneError struct{ err error }

func (e *goneError) Error() string { return "subscription gone: " + e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

func isGone(err error) bool {
	var g *goneError
	return stderrors.As(err, &g)
}

// targets returns the subscriptions of topic among services: those without a group,
// and the members of each group.
func targets(services []*registry.Service, topic string) (broadcast []*registry.Node, groups map[string][]*registry.Node) {
	for _, s := range services {
		for _, n := range s.Nodes {
			if n.Metadata["broker"] != "http" || n.Metadata["topic"] != topic {
				continue
			}
			if s.Version == HTTPBroadcastVersion {
				broadcast = append(broadcast, n)
				continue
			}
			if groups == nil {
				groups = map[string][]*registry.Node{}
			}
			groups[s.Version] = append(groups[s.Version], n)
		}
	}
	return broadcast, groups
}

// serveHTTP receives a delivery: POST /?id=<subscription> with the JSON envelope
// {"Header": {...}, "Body": "<base64>"}. It answers 200 once the subscription's handler
// returned nil, 500 with the handler's error (JSON, as errors.Error) otherwise, 404 for
// a subscription it does not have, 405 for another method, 413 for a body over
// DefaultMaxMessageSize, 400 for an envelope it cannot decode.
func (h *httpBroker) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, errors.MethodNotAllowed(httpBrokerID, "the broker takes deliveries by POST, not %s", r.Method))
		return
	}
	limit := base64Len(DefaultMaxMessageSize) + maxHeaderBytes
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if stderrors.As(err, &tooBig) {
			writeError(w, errors.RequestEntityTooLarge(httpBrokerID, "delivery exceeds %d bytes", limit))
			return
		}
		writeError(w, errors.BadRequest(httpBrokerID, "read the delivery: %v", err))
		return
	}
	env, err := decodeEnvelope(data)
	if err != nil {
		if stderrors.Is(err, errTooLarge) {
			writeError(w, errors.RequestEntityTooLarge(httpBrokerID, "%v", err))
			return
		}
		writeError(w, errors.BadRequest(httpBrokerID, "%v", err))
		return
	}
	topic := env.Header[topicHeader]
	id := r.URL.Query().Get("id")
	h.mu.RLock()
	sub := h.subs[id]
	h.mu.RUnlock()
	if sub == nil || sub.topic != topic || sub.closed.Load() {
		// marked, so that publishers tell it from a handler's 404
		w.Header().Set(headers.NotStarted, "unsubscribed")
		writeError(w, errors.NotFound(httpBrokerID, "no subscription %q to %s here", id, topic))
		return
	}
	peer, _ := ca.PeerService(r.TLS)
	if err := sub.handle(topic, env, peer); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// decodeEnvelope decodes a delivery's JSON envelope; it needs a Micro-Topic header.
func decodeEnvelope(data []byte) (*Message, error) {
	var env Message
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("cannot decode the delivery (want JSON {\"Header\": {...}, \"Body\": \"<base64>\"}): %v", err)
	}
	if env.Header[topicHeader] == "" {
		return nil, fmt.Errorf("the delivery has no %s header", topicHeader)
	}
	if int64(len(env.Body)) > DefaultMaxMessageSize {
		return nil, fmt.Errorf("%w: the message body of %d bytes exceeds %d", errTooLarge, len(env.Body), DefaultMaxMessageSize)
	}
	return &env, nil
}

var errTooLarge = stderrors.New("delivery too large")

func base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

func writeError(w http.ResponseWriter, err error) {
	e := errors.FromError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.HTTPStatus())
	_, _ = io.WriteString(w, e.Error())
}

func (h *httpBroker) String() string { return "http" }

// httpSubscriber is one subscription of the HTTP broker.
type httpSubscriber struct {
	b       *httpBroker
	topic   string
	handler Handler
	opts    SubscribeOptions
	node    *registry.Node
	closed  atomic.Bool
	stopCtx func() bool
	once    sync.Once
}

func (s *httpSubscriber) Options() SubscribeOptions { return s.opts }
func (s *httpSubscriber) Topic() string             { return s.topic }

func (s *httpSubscriber) service() *registry.Service {
	version := s.opts.Queue
	if version == "" {
		version = HTTPBroadcastVersion
	}
	return &registry.Service{Name: HTTPBrokerService, Version: version, Nodes: []*registry.Node{s.node}}
}

// Unsubscribe deregisters the subscription; deliveries to it stop.
func (s *httpSubscriber) Unsubscribe() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		if s.stopCtx != nil {
			s.stopCtx()
		}
		b := s.b
		b.mu.Lock()
		mine := b.subs[s.node.Id] == s
		if mine {
			delete(b.subs, s.node.Id)
		}
		b.mu.Unlock()
		if mine {
			if derr := b.reg().Deregister(s.service()); derr != nil {
				err = fmt.Errorf("broker: deregister the subscription to %s: %w", s.topic, derr)
			}
		}
	})
	return err
}

// handle runs the handler with its own copy of the message; a handler's panic is an
// error, and a failed delivery goes to the ErrorHandler too.
func (s *httpSubscriber) handle(topic string, env *Message, peer string) (err error) {
	ev := &httpEvent{topic: topic, msg: Message{Header: maps.Clone(env.Header), Body: bytes.Clone(env.Body)}, peer: peer}
	defer func() {
		if p := recover(); p != nil {
			err = errors.InternalServerError(httpBrokerID, "subscriber of %s panicked: %v", topic, p)
		}
		if err != nil {
			ev.err = err
			s.b.mu.RLock()
			onErr := s.b.opts.ErrorHandler
			s.b.mu.RUnlock()
			if onErr != nil {
				_ = onErr(ev)
			}
		}
	}()
	return s.handler(ev)
}

// httpEvent is one delivery of the HTTP broker.
type httpEvent struct {
	topic string
	msg   Message
	err   error
	peer  string // the service of the publisher's verified TLS certificate
}

// PeerService returns the service named by the verified client certificate of the
// publisher's connection (mutual TLS with auth/ca certificates), or "".
func (e *httpEvent) PeerService() string { return e.peer }

func (e *httpEvent) Topic() string     { return e.topic }
func (e *httpEvent) Message() *Message { return &e.msg }

// Ack does nothing and returns nil: the handler's return acknowledges the delivery.
func (e *httpEvent) Ack() error   { return nil }
func (e *httpEvent) Error() error { return e.err }
