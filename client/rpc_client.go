package client

import (
	"context"
	stderrors "errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/seed-b3892490/micro/broker"
	mbytes "github.com/seed-b3892490/micro/codec/bytes"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/callctx"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

const clientID = "go.micro.client"

// deadlineSlack is how close to its deadline a call must be for a 408 from the server to
// count as the expiry of the deadline the call itself sent.
const deadlineSlack = 10 * time.Millisecond

// DefaultCodecs are the codecs every client knows, by Content-Type. Entries added here
// before clients are used serve Content-Types that are not built in.
var DefaultCodecs = codecs.Builtin()

type rpcClient struct {
	mu   sync.RWMutex
	opts Options
	// sel is the selector calls use: Options.Selector, or one this client made (owned).
	sel      selector.Selector
	ownedSel bool
	seq      atomic.Uint64
	closed   bool

	connMu    sync.Mutex
	connected broker.Broker // the broker Publish has connected

	budget *budget // nil: no retry budget

	callFn CallFunc // c.call, made once

	addrNexts sync.Map // address → selector.Next, for calls WithAddress
	addrCount atomic.Int64
}

func newRPCClient(opts ...Option) Client {
	c := &rpcClient{opts: NewOptions(opts...)}
	c.callFn = c.call
	c.setSelector()
	c.setBudget()
	var out Client = c
	for i := len(c.opts.Wrappers) - 1; i >= 0; i-- {
		out = c.opts.Wrappers[i](out)
	}
	return out
}

// setSelector uses the configured selector or makes one over the registry. Called with
// mu held or before the client is shared.
func (c *rpcClient) setSelector() {
	if c.ownedSel && c.sel != nil {
		_ = c.sel.Close()
	}
	if c.opts.Selector != nil {
		c.sel, c.ownedSel = c.opts.Selector, false
		return
	}
	c.sel = selector.NewSelector(selector.Registry(c.opts.Registry))
	c.ownedSel = true
}

func (c *rpcClient) String() string { return "mucp" }

// Init applies options. A new registry or selector takes effect for the next call.
func (c *rpcClient) Init(opts ...Option) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	oldReg, oldSel := c.opts.Registry, c.opts.Selector
	for _, o := range opts {
		o(&c.opts)
	}
	c.opts.fill()
	if c.opts.Registry != oldReg || c.opts.Selector != oldSel {
		c.setSelector()
	}
	c.setBudget()
	return nil
}

// setBudget makes the retry budget of the options. Called with mu held or before the
// client is shared.
func (c *rpcClient) setBudget() {
	if c.opts.RetryBudgetRatio < 0 {
		c.budget = nil
		return
	}
	if b := c.budget; b != nil && b.ratio == c.opts.RetryBudgetRatio && b.perSecond == c.opts.RetryBudgetPerSecond {
		return
	}
	c.budget = newBudget(c.opts.RetryBudgetRatio, c.opts.RetryBudgetPerSecond)
}

func (c *rpcClient) Options() Options {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.opts
}

// Close releases the selector this client made (and its registry cache). The client
// still works afterwards, reading the registry without a cache.
func (c *rpcClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ownedSel && c.sel != nil && !c.closed {
		c.closed = true
		return c.sel.Close()
	}
	return nil
}

func (c *rpcClient) NewMessage(topic string, msg interface{}, opts ...MessageOption) Message {
	return newMessage(topic, msg, c.Options().ContentType, opts...)
}

func (c *rpcClient) NewRequest(service, endpoint string, req interface{}, reqOpts ...RequestOption) Request {
	return newRequest(service, endpoint, req, c.Options().ContentType, reqOpts...)
}

