package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/internal/callctx"
	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/transport/headers"
)

// errNotNative says that an address does not speak the native protocol.
var errNotNative = errors.New("transport: the server does not speak micro's native protocol")

// notNativeFor is how long an address that answered the native Magic with something
// else is spoken to over HTTP before it is asked again.
const notNativeFor = 30 * time.Second

// helloTimeout bounds the wait for a server's answer to the Magic.
const helloTimeout = time.Second

// nativeClientIdle is how long a client connection may carry no call before it is closed.
const nativeClientIdle = 90 * time.Second

// nativeEnvOff reports whether the process environment turns the native client off.
func nativeEnvOff() bool { return os.Getenv("MICRO_NATIVE") == "0" }

// nativePool holds a transport's native client connections, by address.
type nativePool struct {
	t     *HTTPTransport
	mu    sync.Mutex
	addrs map[string]*nativeAddr
}

type nativeAddr struct {
	conns     []*clientConn
	dialing   chan struct{} // closed when the dial in progress ends
	httpUntil time.Time     // the address answered as HTTP only: not asked again until then
}

// get returns a connection to addr with room for one more stream, reserving it; the
// caller releases the reservation by registering a stream or calling unreserve.
func (p *nativePool) get(ctx context.Context, addr string, timeout time.Duration) (*clientConn, error) {
	for {
		p.mu.Lock()
		a := p.addrs[addr]
		if a == nil {
			a = &nativeAddr{}
			p.addrs[addr] = a
		}
		if time.Now().Before(a.httpUntil) {
			p.mu.Unlock()
			return nil, errNotNative
		}
		var best *clientConn
		for _, cc := range a.conns {
			if cc.reserve() {
				best = cc
				break
			}
		}
		if best != nil {
			p.mu.Unlock()
			return best, nil
		}
		if a.dialing != nil {
			ch := a.dialing
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		a.dialing = ch
		p.mu.Unlock()
		cc, err := p.dial(ctx, addr, timeout)
		p.mu.Lock()
		a.dialing = nil
		close(ch)
		if errors.Is(err, errNotNative) {
			a.httpUntil = time.Now().Add(notNativeFor)
		}
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		a.conns = append(a.conns, cc)
		p.mu.Unlock()
		go cc.readLoop()
	}
}

// remove drops cc from the pool: it is dead or going away.
func (p *nativePool) remove(cc *clientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.addrs[cc.addr]
	if a == nil {
		return
	}
	for i, c := range a.conns {
		if c == cc {
			a.conns = append(a.conns[:i], a.conns[i+1:]...)
			break
		}
	}
	if len(a.conns) == 0 && a.dialing == nil && a.httpUntil.IsZero() {
		delete(p.addrs, cc.addr)
	}
}

// closeIdle closes the connections that carry no stream.
func (p *nativePool) closeIdle() {
	p.mu.Lock()
	var idle []*clientConn
	for _, a := range p.addrs {
		for _, cc := range a.conns {
			cc.mu.Lock()
			if len(cc.streams) == 0 && cc.reserved == 0 {
				idle = append(idle, cc)
			}
			cc.mu.Unlock()
		}
	}
	p.mu.Unlock()
	for _, cc := range idle {
		cc.fail(ErrClosed)
	}
}

// dial opens a native connection: Magic out, the server's hello back.
func (p *nativePool) dial(ctx context.Context, addr string, timeout time.Duration) (*clientConn, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// A server that does not answer the Magic at once is not a micro server: it is
	// spoken to over HTTP rather than waited for.
	deadline := time.Now().Add(min(timeout, helloTimeout))
	ctxFirst := false // the call's deadline comes before the hello's
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline, ctxFirst = dl, true
	}
	_ = c.SetDeadline(deadline)
	// The Magic goes out with a Ping: an HTTP server that speaks h2c reads 24 bytes (the
	// HTTP/2 preface) before it answers anything, so a lone Magic would wait there for
	// the timeout instead of getting its 400 at once. A native server answers the Ping
	// with a Pong, which the reader ignores.
	if _, err := c.Write(wire.AppendControl([]byte(wire.Magic), wire.TypePing, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)); err != nil {
		_ = c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 32<<10)
	hello := make([]byte, nativeHelloLen)
	if _, err := io.ReadFull(br, hello); err != nil || string(hello[:len(wire.Magic)]) != wire.Magic {
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ctxFirst && isTimeout(err) {
			// The call's deadline cut the hello off, and the context may not have
			// noticed yet: that says nothing of the server, which is asked again.
			return nil, context.DeadlineExceeded
		}
		return nil, errNotNative
	}
	_ = c.SetDeadline(time.Time{})
	p.t.mu.RLock()
	ping, pingTimeout := p.t.opts.KeepAliveTime, p.t.opts.KeepAliveTimeout
	p.t.mu.RUnlock()
	if ping <= 0 {
		ping = DefaultKeepAliveTime
	}
	if pingTimeout <= 0 {
		pingTimeout = DefaultKeepAliveTimeout
	}
	cc := &clientConn{
		pool: p, addr: addr, c: c, br: br,
		maxStreams:  int(binary.BigEndian.Uint32(hello[len(wire.Magic):])),
		streams:     make(map[uint32]*clientStream),
		nextID:      1,
		ping:        ping,
		pingTimeout: pingTimeout,
		lastRecv:    time.Now(),
		lastBusy:    time.Now(),
		rdWake:      make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
	if cc.maxStreams <= 0 {
		cc.maxStreams = 1
	}
	cc.w = wire.NewWriter(c, 0, func(err error) { _ = c.Close() })
	cc.w.Busy = func() bool { return cc.active.Load() > 1 }
	cc.rd.Lock() // the reader goroutine starts out reading
	return cc, nil
}

// clientConn is a client's native connection to one server.
type clientConn struct {
	pool        *nativePool
	addr        string
	c           net.Conn
	br          *bufio.Reader
	w           *wire.Writer
	dec         wire.Decoder
	slab        bodySlab // used by the holder of rd
	maxStreams  int
	ping        time.Duration
	pingTimeout time.Duration
	lastBusy    time.Time // when a stream last ended or began

	// One goroutine at a time reads the connection, the one holding rd: a unary caller
	// waiting for its own reply (it leads: the reply needs no hand-off to reach it), or
	// the connection's reader goroutine, which reads while calls wait and no caller
	// leads, and between calls keeps the keepalive and learns of a server gone.
	rd     sync.Mutex
	rdWake chan struct{} // cap 1: rd is handed to the reader goroutine
	closed chan struct{} // closed by fail
	leads  atomic.Uint32 // readings led by callers, so far
	// A caller whose context can be cancelled leads too: the context's end interrupts
	// its read with a past deadline, but only while it waits between frames (waiting),
	// never in the middle of one, which would cut the connection's byte stream.
	leadMu        sync.Mutex
	leadGen       uint64 // the reading led now or last, under leadMu
	leadCancelled bool   // its caller's context ended, under leadMu
	waiting       bool   // the leader waits for a frame header, under leadMu
	// held with rd
	watched  bool        // leading for a caller whose context can end (the protocol above)
	unwatch  func() bool // stops the watch of that context
	payload  []byte
	rdl      time.Time // the read deadline set on c
	lastRecv time.Time
	got      bool // frames arrived since lastRecv was set
	pinged   bool

	mu       sync.Mutex
	streams  map[uint32]*clientStream
	active   atomic.Int32 // len(streams), read without mu
	reserved int
	nextID   uint32
	err      error // why the connection is dead
	goaway   bool
	lastID   uint32 // from GOAWAY: the last stream the server took
}

// reserve claims room for one stream; false when the connection is full or unusable.
func (cc *clientConn) reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil || cc.goaway || len(cc.streams)+cc.reserved >= cc.maxStreams || cc.nextID >= 1<<31-1 {
		return false
	}
	cc.reserved++
	return true
}

