package server

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/jsonrpc"
	"github.com/seed-b3892490/micro/codec/protorpc"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/addr"
	"github.com/seed-b3892490/micro/internal/callctx"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/internal/inflight"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// DefaultCodecs are the codecs every server knows, by Content-Type. Entries added here
// before servers start are used for Content-Types that are not built in.
var DefaultCodecs = codecs.Builtin()

// rpcServer is the default Server.
type rpcServer struct {
	mu          sync.RWMutex
	opts        Options
	handlers    []Handler
	subscribers []*subscriber
	endpoints   atomic.Pointer[map[string]*endpoint]
	chain       atomic.Pointer[HandlerFunc] // the handler wrappers around the endpoint call

	// running state, guarded by mu
	started    bool
	listener   transport.Listener
	configured string // the Address before Start replaced it with the bound one
	exit       chan struct{}
	cancel     context.CancelCauseFunc
	baseCtx    context.Context
	registered bool
	brokerSubs []broker.Subscriber

	inflight inflight.Tracker
	running  atomic.Int64 // handlers running, counted when MaxConcurrent caps them
	acceptWg sync.WaitGroup
	regWg    sync.WaitGroup
}

// NewRPCServer returns the default server: handlers served over the transport (HTTP by
// default), registered in the registry while it runs.
func NewRPCServer(opts ...Option) Server {
	s := &rpcServer{opts: NewOptions(opts...)}
	empty := map[string]*endpoint{}
	s.endpoints.Store(&empty)
	s.buildChain()
	return s
}

func (s *rpcServer) String() string { return "mucp" }

func (s *rpcServer) Options() Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

// Init applies options. Options that concern the listener take effect at the next Start.
func (s *rpcServer) Init(opts ...Option) error {
	s.mu.Lock()
	for _, o := range opts {
		o(&s.opts)
	}
	s.opts.fill()
	s.mu.Unlock()
	s.buildChain()
	return nil
}

func (s *rpcServer) log() logger.Logger {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts.Logger
}

// buildChain wraps the endpoint call in the handler wrappers, first wrapper outermost.
func (s *rpcServer) buildChain() {
	s.mu.RLock()
	ws := s.opts.HdlrWrappers
	s.mu.RUnlock()
	fn := HandlerFunc(func(ctx context.Context, req Request, rsp interface{}) error {
		r, ok := req.(*rpcRequest)
		if !ok {
			return errors.InternalServerError("go.micro.server", "handler wrapper replaced the request with a %T", req)
		}
		if r.ep.stream {
			st, ok := rsp.(Stream)
			if !ok {
				return errors.InternalServerError("go.micro.server", "handler wrapper replaced the stream with a %T", rsp)
			}
			return r.ep.callStream(ctx, r.value, st)
		}
		return r.ep.call(ctx, r.value, rsp)
	})
	for i := len(ws) - 1; i >= 0; i-- {
		fn = ws[i](fn)
	}
	s.chain.Store(&fn)
}

func (s *rpcServer) NewHandler(h interface{}, opts ...HandlerOption) Handler {
	return NewRpcHandler(h, opts...)
}

// Handle registers a handler's endpoints. It fails for a handler with no endpoint and for
// an endpoint that is already registered. Handlers added while the server runs are
// served at once and advertised at the next registration.
func (s *rpcServer) Handle(h Handler) error {
	if h == nil {
		return stderrors.New("server: Handle(nil)")
	}
	src, ok := h.(endpointSource)
	if !ok {
		src = NewRpcHandler(h.Handler(), func(o *HandlerOptions) { *o = h.Options() }).(*rpcHandler)
	}
	eps, err := src.endpoints()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := *s.endpoints.Load()
	for _, e := range eps {
		if _, dup := old[e.name]; dup {
			s.mu.Unlock()
			return fmt.Errorf("server: endpoint %s is already registered", e.name)
		}
	}
	next := make(map[string]*endpoint, len(old)+len(eps))
	for k, v := range old {
		next[k] = v
	}
	for _, e := range eps {
		next[e.name] = e
	}
	s.endpoints.Store(&next)
	s.handlers = append(s.handlers, h)
	registered := s.registered
	s.mu.Unlock()
	if registered {
		if err := s.Register(); err != nil {
			s.log().Logf(logger.WarnLevel, "server: advertising new endpoints: %v", err)
		}
	}
	return nil
}