// Call calls req's endpoint and decodes the reply into rsp (a pointer). It returns an
// *errors.Error; see the package doc.
func (c *rpcClient) Call(ctx context.Context, req Request, rsp interface{}, opts ...CallOption) error {
	c.mu.RLock()
	copts := c.opts.CallOptions
	sel, budget := c.sel, c.budget
	c.mu.RUnlock()
	for _, o := range opts {
		o(&copts)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	budget.call()
	if _, ok := ctx.Deadline(); !ok || copts.requestTimeoutSet {
		// its timer starts only if something waits on the context; the native transport
		// waits with a timer of its own
		cc := callctx.New(ctx, time.Now().Add(copts.RequestTimeout))
		defer cc.Cancel()
		ctx = cc
	}
	if copts.Idempotent {
		ctx = context.WithValue(ctx, idempotentKey{}, true)
	}
	if err := ctx.Err(); err != nil {
		return contextError(err, req)
	}

	next, err := c.next(ctx, req, copts, sel)
	if err != nil {
		return err
	}
	call := c.callFn
	for i := len(copts.CallWrappers) - 1; i >= 0; i-- {
		call = copts.CallWrappers[i](call)
	}

	// tried is made on the first retry: most calls make one attempt
	var tried map[string]bool
	var firstID string
	var lastErr error
	for attempt := 0; attempt <= copts.Retries; attempt++ {
		if attempt == 1 {
			tried = map[string]bool{firstID: true}
		}
		node, err := pick(next, tried)
		if err != nil {
			if lastErr != nil {
				return lastErr
			}
			return errors.Wrap(err, clientID, 503, fmt.Sprintf("service %s: %v", req.Service(), err))
		}
		if attempt >= 2 || tried[node.Id] {
			// The first retry goes at once to another node; later ones, and any retry of
			// a node already tried, wait with exponential backoff and jitter.
			d, berr := copts.Backoff(ctx, req, attempt)
			if berr != nil {
				return errors.Wrap(berr, clientID, 500, "")
			}
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return contextError(ctx.Err(), req)
				case <-t.C:
				}
			}
		}
		if attempt == 0 {
			firstID = node.Id
		} else {
			tried[node.Id] = true
		}
		if copts.Hedge && copts.Idempotent {
			if tried == nil {
				tried = map[string]bool{firstID: true}
			}
			err = hedged(ctx, call, next, tried, node, req, rsp, copts, sel, budget)
		} else {
			err = tryNode(ctx, call, sel, node, req, rsp, copts)
		}
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return contextError(ctx.Err(), req)
		}
		retry, rerr := copts.Retry(ctx, req, attempt, err)
		if rerr != nil {
			return rerr
		}
		if !retry || attempt == copts.Retries {
			return err
		}
		// A request that never left, or that a server refused before starting a handler,
		// costs no backend anything; any other retry is paid from the budget, so that a
		// failing backend gets no multiplied traffic.
		if !transport.IsNotSent(err) && !isNotStarted(err) && !budget.retry() {
			return err
		}
	}
	return lastErr
}

func (o CallOptions) isAddressCall() bool { return len(o.Address) > 0 }

// track tells a selector that learns load (selector.Tracker) that an attempt on node
// begins; the returned func reports its end. Attempts on given addresses are not its.
func track(sel selector.Selector, service string, node *registry.Node, copts CallOptions) func(error) {
	if t, ok := sel.(selector.Tracker); ok && !copts.isAddressCall() {
		return t.Track(service, node)
	}
	return untracked
}

func untracked(error) {}

// pick returns an untried node when it can find one in a few draws, else a tried one.
func pick(next selector.Next, tried map[string]bool) (*registry.Node, error) {
	var first *registry.Node
	for i := 0; i < 8; i++ {
		n, err := next()
		if err != nil {
			if first != nil {
				return first, nil
			}
			return nil, err
		}
		if !tried[n.Id] {
			return n, nil
		}
		if first == nil {
			first = n
		}
	}
	return first, nil
}