func (cc *clientConn) unreserve() {
	cc.mu.Lock()
	cc.reserved--
	cc.mu.Unlock()
}

// open registers cs and sends its Request frame. Its error is a *NotSentError when
// nothing was written.
func (cc *clientConn) open(cs *clientStream, flags byte, hdr map[string]string, fields wire.Fields, body []byte) error {
	buf, err := cc.w.Begin()
	if err != nil {
		cc.unreserve()
		return &NotSentError{Err: fmt.Errorf("connection to %s: %w", cc.addr, err)}
	}
	cc.mu.Lock()
	cc.reserved--
	if cc.err != nil || cc.goaway {
		err := cc.err
		if err == nil {
			err = errors.New("server going away")
		}
		cc.mu.Unlock()
		cc.w.Abort()
		return &NotSentError{Err: fmt.Errorf("connection to %s: %w", cc.addr, err)}
	}
	cs.id = cc.nextID
	cc.nextID += 2
	cc.streams[cs.id] = cs
	cc.active.Store(int32(len(cc.streams)))
	cc.lastBusy = time.Now()
	cc.mu.Unlock()
	if fields != nil {
		buf = cc.w.AppendFields(buf, wire.TypeRequest, flags, cs.id, fields, body)
	} else {
		buf = cc.w.AppendMessage(buf, wire.TypeRequest, flags, cs.id, hdr, body)
	}
	if err := cc.w.Commit(buf); err != nil {
		if !cc.forget(cs) && !cs.stream {
			<-cs.done // the reader failed the stream first: take its word back
		}
		cc.fail(err)
		var nw *wire.NotWrittenError
		if errors.As(err, &nw) {
			return &NotSentError{Err: fmt.Errorf("connection to %s: %w", cc.addr, err)}
		}
		return &ConnLostError{Err: fmt.Errorf("connection to %s: %w", cc.addr, err)}
	}
	return nil
}

// forget removes cs from the connection; false when the reader already took it (its
// reply is being delivered).
func (cc *clientConn) forget(cs *clientStream) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.streams[cs.id] != cs {
		return false
	}
	cc.removeLocked(cs.id)
	return true
}

// take removes and returns stream id, for a frame that ends it.
func (cc *clientConn) take(id uint32) *clientStream {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cs := cc.streams[id]
	if cs != nil {
		cc.removeLocked(id)
	}
	return cs
}

// pick returns stream id for a Message frame; taken reports that it was removed, as it
// is when the frame ends it or when it is a unary call's (whose one reply frame must be
// its last: a call sent another fails).
func (cc *clientConn) pick(id uint32, end bool) (cs *clientStream, taken bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cs = cc.streams[id]
	if cs != nil && (end || !cs.stream) {
		cc.removeLocked(id)
		taken = true
	}
	return cs, taken
}