// Start listens, connects the broker, subscribes, registers and serves.
func (s *rpcServer) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return stderrors.New("server: already started")
	}
	config := s.opts
	lopts := []transport.ListenOption{}
	if config.MaxMsgSize > 0 {
		lopts = append(lopts, transport.ListenLimits(transport.Limits{MaxMsgSize: config.MaxMsgSize}))
	}
	if config.TLSConfig != nil {
		lopts = append(lopts, transport.ListenTLSConfig(config.TLSConfig))
	}
	lopts = append(lopts, config.ListenOptions...)
	ln, err := config.Transport.Listen(config.Address, lopts...)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if err := config.Broker.Connect(); err != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return fmt.Errorf("server: connect broker: %w", err)
	}
	s.listener = ln
	s.configured = config.Address
	s.opts.Address = ln.Addr()
	s.baseCtx, s.cancel = context.WithCancelCause(config.Context)
	s.exit = make(chan struct{})
	s.started = true
	s.mu.Unlock()

	if err := s.subscribeAll(); err != nil {
		s.rollback(ln)
		return err
	}
	config.Logger.Logf(logger.InfoLevel, "Transport [%s] Listening on %s", config.Transport.String(), ln.Addr())
	s.acceptWg.Add(1)
	go func() {
		defer s.acceptWg.Done()
		if err := ln.Accept(s.ServeConn); err != nil {
			s.log().Logf(logger.ErrorLevel, "server: accept: %v", err)
		}
	}()
	if err := config.RegisterCheck(s.baseCtx); err != nil {
		config.Logger.Logf(logger.WarnLevel, "server: register check failed, not registering yet: %v", err)
	} else if err := s.Register(); err != nil {
		config.Logger.Logf(logger.ErrorLevel, "server: register: %v (trying again in %s)", err, min(registerRetry, config.RegisterInterval))
	}
	s.regWg.Add(1)
	go s.registrar(config.RegisterInterval)
	return nil
}

// rollback undoes a Start that failed after listening.
func (s *rpcServer) rollback(ln transport.Listener) {
	s.unsubscribeAll()
	_ = ln.Close()
	s.mu.Lock()
	s.started = false
	s.opts.Address = s.configured
	s.listener = nil
	s.cancel(errStopping)
	s.mu.Unlock()
}

// registerRetry is the first wait before registering again after a failure; it doubles
// up to the register interval, so that a node is back soon after its registry is.
const registerRetry = time.Second

// registrar renews the registration every interval until Stop, deregistering while the
// register check fails. After a failed registration it tries again sooner: after 1 s,
// then twice as long each time, never longer than the interval.
func (s *rpcServer) registrar(interval time.Duration) {
	defer s.regWg.Done()
	if interval <= 0 {
		<-s.exit
		return
	}
	backoff := registerRetry
	wait := interval
	s.mu.RLock()
	if !s.registered {
		wait = min(backoff, interval)
	}
	s.mu.RUnlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-s.exit:
			return
		case <-t.C:
		}
		wait = interval
		s.mu.RLock()
		check, registered, ctx := s.opts.RegisterCheck, s.registered, s.baseCtx
		s.mu.RUnlock()
		if err := check(ctx); err != nil {
			if registered {
				s.log().Logf(logger.WarnLevel, "server: register check failed, deregistering: %v", err)
				if derr := s.Deregister(); derr != nil {
					s.log().Logf(logger.ErrorLevel, "server: deregister: %v", derr)
				}
			}
		} else if err := s.Register(); err != nil {
			wait = min(backoff, interval)
			backoff *= 2
			s.log().Logf(logger.ErrorLevel, "server: register: %v (trying again in %s)", err, wait)
		} else {
			backoff = registerRetry
		}
		t.Reset(wait)
	}
}