// next returns the node source of a call: the given addresses, or the selector.
func (c *rpcClient) next(ctx context.Context, req Request, copts CallOptions, sel selector.Selector) (selector.Next, error) {
	if len(copts.Address) == 1 {
		return c.addressNext(copts.Address[0]), nil
	}
	if len(copts.Address) > 0 {
		nodes := make([]*registry.Node, len(copts.Address))
		for i, a := range copts.Address {
			nodes[i] = &registry.Node{Id: a, Address: a, Metadata: map[string]string{"protocol": "mucp"}}
		}
		return func() (*registry.Node, error) { return nodes[rand.IntN(len(nodes))], nil }, nil
	}
	sopts := copts.SelectOptions
	if copts.HashMetadata != "" {
		if v, ok := metadata.Get(ctx, copts.HashMetadata); ok && v != "" {
			// first, so that a WithHashKey of the call's own overrides it
			sopts = append([]selector.SelectOption{selector.WithHashKey(v)}, sopts...)
		}
	}
	next, err := sel.Select(req.Service(), sopts...)
	switch {
	case err == nil:
		return next, nil
	case stderrors.Is(err, selector.ErrNotFound):
		return nil, errors.Wrap(err, clientID, 503, fmt.Sprintf("service %s: not found", req.Service()))
	case stderrors.Is(err, selector.ErrNoneAvailable):
		return nil, errors.Wrap(err, clientID, 503, fmt.Sprintf("service %s: no node available", req.Service()))
	}
	return nil, errors.Wrap(err, clientID, 500, fmt.Sprintf("service %s: %v", req.Service(), err))
}

// maxAddressCache bounds the addresses addressNext remembers.
const maxAddressCache = 1024

// addressNext returns the node source of a call to one given address; the node of each
// address is made once (it is only read).
func (c *rpcClient) addressNext(addr string) selector.Next {
	if v, ok := c.addrNexts.Load(addr); ok {
		return v.(selector.Next)
	}
	node := &registry.Node{Id: addr, Address: addr, Metadata: map[string]string{"protocol": "mucp"}}
	next := selector.Next(func() (*registry.Node, error) { return node, nil })
	if c.addrCount.Load() < maxAddressCache {
		if _, loaded := c.addrNexts.LoadOrStore(addr, next); !loaded {
			c.addrCount.Add(1)
		}
	}
	return next
}

// contextError turns a context error into an *errors.Error that wraps it.
func contextError(err error, req Request) error {
	code := int32(408)
	if stderrors.Is(err, context.Canceled) {
		code = errors.StatusClientClosedRequest
	}
	return errors.Wrap(err, clientID, code, fmt.Sprintf("call %s.%s: %v", req.Service(), req.Endpoint(), err))
}

// reserved lists headers the client sets itself or that describe a connection: they are
// never copied from the context's metadata, so metadata received by a handler does not
// leak into the calls it makes.
var reserved = []string{
	"Micro-Service", "Micro-Endpoint", "Micro-Method", "Micro-Id", "Micro-Stream", "Micro-Topic",
	"Micro-Error", "Micro-Protocol", "Micro-Target", "Content-Type", "Content-Length", "Accept",
	"Timeout", "User-Agent", "Local", "Remote", "Host", "Connection", "Te", "Transfer-Encoding",
	"Upgrade", "Keep-Alive", "Trailer", "Http2-Settings", "Accept-Encoding", "Micro-Peer-Service",
}

func isReserved(k string) bool {
	if len(k) > 2 && (k[0] == 'X' || k[0] == 'x') && k[1] == '-' && len(k) > 8 && strings.EqualFold(k[2:8], "micro-") {
		return true
	}
	if len(k) > 6 && strings.EqualFold(k[:6], "proxy-") {
		return true
	}
	for _, r := range reserved {
		if len(r) == len(k) && strings.EqualFold(r, k) {
			return true
		}
	}
	return false
}

// validHeader reports whether a metadata pair can travel as an HTTP header.
func validHeader(k, v string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", ch) >= 0 {
			return false
		}
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