// removeLocked removes stream id, which is there (mu held).
func (cc *clientConn) removeLocked(id uint32) {
	delete(cc.streams, id)
	cc.active.Store(int32(len(cc.streams)))
	cc.lastBusy = time.Now()
	cc.maybeClose()
}

func (cc *clientConn) lookup(id uint32) *clientStream {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.streams[id]
}

// maybeClose closes a connection the server is going away from once its last stream
// ended. Called with mu held.
func (cc *clientConn) maybeClose() {
	if cc.goaway && len(cc.streams) == 0 && cc.reserved == 0 {
		_ = cc.c.Close()
	}
}

// control writes a control frame.
func (cc *clientConn) control(typ byte, stream uint32, payload ...byte) {
	buf, err := cc.w.Begin()
	if err != nil {
		return
	}
	_ = cc.w.Commit(wire.AppendControl(buf, typ, 0, stream, payload...))
}

// fail kills the connection: every stream on it fails with err (a *NotSentError for
// those the server said it never took).
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	close(cc.closed)
	streams := cc.streams
	cc.streams = make(map[uint32]*clientStream)
	goaway, last := cc.goaway, cc.lastID
	cc.mu.Unlock()
	cc.pool.remove(cc)
	_ = cc.c.Close()
	cc.w.Fail(err)
	for id, cs := range streams {
		var e error = &ConnLostError{Err: fmt.Errorf("connection to %s lost: %w", cc.addr, err)}
		if goaway && id > last {
			e = &NotSentError{Err: fmt.Errorf("server at %s went away before it took the call", cc.addr)}
		}
		cs.broken(e)
	}
}

// readerRest is how long the reader goroutine leaves a connection with no call waiting
// unread once callers read it themselves: one caller making call after call keeps
// reading its own replies, and a connection no one calls on is still read soon, for
// its keepalive and to learn that the server closed it.
const readerRest = 5 * time.Millisecond

// readLoop is the connection's reader goroutine. It reads while calls wait and no
// caller leads, then rests, until the connection dies.
func (cc *clientConn) readLoop() {
	var rest *time.Timer
	for {
		if !cc.readWhileWaited() {
			if rest != nil {
				rest.Stop()
			}
			return
		}
		cc.rd.Unlock()
		if cc.active.Load() > 0 && cc.rd.TryLock() {
			continue // a call began as the reading stopped
		}
		leads := cc.leads.Load()
		if rest == nil {
			rest = time.NewTimer(readerRest)
		} else {
			rest.Reset(readerRest)
		}
	wait:
		select {
		case <-cc.rdWake:
		case <-rest.C:
			// callers read the connection meanwhile, or one reads it now
			if n := cc.leads.Load(); n != leads || !cc.rd.TryLock() {
				leads = n
				rest.Reset(readerRest)
				goto wait
			}
		case <-cc.closed:
			rest.Stop()
			return
		}
	}
}

// readWhileWaited reads the server's frames, pinging it when quiet, until no call waits
// and no whole frame is buffered (true), or the connection dies (false). Holder of rd.
func (cc *clientConn) readWhileWaited() bool {
	// The keepalive deadline is pushed back only when a read may wait (nothing whole is
	// buffered), and only when it is more than slack early: a busy connection does not
	// read the clock and reset a timer per frame.
	slack := min(time.Second, cc.ping/4)
	if cc.got {
		cc.lastRecv, cc.got = time.Now(), false // callers led the reading
	}
	for {
		if cc.br.Buffered() < wire.HeaderLen {
			if cc.got {
				cc.lastRecv, cc.got = time.Now(), false
			}
			if want := cc.lastRecv.Add(cc.ping); !cc.pinged && (cc.rdl.IsZero() || want.Sub(cc.rdl) > slack || want.Before(cc.rdl)) {
				cc.setReadDeadline(want)
			}
		}
		ok, timeout := cc.readFrame()
		if timeout {
			if cc.pinged {
				cc.fail(fmt.Errorf("no answer to a ping within %s", cc.pingTimeout))
				return false
			}
			if cc.got {
				cc.lastRecv, cc.got = time.Now(), false
			}
			if time.Since(cc.lastRecv) < cc.ping {
				cc.rdl = time.Time{} // set for a caller's deadline, or pushed back since
				continue
			}
			if cc.idleTooLong() {
				cc.fail(ErrClosed)
				return false
			}
			cc.pinged = true
			cc.setReadDeadline(time.Now().Add(cc.pingTimeout))
			cc.control(wire.TypePing, 0, 0, 0, 0, 0, 0, 0, 0, 0)
			continue
		}
		if !ok {
			return false
		}
		if cc.active.Load() == 0 && !wire.Buffered(cc.br) {
			return true
		}
	}
}

func (cc *clientConn) setReadDeadline(t time.Time) {
	cc.rdl = t
	_ = cc.c.SetReadDeadline(t)
}