// service builds the registry entry of this node.
func (s *rpcServer) service() (*registry.Service, time.Duration, registry.Registry, error) {
	s.mu.RLock()
	config := s.opts
	handlers := append([]Handler(nil), s.handlers...)
	subs := append([]*subscriber(nil), s.subscribers...)
	s.mu.RUnlock()
	advertise := config.Advertise
	if advertise == "" {
		advertise = config.Address
	}
	address, err := addr.Advertise(advertise)
	if err != nil {
		return nil, 0, nil, err
	}
	md := make(map[string]string, len(config.Metadata)+5)
	for k, v := range config.Metadata {
		md[k] = v
	}
	md["transport"] = config.Transport.String()
	md["broker"] = config.Broker.String()
	md["server"] = s.String()
	md["registry"] = config.Registry.String()
	md["protocol"] = "mucp"
	if ht, ok := config.Transport.(*transport.HTTPTransport); ok && ht.NativeListen() {
		md[transport.WireMetadata] = transport.WireNative // clients skip asking the node
	}
	var eps []*registry.Endpoint
	for _, h := range handlers {
		if h.Options().Internal {
			continue
		}
		eps = append(eps, h.Endpoints()...)
	}
	for _, sb := range subs {
		if sb.Options().Internal {
			continue
		}
		eps = append(eps, sb.Endpoints()...)
	}
	sortEndpoints(eps)
	return &registry.Service{
		Name:      config.Name,
		Version:   config.Version,
		Nodes:     []*registry.Node{{Id: config.Name + "-" + config.Id, Address: address, Metadata: md}},
		Endpoints: eps,
	}, config.RegisterTTL, config.Registry, nil
}

// Register registers this node, retrying twice with a short backoff.
func (s *rpcServer) Register() error {
	svc, ttl, reg, err := s.service()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err = reg.Register(svc, registry.RegisterTTL(ttl))
		if err == nil || attempt == 2 {
			break
		}
		select {
		case <-time.After(time.Duration(100*(attempt+1)) * time.Millisecond):
		case <-s.exitChan():
			return err
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.registered = true
	s.mu.Unlock()
	return nil
}

func (s *rpcServer) exitChan() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.exit
}

// Deregister removes this node from the registry.
func (s *rpcServer) Deregister() error {
	svc, _, reg, err := s.service()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.registered = false
	s.mu.Unlock()
	return reg.Deregister(svc)
}

// Stop deregisters the node, stops accepting calls, waits up to DrainTimeout for the calls
// in flight, cancels what is left, and disconnects the broker. It is idempotent.
func (s *rpcServer) Stop() error {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = false
	close(s.exit)
	ln, config, cancel := s.listener, s.opts, s.cancel
	s.mu.Unlock()

	s.regWg.Wait()
	var errs []error
	if err := s.Deregister(); err != nil {
		errs = append(errs, fmt.Errorf("deregister: %w", err))
	}
	s.unsubscribeAll()

	// The listener stops accepting at once and drains in the background; the calls in
	// flight get DrainTimeout to finish. Those still running then (long streams, stuck
	// handlers) are cancelled with "server stopping", which open streams deliver to their
	// clients before the connections close.
	ctx, cancelDrain := context.WithTimeout(context.Background(), config.DrainTimeout)
	defer cancelDrain()
	drained := make(chan struct{})
	transportCtx, cancelTransport := context.WithCancel(context.Background())
	defer cancelTransport()
	if d, ok := ln.(transport.Drainer); ok {
		go func() {
			defer close(drained)
			_ = d.Drain(transportCtx)
		}()
	} else {
		_ = ln.Close()
		close(drained)
	}
	if err := s.inflight.Wait(ctx); err != nil {
		cancel(errStopping)
		grace, cancelGrace := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if s.inflight.Wait(grace) != nil {
			config.Logger.Logf(logger.WarnLevel, "server: %d calls still running after the %s drain timeout", s.inflight.Len(), config.DrainTimeout)
		}
		cancelGrace()
		// what is left is cut off
		time.AfterFunc(200*time.Millisecond, cancelTransport)
	}
	<-drained
	_ = ln.Close()
	s.acceptWg.Wait()
	cancel(errStopping)
	if err := config.Broker.Disconnect(); err != nil {
		errs = append(errs, fmt.Errorf("disconnect broker: %w", err))
	}
	s.mu.Lock()
	s.opts.Address = s.configured
	s.listener = nil
	s.mu.Unlock()
	return stderrors.Join(errs...)
}

// contexter is implemented by sockets that know the context of their call.
type contexter interface {
	Context() context.Context
}