// call makes one attempt on one node.
func (c *rpcClient) call(ctx context.Context, node *registry.Node, req Request, rsp interface{}, copts CallOptions) error {
	c.mu.RLock()
	tr, custom, maxMsg := c.opts.Transport, c.opts.Codecs, c.opts.MaxMsgSize
	c.mu.RUnlock()
	ct := req.ContentType()
	media := codecs.MediaType(ct)
	m, ok := codecs.Lookup(media, custom, DefaultCodecs)
	if !ok {
		return errors.InternalServerError(clientID, "unsupported Content-Type %q", ct)
	}
	bodyBuf := codecs.GetBuf()
	body, owned, err := codecs.MarshalAppend(m, *bodyBuf, req.Body())
	if err != nil {
		codecs.PutBuf(bodyBuf, nil, false)
		return errors.Wrap(err, clientID, 500, fmt.Sprintf("encode the %s request of %s: %v", media, req.Endpoint(), err))
	}
	if copts.ConnectionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, copts.ConnectionTimeout)
		defer cancel()
	}
	sock, err := dial(tr, node.Address, transport.DialOptions{
		Context:    ctx,
		Timeout:    copts.DialTimeout,
		MaxMsgSize: maxMsg,
		ConnClose:  copts.ConnClose,
		// a registered node says whether it speaks the native protocol; a given address
		// is asked
		HTTPOnly: !copts.isAddressCall() && node.Metadata[transport.WireMetadata] != transport.WireNative,
	})
	if err != nil {
		return c.transportError(ctx, err, node, req)
	}
	defer sock.Close()
	if fs, ok := sock.(fieldsSender); ok {
		// the native transport: the headers go as fields, without a map
		buf, scratch := fs.HeaderBuf()
		scratch = strconv.AppendUint(scratch, c.seq.Add(1), 10)
		fields, err := appendCallHeaders(buf, ctx, req, unsafeString(scratch), scratch[len(scratch):])
		if err != nil {
			return err
		}
		err = fs.SendFields(fields, body)
		if fs.Native() {
			// the native protocol is done with the body once SendFields returns; HTTP
			// may read it after the call, so its buffer is left to the garbage collector
			codecs.PutBuf(bodyBuf, body, owned)
		}
		if err != nil {
			return c.transportError(ctx, err, node, req)
		}
	} else {
		hdr, err := callHeaders(ctx, req, strconv.FormatUint(c.seq.Add(1), 10))
		if err != nil {
			return err
		}
		if err := sock.Send(&transport.Message{Header: hdr, Body: body}); err != nil {
			return c.transportError(ctx, err, node, req)
		}
	}
	var reply replyInfo
	if err := recvReply(sock, &reply); err != nil {
		if ctx.Err() != nil {
			return contextError(ctx.Err(), req)
		}
		if transport.IsNotSent(err) {
			// the server went away or refused the call before taking it
			return c.transportError(ctx, err, node, req)
		}
		return errors.Wrap(newLostError(err), clientID, 502, fmt.Sprintf("call %s at %s: reply lost: %v", req.Endpoint(), node.Address, err))
	}
	if e := replyErrorOf(reply.status, reply.errHdr, reply.body); e != nil {
		if reply.notStarted != "" {
			if me, ok := e.(*errors.Error); ok {
				return errors.Wrap(&notStartedError{me}, me.Id, me.Code, me.Detail)
			}
		}
		if errors.Code(e) == 408 {
			// The server gave up on the deadline this call sent it: when that deadline is
			// (all but) ours, report our own expiry, so the caller can match it.
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < deadlineSlack {
				t := time.NewTimer(time.Until(dl) + deadlineSlack)
				select {
				case <-ctx.Done():
					t.Stop()
					return contextError(ctx.Err(), req)
				case <-t.C:
				}
			}
		}
		return e
	}
	if len(reply.body) == 0 {
		return nil
	}
	rmedia := codecs.MediaType(reply.contentType)
	if rmedia != "" && rmedia != media {
		if m, ok = codecs.Lookup(rmedia, custom, DefaultCodecs); !ok {
			return errors.InternalServerError(clientID, "reply of %s has unsupported Content-Type %q", req.Endpoint(), rmedia)
		}
	}
	if err := m.Unmarshal(reply.body, rsp); err != nil {
		return errors.Wrap(err, clientID, 500, fmt.Sprintf("decode the %s reply of %s: %v", media, req.Endpoint(), err))
	}
	return nil
}

// replyInfo is what a call needs of its reply.
type replyInfo struct {
	status, errHdr, notStarted, contentType string
	body                                    []byte
}

// optionsDialer is implemented by transports that take dial options as a value (the
// HTTP transport), which spares each call the option funcs.
type optionsDialer interface {
	DialWith(addr string, o transport.DialOptions) (transport.Client, error)
}