// readFrame reads one frame and handles it. Holder of rd. timeout: the read deadline
// passed before a frame began (the reading can go on); !ok otherwise: the connection
// failed.
func (cc *clientConn) readFrame() (ok, timeout bool) {
	if cc.watched && !cc.beginWait() {
		return false, true // the leader's context ended: it stops reading
	}
	h, err := wire.ReadFrameHeader(cc.br)
	if cc.watched {
		cc.endWait()
	}
	if err != nil {
		if isTimeout(err) {
			return false, true
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		cc.fail(err)
		return false, false
	}
	if h.Length > 1<<31 {
		cc.fail(fmt.Errorf("frame of %d bytes", h.Length))
		return false, false
	}
	if uint32(cc.br.Buffered()) < h.Length && !cc.rdl.IsZero() && time.Until(cc.rdl) < cc.ping {
		// a deadline for the gaps between frames must not cut a frame off midway
		cc.setReadDeadline(time.Now().Add(cc.ping + cc.pingTimeout))
	}
	if h.Type == wire.TypeMessage && h.Length > skipMin {
		if skipped, ok := cc.skipOversized(h); skipped {
			return ok, false
		}
	}
	payload, err := wire.ReadPayload(cc.br, h.Length, cc.payload[:0])
	if err != nil {
		cc.fail(err)
		return false, false
	}
	cc.heard()
	if err := cc.frame(h, payload); err != nil {
		cc.fail(err)
		return false, false
	}
	if cap(payload) > 64<<10 {
		payload = nil
	}
	cc.payload = payload
	return true, false
}

// Reply frames up to skipMin bytes are read whole, their bodies checked against the
// call's limit once decoded; a larger one is weighed first (skipOversized). The header
// block of a frame read past is bounded by replyHeaderMax.
const (
	skipMin        = 64 << 10
	replyHeaderMax = 1 << 20
)

// skipOversized reads past a reply frame too large for its call without holding it in
// memory: one longer than the call's MaxMsgSize and a header block allow, or a large one
// for a call that is gone. The call fails as soon as the frame's header block is read,
// not after the rest. skipped reports that the frame was read past; ok is false when
// the connection failed.
func (cc *clientConn) skipOversized(h wire.FrameHeader) (skipped, ok bool) {
	cs := cc.lookup(h.Stream)
	if cs != nil && (cs.max <= 0 || int64(h.Length) <= cs.max+replyHeaderMax) {
		return false, true
	}
	payload, err := skipPayload(cc.br, &cc.dec, h.Length, replyHeaderMax, cc.payload[:0], func(body uint32) {
		if cs != nil {
			cc.refuseReply(cs, h.Flags&wire.FlagEnd != 0, int64(body))
		}
	})
	cc.payload = payload
	if err != nil {
		cc.fail(fmt.Errorf("transport: a reply frame of %d bytes: %w", h.Length, err))
		return true, false
	}
	cc.heard()
	return true, true
}

// heard notes that a whole frame came from the server: the connection is alive, and a
// ping waiting for its answer is answered. Holder of rd.
func (cc *clientConn) heard() {
	cc.got = true
	if cc.pinged {
		cc.pinged, cc.rdl = false, time.Time{}
	}
}

// refuseReply fails a call whose reply carries a body of size bytes, more than its
// limit, and cancels it at the server unless end (the server already sent its last
// frame).
func (cc *clientConn) refuseReply(cs *clientStream, end bool, size int64) {
	cc.forget(cs)
	if !end {
		cc.control(wire.TypeCancel, cs.id, wire.CodeCancel)
	}
	cs.broken(fmt.Errorf("transport: reply of %d bytes exceeds the limit of %d", size, cs.max))
}

// beginWait marks the leader as waiting for a frame header, which its context's end may
// interrupt; false when it ended already. Holder of rd, watched.
func (cc *clientConn) beginWait() bool {
	cc.leadMu.Lock()
	defer cc.leadMu.Unlock()
	if cc.leadCancelled {
		return false
	}
	cc.waiting = true
	return true
}

// endWait ends the wait of beginWait. If the context ended meanwhile, the connection's
// deadline may be in the past: it is put back before the rest of the frame is read.
func (cc *clientConn) endWait() {
	cc.leadMu.Lock()
	cc.waiting = false
	if cc.leadCancelled {
		cc.restoreDeadline()
	}
	cc.leadMu.Unlock()
}

// restoreDeadline replaces a past read deadline that an interrupt set by one the
// keepalive can work from (leadMu and rd held).
func (cc *clientConn) restoreDeadline() {
	cc.pinged = false
	cc.setReadDeadline(time.Now().Add(cc.ping))
}

// interruptLead stops the reading led as gen: at once if the leader waits between
// frames, else when its frame is read. A later reading is left alone.
func (cc *clientConn) interruptLead(gen uint64) {
	cc.leadMu.Lock()
	defer cc.leadMu.Unlock()
	if cc.leadGen != gen {
		return
	}
	cc.leadCancelled = true
	if cc.waiting {
		_ = cc.c.SetReadDeadline(time.Unix(1, 0))
	}
}

// watch makes the reading about to be led stop when ctx ends. Holder of rd.
func (cc *clientConn) watch(ctx context.Context) {
	cc.leadMu.Lock()
	cc.leadGen++
	gen := cc.leadGen
	cc.leadCancelled = false
	cc.leadMu.Unlock()
	cc.watched = true
	cc.unwatch = context.AfterFunc(ctx, func() { cc.interruptLead(gen) })
}

// endWatch ends the watch of watch, and puts back a deadline an interrupt set. Holder
// of rd.
func (cc *clientConn) endWatch() {
	cc.unwatch()
	cc.unwatch, cc.watched = nil, false
	cc.leadMu.Lock()
	cc.leadGen++ // an interrupt still on its way finds another generation
	if cc.leadCancelled {
		cc.leadCancelled = false
		cc.restoreDeadline()
	}
	cc.leadMu.Unlock()
}

// cancelled reports whether the reading led now was interrupted. Holder of rd.
func (cc *clientConn) cancelled() bool {
	if !cc.watched {
		return false
	}
	cc.leadMu.Lock()
	defer cc.leadMu.Unlock()
	return cc.leadCancelled
}

// lead reads the connection for a unary call until its reply is in; its caller holds
// rd. expired reports that the call's deadline dl passed first, cancelled that ctx ended
// first (nil: a context that cannot end). Others' replies read meanwhile are delivered to
// them, and the reading passes to the reader goroutine if calls still wait.
func (cc *clientConn) lead(cs *clientStream, dl time.Time, ctx context.Context) (expired, cancelled bool) {
	cc.leads.Add(1)
	if ctx != nil {
		cc.watch(ctx)
	}
	for len(cs.done) == 0 {
		if cancelled = cc.cancelled(); cancelled {
			break
		}
		// The deadline is set again only when the one set would come after dl: one
		// set for an earlier call, sooner, only wakes the reading early.
		if cc.rdl.IsZero() || cc.rdl.After(dl) {
			cc.setReadDeadline(dl)
		}
		ok, timeout := cc.readFrame()
		if timeout {
			if cancelled = cc.cancelled(); cancelled {
				break
			}
			if time.Now().Before(dl) {
				cc.rdl = time.Time{}
				continue
			}
			expired = true
			break
		}
		if !ok {
			break // the connection failed, and cs with it
		}
	}
	if cc.watched {
		cc.endWatch()
	}
	if len(cs.done) > 0 {
		expired, cancelled = false, false // the reply came first
	}
	if expired || cancelled {
		// The server may be gone without a word: the reader goroutine takes the
		// reading on, and pings it if it stays quiet.
		cc.rdWake <- struct{}{}
		return expired, cancelled
	}
	// replies to other calls that are here already are delivered before the reading
	// passes on
	for wire.Buffered(cc.br) {
		if ok, _ := cc.readFrame(); !ok {
			break
		}
	}
	cc.rd.Unlock()
	cc.ensureReader()
	return false, false
}

// ensureReader has the reader goroutine read the connection if calls wait and no one
// reads it.
func (cc *clientConn) ensureReader() {
	if cc.active.Load() > 0 && cc.rd.TryLock() {
		cc.rdWake <- struct{}{}
	}
}

func (cc *clientConn) idleTooLong() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.streams) == 0 && cc.reserved == 0 && time.Since(cc.lastBusy) > nativeClientIdle
}