// ServeConn serves the messages of one socket until it ends.
func (s *rpcServer) ServeConn(sock transport.Socket) {
	msg := messagePool.Get().(*transport.Message)
	defer func() {
		*msg = transport.Message{}
		messagePool.Put(msg)
	}()
	for {
		*msg = transport.Message{}
		if err := sock.Recv(msg); err != nil {
			if err == io.EOF {
				return
			}
			var merr *errors.Error
			if stderrors.As(err, &merr) {
				s.sendError(sock, merr)
			}
			return
		}
		s.mu.RLock()
		wg, limit, name := s.opts.WaitGroup, s.opts.MaxConcurrent, s.opts.Name
		s.mu.RUnlock()
		if limit > 0 && s.running.Add(1) > int64(limit) {
			s.running.Add(-1)
			s.refuse(sock, name, limit)
			if msg.Header[transport.StreamHeader] != "" {
				return
			}
			continue
		}
		s.inflight.Add()
		if wg != nil {
			wg.Add(1)
		}
		s.serve(sock, msg)
		if wg != nil {
			wg.Done()
		}
		s.inflight.Done()
		if limit > 0 {
			s.running.Add(-1)
		}
		if msg.Header[transport.StreamHeader] != "" {
			return // a stream owns its socket to the end
		}
	}
}

// refuse answers a request the server has no room for: 503 with Micro-Not-Started, which
// tells the client that no handler ran.
func (s *rpcServer) refuse(sock transport.Socket, name string, limit int) {
	e := errors.New(name, fmt.Sprintf("server overloaded: %d calls in progress; try another node", limit), 503).(*errors.Error)
	js := e.Error()
	_ = sock.Send(&transport.Message{
		Header: map[string]string{
			headers.ContentType: "application/json",
			headers.Error:       js,
			headers.Status:      strconv.Itoa(e.HTTPStatus()),
			headers.NotStarted:  "overloaded",
		},
		Body: []byte(js),
	})
}

func (s *rpcServer) sendError(sock transport.Socket, e *errors.Error) {
	js := e.Error()
	_ = sock.Send(&transport.Message{
		Header: map[string]string{
			headers.ContentType: "application/json",
			headers.Error:       js,
			headers.Status:      strconv.Itoa(e.HTTPStatus()),
		},
		Body: []byte(js),
	})
}

// endpointName finds the endpoint a request names: the Micro-Endpoint header (or its
// X- and Micro-Method variants), else the path /Type/Method or /Type.Method.
func endpointName(h map[string]string) string {
	for _, k := range [...]string{"Micro-Endpoint", "X-Micro-Endpoint", "Micro-Method", "X-Micro-Method"} {
		if v := h[k]; v != "" {
			return v
		}
	}
	p := strings.Trim(h[headers.Path], "/")
	if p == "" {
		return ""
	}
	if i := strings.IndexByte(p, '/'); i >= 0 && !strings.Contains(p[:i], ".") {
		return p[:i] + "." + p[i+1:]
	}
	return p
}