// dial dials addr with o, through DialWith when the transport has it.
func dial(tr transport.Transport, addr string, o transport.DialOptions) (transport.Client, error) {
	if d, ok := tr.(optionsDialer); ok {
		return d.DialWith(addr, o)
	}
	opts := []transport.DialOption{
		transport.WithContext(o.Context),
		transport.WithTimeout(o.Timeout),
		transport.WithMaxMsgSize(o.MaxMsgSize),
	}
	if o.ConnClose {
		opts = append(opts, transport.WithConnClose())
	}
	return tr.Dial(addr, opts...)
}

// fieldsReceiver is implemented by the native protocol's sockets: the reply's headers
// as decoded, without a map.
type fieldsReceiver interface {
	RecvFields() (wire.Fields, []byte, bool, error)
}

// recvReply receives the reply of a unary call.
func recvReply(sock transport.Socket, r *replyInfo) error {
	if fr, ok := sock.(fieldsReceiver); ok {
		f, body, ok, err := fr.RecvFields()
		if ok {
			if err != nil {
				return err
			}
			for _, kv := range f {
				switch kv.Key {
				case headers.Status:
					r.status = kv.Value
				case headers.Error:
					r.errHdr = kv.Value
				case headers.NotStarted:
					r.notStarted = kv.Value
				case headers.ContentType:
					r.contentType = kv.Value
				}
			}
			r.body = body
			return nil
		}
	}
	var m transport.Message
	if err := sock.Recv(&m); err != nil {
		return err
	}
	r.status, r.errHdr, r.notStarted, r.contentType = m.Header[headers.Status], m.Header[headers.Error], m.Header[headers.NotStarted], m.Header[headers.ContentType]
	r.body = m.Body
	return nil
}

// callHeaders builds the headers of a call: the context's metadata (without reserved
// names), the routing headers and the remaining deadline.
func callHeaders(ctx context.Context, req Request, id string) (map[string]string, error) {
	fields, err := appendCallHeaders(make(wire.Fields, 0, 8), ctx, req, id, nil)
	if err != nil {
		return nil, err
	}
	hdr := make(map[string]string, len(fields)+1)
	for _, f := range fields {
		hdr[f.Key] = f.Value
	}
	hdr["Accept"] = req.ContentType() // for HTTP peers; the native protocol leaves it out
	return hdr, nil
}

// fieldsSender is implemented by the native protocol's sockets: a request whose header
// is a list of fields, built in the socket's own buffers.
type fieldsSender interface {
	HeaderBuf() (wire.Fields, []byte)
	SendFields(wire.Fields, []byte) error
	Native() bool
}

// appendCallHeaders appends the headers of a call to dst (callHeaders without Accept);
// scratch holds the digits of the deadline (the fields are encoded before the buffers
// are used again; nil: a buffer of their own).
func appendCallHeaders(dst wire.Fields, ctx context.Context, req Request, id string, scratch []byte) (wire.Fields, error) {
	var bad error
	metadata.Range(ctx, func(k, v string) bool {
		if isReserved(k) {
			return true
		}
		if !validHeader(k, v) {
			bad = errors.BadRequest(clientID, "metadata %q cannot be sent as a header: invalid name or value", k)
			return false
		}
		dst = append(dst, wire.Field{Key: k, Value: v})
		return true
	})
	if bad != nil {
		return nil, bad
	}
	ct := req.ContentType()
	dst = append(dst,
		wire.Field{Key: headers.Request, Value: req.Service()},
		wire.Field{Key: headers.Endpoint, Value: req.Endpoint()},
		wire.Field{Key: headers.Method, Value: req.Method()},
		wire.Field{Key: "Micro-Id", Value: id},
		wire.Field{Key: headers.ContentType, Value: ct},
	)
	if dl, ok := ctx.Deadline(); ok {
		remaining := time.Until(dl)
		if remaining <= 0 {
			return nil, contextError(context.DeadlineExceeded, req)
		}
		scratch = strconv.AppendInt(scratch, int64(remaining), 10)
		dst = append(dst, wire.Field{Key: headers.Timeout, Value: unsafeString(scratch)})
	}
	return dst, nil
}