// frame handles one frame from the server.
func (cc *clientConn) frame(h wire.FrameHeader, payload []byte) error {
	switch h.Type {
	case wire.TypeMessage:
		end := h.Flags&wire.FlagEnd != 0
		cs, taken := cc.pick(h.Stream, end) // a stream taken, fail will not break
		var dst wire.Fields
		if cs != nil && !cs.stream {
			dst = cs.fieldsBuf[:0] // the stream is ours until delivered
		}
		// decoded even for a stream that is gone: the header table must follow
		fields, body, err := cc.dec.Decode(payload, dst)
		if err != nil {
			if taken {
				// its reply is lost with the connection
				cs.broken(&ConnLostError{Err: fmt.Errorf("connection to %s lost: %w", cc.addr, err)})
			}
			return err
		}
		if cs != nil && !cs.stream && !end {
			// a unary call has one reply frame: this one is not the last
			cc.control(wire.TypeCancel, cs.id, wire.CodeProtocol)
			cs.broken(fmt.Errorf("transport: the server at %s sent a unary reply in more than one frame", cc.addr))
			return nil
		}
		if cs != nil && cs.stream && cs.max > 0 && int64(len(body)) > cs.max {
			cc.refuseReply(cs, end, int64(len(body)))
			return nil
		}
		if len(body) > 0 {
			body = cc.slab.copy(body)
		}
		if cs != nil {
			cs.deliver(fields, body, end)
		}
	case wire.TypeCancel:
		if cs := cc.take(h.Stream); cs != nil {
			if len(payload) > 0 && payload[0] == wire.CodeRefused {
				cs.broken(&NotSentError{Err: fmt.Errorf("server at %s refused the call before starting it", cc.addr)})
			} else {
				cs.broken(fmt.Errorf("transport: the server at %s cancelled the stream", cc.addr))
			}
		}
	case wire.TypeWindow:
		if len(payload) != 4 {
			return errors.New("transport: window frame of wrong size")
		}
		if cs := cc.lookup(h.Stream); cs != nil && cs.stream {
			cs.out.add(int(binary.BigEndian.Uint32(payload)))
		}
	case wire.TypePing:
		cc.control(wire.TypePong, 0, payload...)
	case wire.TypeGoAway:
		if len(payload) < 4 {
			return errors.New("transport: goaway frame of wrong size")
		}
		last := binary.BigEndian.Uint32(payload)
		cc.mu.Lock()
		cc.goaway, cc.lastID = true, last
		var refused []*clientStream
		for id, cs := range cc.streams {
			if id > last {
				refused = append(refused, cs)
				delete(cc.streams, id)
			}
		}
		cc.maybeClose()
		cc.mu.Unlock()
		cc.pool.remove(cc)
		for _, cs := range refused {
			cs.broken(&NotSentError{Err: fmt.Errorf("server at %s went away before it took the call", cc.addr)})
		}
	case wire.TypePong:
	case wire.TypeRequest:
		return errors.New("transport: the server sent a request frame")
	}
	return nil
}