// serve answers one request.
func (s *rpcServer) serve(sock transport.Socket, msg *transport.Message) {
	s.mu.RLock()
	name, codecsOpt, router := s.opts.Name, s.opts.Codecs, s.opts.Router
	maxTimeout, baseCtx, log := s.opts.MaxTimeout, s.baseCtx, s.opts.Logger
	s.mu.RUnlock()
	if baseCtx == nil {
		baseCtx = context.Background()
	}
	hdr := msg.Header
	if hdr == nil {
		hdr = map[string]string{}
	}
	epName := endpointName(hdr)
	ctMedia := codecs.MediaType(hdr[headers.ContentType])
	if topic := hdr[headers.Message]; topic != "" && epName == "" {
		s.serveEvent(sock, msg, topic, name)
		return
	}
	if env := envelopeCodec(ctMedia, epName); env != nil {
		s.serveEnvelope(sock, msg, env, name, maxTimeout, baseCtx, log)
		return
	}
	if epName == "" {
		s.sendError(sock, errors.BadRequest(name, "missing Micro-Endpoint header: name the endpoint as Type.Method, or POST to /Type/Method").(*errors.Error))
		return
	}
	if err := validEndpointName(epName); err != nil {
		s.sendError(sock, errors.BadRequest(name, "Micro-Endpoint %q is not of the form Type.Method", epName).(*errors.Error))
		return
	}
	ct := hdr[headers.ContentType]
	media := codecs.MediaType(ct)
	if ct == "" {
		ct, media = DefaultContentType, DefaultContentType
	}
	m, ok := codecs.Lookup(media, codecsOpt, DefaultCodecs)
	if !ok {
		s.sendError(sock, errors.UnsupportedMediaType(name, "unsupported Content-Type %q: use one of %s", ct, strings.Join(codecs.Supported(codecsOpt, DefaultCodecs), ", ")).(*errors.Error))
		return
	}
	if ep := (*s.endpoints.Load())[epName]; ep != nil && ep.stream {
		maxTimeout = 0 // a stream lives as long as its caller wants (or its own deadline)
	}
	ctx, cancel, err := s.requestContext(baseCtx, sock, hdr, maxTimeout, name)
	if err != nil {
		s.sendError(sock, err.(*errors.Error))
		return
	}
	defer cancel.Cancel()
	nc, _ := codecs.NewCodec(media, codecsOpt, DefaultCodecs)
	service := hdr["Micro-Service"]
	if service == "" {
		service = name
	}
	req := &rpcRequest{service: service, endpoint: epName, contentType: ct, header: hdr, body: msg.Body, newCodec: nc}

	if router != nil {
		rsp := &rpcResponse{newCodec: nc}
		if err := s.call(ctx, log, epName, func() error { return router.ServeRequest(ctx, req, rsp) }); err != nil {
			s.sendError(sock, s.toError(name, err))
			return
		}
		out := map[string]string{headers.ContentType: ct}
		for k, v := range rsp.header {
			out[k] = v
		}
		body := rsp.body
		if body == nil {
			body = rsp.buf.Bytes()
		}
		_ = sock.Send(&transport.Message{Header: out, Body: body})
		return
	}

	ep := (*s.endpoints.Load())[epName]
	if ep == nil {
		s.sendError(sock, errors.NotFound(name, "unknown endpoint %q", epName).(*errors.Error))
		return
	}
	req.ep = ep
	if ep.stream {
		s.serveStream(ctx, sock, req, m, media, msg.Body, log)
		return
	}
	if hdr[transport.StreamHeader] != "" {
		s.sendError(sock, errors.BadRequest(name, "endpoint %s is not a stream: call it without Micro-Stream", epName).(*errors.Error))
		return
	}
	req.value = ep.newRequest()
	if len(msg.Body) > 0 {
		if err := m.Unmarshal(msg.Body, req.value); err != nil {
			s.sendError(sock, errors.BadRequest(name, "cannot decode the %s request of %s: %v", media, epName, err).(*errors.Error))
			return
		}
	}
	rsp := ep.newReply()
	chain := *s.chain.Load()
	if err := s.call(ctx, log, epName, func() error { return chain(ctx, req, rsp) }); err != nil {
		s.sendError(sock, s.toError(name, err))
		return
	}
	buf := codecs.GetBuf()
	body, owned, err := codecs.MarshalAppend(m, *buf, rsp)
	if err != nil {
		codecs.PutBuf(buf, nil, false)
		s.sendError(sock, errors.InternalServerError(name, "cannot encode the %s reply of %s: %v", media, epName, err).(*errors.Error))
		return
	}
	req.reply = transport.Message{Header: replyHeader(ct), Body: body} // in req: no allocation of its own
	_ = sock.Send(&req.reply)
	req.reply.Body = nil
	codecs.PutBuf(buf, body, owned) // Send is done with the body
}

// messagePool recycles the Message each ServeConn reads requests into (nothing keeps a
// pointer to it once the call is served).
var messagePool = sync.Pool{New: func() any { return new(transport.Message) }}

// replyHeaders caches the header maps of plain replies by Content-Type. Transports only
// read a Message's Header, so one map serves every reply of its type.
var (
	replyHeaders   sync.Map // content type → map[string]string
	replyHeaderLen atomic.Int64
)