// unsafeString views b as a string without copying: for values encoded before b changes.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// transportError classifies a Dial or Send failure.
func (c *rpcClient) transportError(ctx context.Context, err error, node *registry.Node, req Request) error {
	if ctx.Err() != nil {
		return contextError(ctx.Err(), req)
	}
	if transport.IsNotSent(err) {
		return errors.Wrap(err, clientID, 503, fmt.Sprintf("call %s at %s: %v", req.Endpoint(), node.Address, err))
	}
	return errors.Wrap(newLostError(err), clientID, 502, fmt.Sprintf("call %s at %s: %v", req.Endpoint(), node.Address, err))
}

// replyError returns the error a reply carries, if any.
func replyError(m *transport.Message) error {
	return replyErrorOf(m.Header[headers.Status], m.Header[headers.Error], m.Body)
}

// replyErrorOf returns the error of a reply with this :status, Micro-Error and body.
func replyErrorOf(statusHdr, errHdr string, body []byte) error {
	if (statusHdr == "" || statusHdr == "200") && errHdr == "" {
		return nil
	}
	status, _ := strconv.Atoi(statusHdr)
	if v := errHdr; v != "" {
		e := errors.Parse(v)
		if e.Code == 0 && status >= 400 {
			e.Code = int32(status)
			e.Status = errors.StatusText(e.Code)
		}
		if e.Code == 0 {
			e.Code = 500
			e.Status = errors.StatusText(500)
		}
		return e
	}
	if status != 0 && (status < 200 || status > 299) {
		detail := strings.TrimSpace(string(body))
		if len(detail) > 512 {
			detail = detail[:512]
		}
		return errors.New(clientID, detail, int32(status))
	}
	return nil
}

// Publish encodes the message by its Content-Type and publishes it to the broker.
func (c *rpcClient) Publish(ctx context.Context, msg Message, opts ...PublishOption) error {
	po := PublishOptions{Context: ctx}
	for _, o := range opts {
		o(&po)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c.mu.RLock()
	b, custom := c.opts.Broker, c.opts.Codecs
	c.mu.RUnlock()
	topic := msg.Topic()
	if po.Exchange != "" {
		topic = po.Exchange
	}
	if topic == "" {
		return errors.BadRequest(clientID, "publish: the message has no topic")
	}
	hdr := make(map[string]string, 4)
	metadata.Range(ctx, func(k, v string) bool {
		if !isReserved(k) {
			hdr[k] = v
		}
		return true
	})
	ct := msg.ContentType()
	hdr[headers.ContentType] = ct
	hdr[headers.Message] = topic
	hdr[headers.ID] = uuid.New().String()
	var body []byte
	if f, ok := msg.Payload().(*mbytes.Frame); ok {
		body = f.Data
	} else {
		m, ok := codecs.Lookup(codecs.MediaType(ct), custom, DefaultCodecs)
		if !ok {
			return errors.InternalServerError(clientID, "publish: unsupported Content-Type %q", ct)
		}
		var err error
		if body, err = m.Marshal(msg.Payload()); err != nil {
			return errors.Wrap(err, clientID, 500, fmt.Sprintf("publish: encode the %s message: %v", ct, err))
		}
	}
	if err := c.connectBroker(b); err != nil {
		return errors.Wrap(err, clientID, 503, fmt.Sprintf("publish: connect the broker: %v", err))
	}
	bm := &broker.Message{Header: hdr, Body: body}
	err := b.Publish(topic, bm, broker.PublishContext(po.Context))
	if stderrors.Is(err, broker.ErrNotConnected) {
		// Someone (a stopping server sharing the broker) disconnected it: connect again.
		c.connMu.Lock()
		c.connected = nil
		c.connMu.Unlock()
		if cerr := c.connectBroker(b); cerr == nil {
			err = b.Publish(topic, bm, broker.PublishContext(po.Context))
		}
	}
	if err != nil {
		// a subscriber's own error (say 400: it could not decode the message) sets the code
		code := int32(500)
		if e, ok := errors.As(err); ok && e.Code != 0 {
			code = e.Code
		}
		return errors.Wrap(err, clientID, code, fmt.Sprintf("publish to %s: %v", topic, err))
	}
	return nil
}

// connectBroker connects b once.
func (c *rpcClient) connectBroker(b broker.Broker) error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.connected == b {
		return nil
	}
	if err := b.Connect(); err != nil {
		return err
	}
	c.connected = b
	return nil
}