// clientStream is one call on a client connection.
type clientStream struct {
	cc     *clientConn
	id     uint32
	stream bool

	// unary: the reply, or the error that lost it, then a token on done
	done      chan struct{}
	fields    wire.Fields
	fieldsBuf [8]wire.Field
	body      []byte
	err       error

	max int64 // the largest reply body taken (DialOptions.MaxMsgSize; 0: any)

	// streams
	in     inbox
	out    credit
	hooked bool // the stream's context aborts in when it ends: pop needs no ctx
}

// popCtx is the context a Recv of the stream waits with: none when the context's end
// aborts the inbox itself.
func (cs *clientStream) popCtx(ctx context.Context) context.Context {
	if cs.hooked {
		return nil
	}
	return ctx
}

// deliver hands the stream a message from the server (reader goroutine).
func (cs *clientStream) deliver(fields wire.Fields, body []byte, end bool) {
	if !cs.stream {
		cs.fields, cs.body = fields, body
		cs.done <- struct{}{}
		return
	}
	if !cs.in.push(inMsg{hdr: fields, body: body, end: end}, 1<<31) {
		return
	}
	if end {
		cs.in.fail(io.EOF)
		cs.out.close()
	}
}

// broken ends the stream with err.
func (cs *clientStream) broken(err error) {
	if !cs.stream {
		cs.err = err
		cs.done <- struct{}{}
		return
	}
	cs.in.fail(err)
	cs.out.close()
}

// nativeSocket is a client Socket over the native protocol. Until its first Send it
// does not know whether the server speaks it; if not, it becomes an HTTP socket.
type nativeSocket struct {
	t      *HTTPTransport
	pool   *nativePool
	addr   string
	opts   DialOptions
	stream bool

	fallback Client // the HTTP socket, when the server is HTTP only
	reuse    bool   // from DialWith: back to socketPool after Close
	timer    *time.Timer
	timerAt  time.Time // when timer fires; zero when it is not armed
	hdrBuf   [12]wire.Field
	scratch  [48]byte
	unary    clientStream

	mu      sync.Mutex // Send side
	cs      *clientStream
	sentEnd bool
	closed  bool

	stopCtx func() bool // ends the watch on the stream's context

	rmu     sync.Mutex // Recv side
	first   *inMsg     // the opening answer of a stream, read by Response
	status  int
	opened  bool
	granted int
	ended   bool
}

func (s *nativeSocket) Local() string  { return "" }
func (s *nativeSocket) Remote() string { return s.addr }

// Send sends a call's request (unary: each Send opens a new call, whose reply the next
// Recv returns) or, on a stream, the opening and then each message; a message marked EOS
// half-closes the stream.
func (s *nativeSocket) Send(m *Message) error {
	if s.fallback != nil {
		return s.fallback.Send(m)
	}
	return s.send(m, nil, nil)
}

// HeaderBuf returns room for the header fields of the next SendFields.
func (s *nativeSocket) HeaderBuf() (wire.Fields, []byte) { return s.hdrBuf[:0], s.scratch[:0] }

// Native reports whether the socket speaks the native protocol, that is it has not
// fallen back to HTTP. A body the native protocol sends is copied before SendFields
// returns; HTTP may read it later.
func (s *nativeSocket) Native() bool { return s.fallback == nil }

// SendFields is Send with the header as fields (HeaderBuf's, say), so that a caller
// making many calls builds no map. The fields are encoded before it returns.
func (s *nativeSocket) SendFields(fields wire.Fields, body []byte) error {
	if s.fallback != nil {
		return s.fallback.Send(&Message{Header: fieldsMap(fields, 0), Body: body})
	}
	if fields == nil {
		fields = wire.Fields{}
	}
	return s.send(nil, fields, body)
}