// replyHeader returns the header of a reply of Content-Type ct. Do not modify it.
func replyHeader(ct string) map[string]string {
	if v, ok := replyHeaders.Load(ct); ok {
		return v.(map[string]string)
	}
	h := map[string]string{headers.ContentType: ct}
	if replyHeaderLen.Load() < 64 { // a bound: a client chooses the types
		if _, loaded := replyHeaders.LoadOrStore(ct, h); !loaded {
			replyHeaderLen.Add(1)
		}
	}
	return h
}

// envelopeCodec returns the codec of Go Micro's legacy envelopes: application/json-rpc
// and application/proto-rpc, and a JSON or protobuf body that names no endpoint (the
// envelope carries it).
func envelopeCodec(media, endpoint string) codec.NewCodec {
	switch {
	case media == "application/json-rpc":
		return jsonrpc.NewCodec
	case media == "application/proto-rpc":
		return protorpc.NewCodec
	case endpoint != "":
		return nil
	case media == "application/json":
		return jsonrpc.NewCodec
	case media == "application/protobuf", media == "application/x-protobuf", media == "application/octet-stream":
		return protorpc.NewCodec
	}
	return nil
}

// serveEnvelope serves a call in a legacy envelope, as Go Micro does: the reply is an
// envelope too, with status 200, and an error travels in the envelope and the
// Micro-Error header.
func (s *rpcServer) serveEnvelope(sock transport.Socket, msg *transport.Message, newEnv codec.NewCodec, name string, maxTimeout time.Duration, baseCtx context.Context, log logger.Logger) {
	hdr := msg.Header
	ct := hdr[headers.ContentType]
	in := newEnv(codecs.NewBuffer(msg.Body))
	var env codec.Message
	reply := func(rsp interface{}, e *errors.Error) {
		out := map[string]string{headers.ContentType: ct}
		wm := &codec.Message{Type: codec.Response, Id: env.Id, Endpoint: env.Endpoint, Method: env.Method}
		if e != nil {
			wm.Error = e.Error()
			out[headers.Error] = wm.Error
			rsp = nil
		}
		var buf codecs.Buffer
		if err := newEnv(&buf).Write(wm, rsp); err != nil {
			s.sendError(sock, errors.InternalServerError(name, "cannot encode the reply of %s: %v", env.Endpoint, err).(*errors.Error))
			return
		}
		_ = sock.Send(&transport.Message{Header: out, Body: buf.Bytes()})
	}
	if err := in.ReadHeader(&env, codec.Request); err != nil {
		// not an envelope: the caller most likely forgot the endpoint
		s.sendError(sock, errors.BadRequest(name, "missing Micro-Endpoint header: name the endpoint as Type.Method, POST to /Type/Method, or send a %s envelope (%v)", newEnv(&codecs.Buffer{}).String(), err).(*errors.Error))
		return
	}
	if err := validEndpointName(env.Endpoint); err != nil {
		reply(nil, errors.BadRequest(name, "method %q is not of the form Type.Method", env.Endpoint).(*errors.Error))
		return
	}
	ep := (*s.endpoints.Load())[env.Endpoint]
	if ep == nil {
		reply(nil, errors.NotFound(name, "unknown endpoint %q", env.Endpoint).(*errors.Error))
		return
	}
	if ep.stream {
		reply(nil, errors.BadRequest(name, "endpoint %s is a stream: an envelope carries one request", env.Endpoint).(*errors.Error))
		return
	}
	ctx, cancel, err := s.requestContext(baseCtx, sock, hdr, maxTimeout, name)
	if err != nil {
		reply(nil, err.(*errors.Error))
		return
	}
	defer cancel.Cancel()
	req := &rpcRequest{service: name, endpoint: env.Endpoint, contentType: ct, header: hdr, body: msg.Body, ep: ep, newCodec: newEnv}
	req.value = ep.newRequest()
	if err := in.ReadBody(req.value); err != nil {
		reply(nil, errors.BadRequest(name, "cannot decode the request of %s: %v", env.Endpoint, err).(*errors.Error))
		return
	}
	rsp := ep.newReply()
	chain := *s.chain.Load()
	if err := s.call(ctx, log, env.Endpoint, func() error { return chain(ctx, req, rsp) }); err != nil {
		reply(nil, s.toError(name, err))
		return
	}
	reply(rsp, nil)
}