func (s *nativeSocket) send(m *Message, fields wire.Fields, body []byte) error {
	if m != nil {
		body = m.Body
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.stream && s.cs != nil {
		if m == nil {
			m = &Message{Body: body}
		}
		return s.sendMessage(m)
	}
	ctx := s.opts.Context
	var cc *clientConn
	var err error
	for try := 0; ; try++ {
		cc, err = s.pool.get(ctx, s.addr, s.opts.Timeout)
		if errors.Is(err, errNotNative) {
			s.fallback = s.t.dialHTTP(s.addr, s.opts)
			if fields != nil {
				m = &Message{Header: fieldsMap(fields, 0), Body: body}
			}
			return s.fallback.Send(m)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &NotSentError{Err: fmt.Errorf("connect to %s: %w", s.addr, err)}
		}
		var cs *clientStream
		if s.stream {
			cs = &clientStream{cc: cc, stream: true, max: s.opts.MaxMsgSize}
		} else {
			cs = &s.unary
			if cs.done == nil {
				cs.done = make(chan struct{}, 1)
			}
			cs.cc, cs.fields, cs.body, cs.err, cs.max = cc, nil, nil, nil, s.opts.MaxMsgSize
		}
		var flags byte
		if s.stream {
			cs.in.init()
			cs.out.init()
			flags = wire.FlagStream
			if body != nil {
				flags |= wire.FlagBody
			}
		} else {
			flags = wire.FlagEnd
		}
		var hdr map[string]string
		if m != nil {
			hdr = m.Header
		}
		err = cc.open(cs, flags, hdr, fields, body)
		if err != nil && IsNotSent(err) && try < 2 {
			continue // the connection died just now: another one
		}
		if err != nil {
			return err
		}
		s.cs = cs
		if s.stream {
			cc.ensureReader()
		}
		if s.stream && ctx.Done() != nil {
			// a cancelled stream is cancelled at the server too, blocked or not, and a
			// Recv waiting returns at once
			s.stopCtx = context.AfterFunc(ctx, func() {
				cs.in.abort(ctx.Err())
				s.cancel()
			})
			cs.hooked = true
		}
		return nil
	}
}

// sendMessage sends a stream message (mu held).
func (s *nativeSocket) sendMessage(m *Message) error {
	if s.sentEnd {
		return io.ErrClosedPipe
	}
	cs := s.cs
	cc := cs.cc
	_, eos := m.Header[EOS]
	if !eos && len(m.Body) > 0 {
		ok, err := cs.out.take(s.opts.Context, len(m.Body))
		if err != nil {
			return err
		}
		if !ok {
			return io.ErrClosedPipe
		}
	}
	var flags byte
	if eos {
		flags = wire.FlagEnd
		s.sentEnd = true
	}
	buf, err := cc.w.Begin()
	if err != nil {
		return err
	}
	return cc.w.Commit(cc.w.AppendMessage(buf, wire.TypeMessage, flags, cs.id, nil, m.Body))
}

// Response waits for the server's answer to the opening of a stream and returns its
// status (200 when the handler started), or the error of a stream that could not be
// opened.
func (s *nativeSocket) Response() (int, error) {
	if s.fallback != nil {
		if r, ok := s.fallback.(interface{ Response() (int, error) }); ok {
			return r.Response()
		}
		return 200, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.response()
}

func (s *nativeSocket) response() (int, error) {
	if s.opened {
		return s.status, nil
	}
	s.mu.Lock()
	cs := s.cs
	s.mu.Unlock()
	if cs == nil {
		return 0, errors.New("transport: Response before Send")
	}
	msg, err, ok := cs.in.pop(cs.popCtx(s.opts.Context), nil)
	if !ok {
		if s.opts.Context.Err() != nil {
			s.cancel()
			return 0, s.opts.Context.Err()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	s.opened = true
	s.status = http200
	if v := msg.hdr.Get(headers.Status); v != "" {
		if c, err := strconv.Atoi(v); err == nil {
			s.status = c
		}
	}
	if s.status != http200 || msg.end || len(msg.body) > 0 {
		s.first = &msg // a refusal, or the opening answer carried a message too
	}
	return s.status, nil
}

const http200 = 200

// Recv returns the reply of the last Send (unary) or the next stream message; the last
// message of a stream is marked EOS, with the error, if any, in Micro-Error.
func (s *nativeSocket) Recv(m *Message) error {
	if s.fallback != nil {
		return s.fallback.Recv(m)
	}
	if !s.stream {
		return s.recvUnary(m)
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.ended {
		return io.EOF
	}
	if _, err := s.response(); err != nil {
		return err
	}
	var msg inMsg
	var err error
	ok := true
	if s.first != nil {
		msg, s.first = *s.first, nil
		if s.status != http200 {
			s.ended = true
			m.Header = fieldsMap(msg.hdr, 1)
			m.Header[EOS] = "1"
			m.Body = msg.body
			return nil
		}
		if len(msg.body) > 0 {
			msg.hdr = nil
			if msg.end {
				// a message and the end in one frame: the end comes next
				s.first = &inMsg{end: true}
				msg.end = false
			}
		}
	} else {
		msg, err, ok = s.cs.in.pop(s.cs.popCtx(s.opts.Context), nil)
	}
	if !ok {
		if s.opts.Context.Err() != nil {
			s.cancel()
			return s.opts.Context.Err()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the stream ended without its end frame
		}
		return err
	}
	if msg.end {
		s.ended = true
		m.Header = fieldsMap(msg.hdr, 1)
		m.Header[EOS] = "1"
		m.Body = nil
		return nil
	}
	s.grant(len(msg.body))
	m.Header, m.Body = nil, msg.body
	return nil
}

// grant returns credit to the server once a quarter of the window was read.
func (s *nativeSocket) grant(n int) {
	s.granted += n
	if s.granted >= streamWindow/4 {
		g := s.granted
		s.granted = 0
		s.cs.cc.control(wire.TypeWindow, s.cs.id, binary.BigEndian.AppendUint32(nil, uint32(g))...)
	}
}

func (s *nativeSocket) recvUnary(m *Message) error {
	s.mu.Lock()
	cs := s.cs
	s.cs = nil
	s.mu.Unlock()
	if cs == nil {
		return errors.New("transport: Recv without a Send")
	}
	if err := s.waitUnary(cs); err != nil {
		return err
	}
	if cs.err != nil {
		return cs.err
	}
	if int64(len(cs.body)) > s.opts.MaxMsgSize {
		return fmt.Errorf("transport: reply of %d bytes exceeds the limit of %d", len(cs.body), s.opts.MaxMsgSize)
	}
	m.Header = fieldsMap(cs.fields, 1)
	cs.fields = nil
	if _, ok := m.Header[headers.Status]; !ok {
		m.Header[headers.Status] = "200"
	}
	m.Body = cs.body
	return nil
}

// waitUnary waits for the reply of a unary call, or cancels it with the call's context.
func (s *nativeSocket) waitUnary(cs *clientStream) error {
	ctx := s.opts.Context
	cc := cs.cc
	if lc, ok := ctx.(*callctx.Ctx); ok && !lc.Armed() {
		// wait with the socket's own timer: the context's would be made for this wait
		if dl, ok := lc.Deadline(); ok {
			if parent := lc.Parent(); parent.Err() == nil && cc.rd.TryLock() {
				// No one reads the connection: the caller reads its reply itself, until
				// its deadline or the end of its context, if that can end (see watch).
				var end context.Context
				if parent.Done() != nil {
					end = parent
				}
				expired, cancelled := cc.lead(cs, dl, end)
				if (expired || cancelled) && cc.forget(cs) {
					cc.control(wire.TypeCancel, cs.id, wire.CodeCancel)
					return lc.Err()
				}
				<-cs.done
				return nil
			}
			cc.ensureReader()
			select {
			case <-cs.done:
				return nil
			default:
			}
			// The timer stays armed from call to call: it is set again only when it
			// would fire after this call's deadline, or did fire. Resetting it per call
			// would make it the runtime's earliest timer each time, which wakes the
			// thread sleeping in the network poller.
			if s.timer == nil {
				s.timer, s.timerAt = time.NewTimer(time.Until(dl)), dl
			} else if s.timerAt.IsZero() || s.timerAt.After(dl) {
				s.timer.Reset(time.Until(dl))
				s.timerAt = dl
			}
		wait:
			select {
			case <-cs.done:
				return nil
			case <-lc.Parent().Done():
			case <-s.timer.C:
				s.timerAt = time.Time{}
				if now := time.Now(); now.Before(dl) {
					// set for an earlier call's deadline
					s.timer.Reset(dl.Sub(now))
					s.timerAt = dl
					goto wait
				}
			}
			if cc.forget(cs) {
				cc.control(wire.TypeCancel, cs.id, wire.CodeCancel)
				return lc.Err()
			}
			<-cs.done
			return nil
		}
	}
	cc.ensureReader()
	select {
	case <-cs.done:
	case <-ctx.Done():
		if cs.cc.forget(cs) {
			cs.cc.control(wire.TypeCancel, cs.id, wire.CodeCancel)
			return s.opts.Context.Err()
		}
		<-cs.done // the reply is being delivered
	}
	return nil
}

// RecvFields is Recv for a unary call without building a header map: the fields are
// valid until the next Send or Close. ok is false when the socket fell back to HTTP
// (call Recv instead).
func (s *nativeSocket) RecvFields() (fields wire.Fields, body []byte, ok bool, err error) {
	if s.fallback != nil || s.stream {
		return nil, nil, false, nil
	}
	s.mu.Lock()
	cs := s.cs
	s.cs = nil
	s.mu.Unlock()
	if cs == nil {
		return nil, nil, true, errors.New("transport: Recv without a Send")
	}
	if err := s.waitUnary(cs); err != nil {
		return nil, nil, true, err
	}
	if cs.err != nil {
		return nil, nil, true, cs.err
	}
	if int64(len(cs.body)) > s.opts.MaxMsgSize {
		return nil, nil, true, fmt.Errorf("transport: reply of %d bytes exceeds the limit of %d", len(cs.body), s.opts.MaxMsgSize)
	}
	return cs.fields, cs.body, true, nil
}

// socketPool recycles the unary sockets of DialWith.
var socketPool = sync.Pool{New: func() any { return new(nativeSocket) }}

// cancel abandons a running stream: the server's handler sees its context end.
func (s *nativeSocket) cancel() {
	s.mu.Lock()
	cs := s.cs
	s.mu.Unlock()
	if cs == nil {
		return
	}
	if cs.cc.forget(cs) {
		cs.cc.control(wire.TypeCancel, cs.id, wire.CodeCancel)
	}
	cs.broken(ErrClosed)
}

// Close cancels a stream still running and releases the socket.
func (s *nativeSocket) Close() error {
	if s.fallback != nil {
		return s.fallback.Close()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop := s.stopCtx
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if s.stream {
		s.cancel()
		return nil
	}
	if s.reuse && s.fallback == nil && s.cs == nil {
		// no call in flight (Recv took its reply): the socket can serve another Dial
		done := s.unary.done
		if len(done) == 0 {
			timer, timerAt := s.timer, s.timerAt
			*s = nativeSocket{}
			s.unary.done, s.timer, s.timerAt = done, timer, timerAt
			socketPool.Put(s)
		}
	}
	return nil
}