// serveStream runs a stream handler. A request carrying Micro-Stream is a framed stream;
// any other (curl) gets the request body as its one message and newline-delimited JSON
// replies.
func (s *rpcServer) serveStream(ctx context.Context, sock transport.Socket, req *rpcRequest, m codec.Marshaler, media string, body []byte, log logger.Logger) {
	name := s.Options().Name
	ep := req.ep
	req.stream = true
	st := &rpcStream{ctx: ctx, req: req, sock: sock, m: m, ct: req.contentType}
	framed := req.header[transport.StreamHeader] != ""
	// a Recv blocked on the client must end with the handler's context
	stop := context.AfterFunc(ctx, func() { _ = sock.Close() })
	defer stop()
	if !framed {
		if media != "application/json" {
			s.sendError(sock, errors.UnsupportedMediaType(name, "stream %s over plain HTTP speaks application/json (newline-delimited); send Micro-Stream for framed %s", req.endpoint, media).(*errors.Error))
			return
		}
		st.ndjson = true
		if !ep.serverStream && len(body) > 0 {
			st.pending = body
		}
	} else {
		st.dropOpen = !ep.serverStream
		// answer the opening at once, so the client learns the stream is accepted
		if err := sock.Send(&transport.Message{Header: map[string]string{transport.Open: "1", headers.ContentType: req.contentType}}); err != nil {
			return
		}
	}
	if ep.serverStream {
		req.value = ep.newRequest()
		var reqBody []byte
		if framed {
			var first transport.Message
			if err := sock.Recv(&first); err != nil && err != io.EOF {
				s.endStream(sock, st, errors.BadRequest(name, "reading the request of %s: %v", req.endpoint, err).(*errors.Error))
				return
			}
			reqBody = first.Body
		} else {
			reqBody = body
		}
		if len(reqBody) > 0 {
			if err := m.Unmarshal(reqBody, req.value); err != nil {
				s.endStream(sock, st, errors.BadRequest(name, "cannot decode the %s request of %s: %v", media, req.endpoint, err).(*errors.Error))
				return
			}
		}
	}
	chain := *s.chain.Load()
	err := s.call(ctx, log, req.endpoint, func() error { return chain(ctx, req, st) })
	if err != nil {
		s.endStream(sock, st, s.toError(name, err))
		return
	}
	s.endStream(sock, st, nil)
}

// endStream ends a stream with e (nil for a clean end). An NDJSON stream that sent
// nothing yet answers with a plain error response instead.
func (s *rpcServer) endStream(sock transport.Socket, st *rpcStream, e *errors.Error) {
	if st.ndjson && st.sentCount() == 0 {
		if e != nil {
			s.sendError(sock, e)
			return
		}
		_ = sock.Send(&transport.Message{Header: map[string]string{transport.NDJSON: "1", headers.ContentType: st.ct}})
	}
	end := map[string]string{transport.EOS: "1"}
	if e != nil {
		end[headers.Error] = e.Error()
	}
	st.smu.Lock()
	defer st.smu.Unlock()
	_ = sock.Send(&transport.Message{Header: end})
}

// call runs fn, turning a panic into a 500 error and logging it with its stack.
func (s *rpcServer) call(ctx context.Context, log logger.Logger, ep string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Logf(logger.ErrorLevel, "server: handler %s panicked: %v\n%s", ep, r, debug.Stack())
			err = errors.InternalServerError(s.Options().Name, "handler %s panicked", ep)
		}
	}()
	return fn()
}

// errStopping is the cause of handler contexts cancelled by a stopping server.
var errStopping = stderrors.New("server stopping")

// toError turns a handler error into the error sent to the caller.
func (s *rpcServer) toError(name string, err error) *errors.Error {
	var e *errors.Error
	if stderrors.As(err, &e) {
		return e
	}
	s.mu.RLock()
	base := s.baseCtx
	s.mu.RUnlock()
	switch {
	case base != nil && stderrors.Is(err, context.Canceled) && context.Cause(base) == errStopping:
		return errors.Wrap(err, name, 503, "server stopping")
	case stderrors.Is(err, context.DeadlineExceeded):
		return errors.Wrap(err, name, 408, "")
	case stderrors.Is(err, context.Canceled):
		return errors.Wrap(err, name, errors.StatusClientClosedRequest, "")
	}
	return errors.Wrap(err, name, 500, "")
}

// requestContext builds a handler's context: metadata from the headers, the caller's
// deadline clamped to maxTimeout (0: no cap), cancelled when the call's socket ends or the server is
// forced to stop.
func (s *rpcServer) requestContext(base context.Context, sock transport.Socket, hdr map[string]string, maxTimeout time.Duration, name string) (context.Context, canceler, error) {
	timeout := maxTimeout
	if v := hdr[headers.Timeout]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, nil, errors.BadRequest(name, "invalid Timeout header %q: want a whole number of nanoseconds", v)
		}
		if d := time.Duration(n); d > 0 && (timeout <= 0 || d < timeout) {
			timeout = d
		}
	}
	parent := base
	if c, ok := sock.(contexter); ok {
		parent = c.Context()
	}
	start := time.Now()
	if r, ok := sock.(interface{ Received() time.Time }); ok {
		start = r.Received()
	}
	md := callMetadata(sock, hdr)
	if parent == base {
		// A socket without a context of its own (native): the handler's context is one
		// whose timer starts only if someone waits on it; the socket cancels it when the
		// caller abandons the call or its connection closes.
		var deadline time.Time
		if timeout > 0 {
			deadline = start.Add(timeout)
		}
		cc := callctx.New(base, deadline)
		if oc, ok := sock.(interface{ OnCancelCall(interface{ Cancel() }) }); ok {
			oc.OnCancelCall(cc)
		} else if oc, ok := sock.(interface{ OnCancel(func()) }); ok {
			oc.OnCancel(cc.Cancel)
		}
		return metadata.NewContextNoCopy(cc, md), cc, nil
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithDeadline(parent, start.Add(timeout))
	} else {
		ctx, cancel = context.WithCancel(parent)
	}
	var stop func() bool
	if base.Done() != nil {
		stop = context.AfterFunc(base, cancel)
	}
	if oc, ok := sock.(interface{ OnCancel(func()) }); ok {
		oc.OnCancel(cancel)
	}
	ctx = metadata.NewContextNoCopy(ctx, md)
	return ctx, cancelFunc(func() {
		if stop != nil {
			stop()
		}
		cancel()
	}), nil
}

// canceler ends a handler's context.
type canceler interface{ Cancel() }

// cancelFunc is a func as a canceler.
type cancelFunc func()

// Cancel calls f.
func (f cancelFunc) Cancel() { f() }

// ownedHeader is implemented by sockets whose request header map belongs to the call
// alone (native): the call's metadata is made from it in place instead of from a copy.
type ownedHeader interface {
	HeaderOwned() bool
}

// callMetadata returns the metadata of a call: its headers without pseudo-headers and
// server-owned names, with the server's own Local, Remote and peer service.
func callMetadata(sock transport.Socket, hdr map[string]string) metadata.Metadata {
	var md metadata.Metadata
	if o, ok := sock.(ownedHeader); ok && o.HeaderOwned() {
		md = metadata.Metadata(hdr)
		for k := range md {
			if len(k) == 0 || k[0] == ':' || serverOwned(k) {
				delete(md, k)
			}
		}
	} else {
		md = make(metadata.Metadata, len(hdr)+3)
		for k, v := range hdr {
			if len(k) > 0 && k[0] != ':' && !serverOwned(k) {
				md[k] = v
			}
		}
	}
	md["Local"] = sock.Local()
	md["Remote"] = sock.Remote()
	if peer, ok := peerService(sock); ok {
		md[PeerServiceKey] = peer
	}
	return md
}

// subscribeAll subscribes every subscriber to the broker.
func (s *rpcServer) subscribeAll() error {
	s.mu.RLock()
	subs := append([]*subscriber(nil), s.subscribers...)
	s.mu.RUnlock()
	for _, sb := range subs {
		if err := s.subscribe(sb); err != nil {
			return err
		}
	}
	return nil
}

func (s *rpcServer) unsubscribeAll() {
	s.mu.Lock()
	subs := s.brokerSubs
	s.brokerSubs = nil
	s.mu.Unlock()
	for _, sb := range subs {
		_ = sb.Unsubscribe()
	}
}
