package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/transport/headers"
)

// nativeHello is what a server answers a client's Magic with: Magic, then its limits (4
// bytes each): most concurrent streams per connection and the largest message body.
func nativeHello(l *Limits) []byte {
	b := append([]byte(nil), wire.Magic...)
	b = binary.BigEndian.AppendUint32(b, l.MaxConcurrentStreams)
	return binary.BigEndian.AppendUint32(b, uint32(min(l.MaxMsgSize, 1<<31)))
}

const nativeHelloLen = len(wire.Magic) + 8

// nativeConn is the server side of one native connection.
type nativeConn struct {
	l        *httpListener
	c        net.Conn
	br       *bufio.Reader
	w        *wire.Writer
	dec      wire.Decoder
	slab     bodySlab // used by the reader, as dec is
	local    string
	remote   string
	ctx      context.Context // cancelled when the connection closes
	cancel   context.CancelFunc
	maxFrame uint32
	payload  []byte    // the reader's buffer
	deadline time.Time // the reader's read deadline
	idleSent bool      // the reader told the client the connection is idle
	holding  bool      // the reader holds the writer: whole frames are buffered

	// Serving calls on the reader (runReader): inline is the reader's state for the
	// watchdog; inlineSeq, seenHandoffs and skipInline are the reader's own; handoffs
	// counts the readings the watchdog handed on; watched is the watchdog's own (under
	// the listener's nativeMu): inline as it last saw it.
	inline       atomic.Uint64
	inlineSeq    uint64
	handoffs     atomic.Uint32
	seenHandoffs uint32
	skipInline   int
	watched      uint64

	mu      sync.Mutex
	streams map[uint32]*nativeServerStream
	active  atomic.Int32 // len(streams), read without mu
	lastID  uint32       // the highest stream id taken
	// replied counts the streams still in streams whose last frame was sent: their
	// slots are free (see release)
	replied int
	goaway  bool
	closed  bool
	idle    chan struct{} // closed and replaced when the last stream ends
}

// serveNative serves one connection that opened with the native Magic.
func (l *httpListener) serveNative(c net.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	nc := &nativeConn{
		l: l, c: c, ctx: ctx, cancel: cancel,
		br:      bufio.NewReaderSize(c, 32<<10),
		local:   c.LocalAddr().String(),
		remote:  c.RemoteAddr().String(),
		streams: make(map[uint32]*nativeServerStream),
		// a frame holds a header block and a body
		maxFrame: uint32(min(l.limits.MaxMsgSize+int64(l.limits.MaxHeaderBytes)+64, 1<<31)),
	}
	nc.dec.MaxBytes = l.limits.MaxHeaderBytes
	nc.dec.MaxFields = l.limits.MaxHeaderCount
	nc.w = wire.NewWriter(c, l.limits.WriteTimeout, func(error) { _ = c.Close() })
	nc.w.Busy = func() bool { return nc.active.Load() > 1 }
	if !l.addNative(nc) {
		_ = c.Close()
		cancel()
		return
	}
	magic := make([]byte, len(wire.Magic))
	_ = c.SetReadDeadline(time.Now().Add(l.limits.ReadHeaderTimeout))
	if _, err := io.ReadFull(nc.br, magic); err != nil || string(magic) != wire.Magic {
		nc.finish()
		return
	}
	buf, err := nc.w.Begin()
	if err != nil {
		nc.finish()
		return
	}
	if nc.w.Commit(append(buf, nativeHello(&l.limits)...)) != nil {
		nc.finish()
		return
	}
	nc.runReader()
}

// finish releases a connection whose reading ended.
func (nc *nativeConn) finish() {
	nc.shutdown()
	nc.l.removeNative(nc)
}

// runReader reads frames until a request opens a call, then serves the call itself:
// the call's reply does not wait for a goroutine to wake. When more frames are
// buffered, or the call is a stream, it first hands the reading on to another worker.
// A lone unary call is served before reading on, which spares waking a worker per
// call; should it run longer than a watchdog tick, the watchdog hands the reading on
// (see watchdog). It returns when the reading was handed on and its call is served,
// or the connection ended.
func (nc *nativeConn) runReader() {
	for {
		st := nc.readLoop()
		if st == nil {
			nc.finish()
			return
		}
		if !nc.mayInline(st) {
			nc.l.dispatch(task{nc: nc})
			nc.serve(st)
			return
		}
		// from serve on, the reader's fields may be another worker's: use locals
		nc.inlineSeq += inlineStep
		done := nc.inlineSeq
		serving := done | inlineServing
		nc.inline.Store(serving)
		nc.l.watchInline()
		nc.serve(st)
		if !nc.inline.CompareAndSwap(serving, done) {
			return // the watchdog handed the reading on: another worker reads now
		}
	}
}

// The low bit of nativeConn.inline: the reader is serving a call itself; the watchdog
// clears it when it hands the reading on, which the reader learns as its
// compare-and-swap fails. The bits above count the calls served so, so the watchdog
// tells a call that ran a whole tick from a new one.
const (
	inlineServing = 1
	inlineStep    = 2
)

// inlineSkip is how many calls a connection serves with the reading handed on first,
// after the watchdog had to hand it on: calls there are slow, or come side by side.
const inlineSkip = 1024

// mayInline reports whether the reader may serve st before reading on: a unary call,
// with no other frame waiting, on a connection whose calls have been quick. Reader only.
func (nc *nativeConn) mayInline(st *nativeServerStream) bool {
	if h := nc.handoffs.Load(); h != nc.seenHandoffs {
		nc.seenHandoffs, nc.skipInline = h, inlineSkip
	}
	if st.stream || wire.Buffered(nc.br) {
		return false
	}
	if nc.skipInline > 0 {
		nc.skipInline--
		return false
	}
	return true
}

// shutdown closes the connection and fails what is still running on it.
func (nc *nativeConn) shutdown() {
	nc.mu.Lock()
	nc.closed = true
	streams := make([]*nativeServerStream, 0, len(nc.streams))
	for _, st := range nc.streams {
		streams = append(streams, st)
	}
	nc.mu.Unlock()
	nc.w.Wait() // a last GOAWAY or reply another goroutine is writing goes out first
	_ = nc.c.Close()
	nc.w.Fail(ErrClosed)
	nc.cancel()
	for _, st := range streams {
		st.abort(io.ErrUnexpectedEOF)
	}
}

// readLoop reads frames until one opens a call, which it returns, or until the
// connection fails or is idle for IdleTimeout (nil). Only one goroutine reads at a time.
func (nc *nativeConn) readLoop() *nativeServerStream {
	limits := &nc.l.limits
	payload, deadline, idle := nc.payload, nc.deadline, nc.idleSent
	defer func() { nc.payload, nc.deadline, nc.idleSent = payload, deadline, idle }()
	// Between frames only the idle timeout applies; it is pushed back at most once a
	// second (or half the timeout, when shorter), so a busy connection does not reset
	// a timer per frame. idle: the connection went idle, GOAWAY sent, the client
	// should close.
	slack := min(time.Second, limits.IdleTimeout/2)
	for {
		// A frame already buffered is read without the connection, so the clock is
		// read only when the reader may wait: once per read, not once per frame.
		buffered := wire.Buffered(nc.br)
		if !buffered && !idle {
			if now := time.Now(); deadline.Sub(now) < limits.IdleTimeout-slack {
				deadline = now.Add(limits.IdleTimeout)
				_ = nc.c.SetReadDeadline(deadline)
			}
		}
		nc.holdWhileBuffered(buffered)
		h, err := wire.ReadFrameHeader(nc.br)
		if err != nil {
			if isTimeout(err) && nc.busy() {
				deadline = time.Time{}
				continue // calls in progress keep the connection
			}
			if isTimeout(err) && !idle {
				// Say why before closing: a call the client sends meanwhile is then
				// refused (sent again elsewhere) instead of lost with the connection.
				// The client closes an idle connection it is told to leave.
				idle = true
				nc.goAwayReason("idle")
				_ = nc.c.SetReadDeadline(time.Now().Add(min(idleGrace, limits.IdleTimeout)))
				continue
			}
			if err != io.EOF && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
				nc.protocolError(err)
			}
			return nil
		}
		if h.Length > nc.maxFrame {
			if h.Type != wire.TypeRequest && h.Type != wire.TypeMessage {
				nc.protocolError(fmt.Errorf("control frame of %d bytes", h.Length))
				return nil
			}
			// An oversized message is refused without reading it into memory.
			_ = nc.c.SetReadDeadline(time.Now().Add(limits.ReadTimeout))
			deadline = time.Time{}
			if payload, err = nc.skipOversized(h, payload[:0]); err != nil {
				return nil
			}
			nc.refuseTooLarge(h)
			continue
		}
		if payload, err = wire.ReadPayload(nc.br, h.Length, payload[:0]); err != nil {
			return nil
		}
		switch h.Type {
		case wire.TypeRequest:
			st, ok := nc.open(h, payload)
			if !ok {
				return nil
			}
			if st != nil {
				if cap(payload) > 64<<10 {
					payload = nil
				}
				if nc.holding && !wire.Buffered(nc.br) {
					// the last request buffered: its reply need not wait for the next
					// reader, and neither do those held before it
					nc.holding = false
					_ = nc.w.Release()
				}
				return st
			}
		case wire.TypeMessage:
			if !nc.message(h, payload) {
				return nil
			}
		case wire.TypeCancel:
			nc.mu.Lock()
			st := nc.streams[h.Stream]
			nc.mu.Unlock()
			if st != nil {
				st.abort(context.Canceled)
			}
		case wire.TypeWindow:
			if len(payload) != 4 {
				nc.protocolError(errors.New("window frame of wrong size"))
				return nil
			}
			nc.mu.Lock()
			st := nc.streams[h.Stream]
			nc.mu.Unlock()
			if st != nil {
				st.out.add(int(binary.BigEndian.Uint32(payload)))
			}
		case wire.TypePing:
			if len(payload) != 8 {
				nc.protocolError(errors.New("ping frame of wrong size"))
				return nil
			}
			nc.control(wire.TypePong, 0, payload...)
		case wire.TypePong, wire.TypeGoAway:
		}
		if cap(payload) > 64<<10 {
			payload = nil // do not keep a large message's buffer for the connection's life
		}
	}
}

// holdWhileBuffered holds the writer while whole frames are buffered, so that their
// replies share one write, and releases it (writing what waits) once none is: before
// the reader waits for the connection. buffered is wire.Buffered(nc.br). Reader only.
func (nc *nativeConn) holdWhileBuffered(buffered bool) {
	if buffered == nc.holding {
		return
	}
	nc.holding = buffered
	if buffered {
		nc.w.Hold()
	} else {
		_ = nc.w.Release()
	}
}

// skipOversized reads past the payload of a frame too large to take (see skipPayload),
// answering 431 when its header block is too large as well.
func (nc *nativeConn) skipOversized(h wire.FrameHeader, buf []byte) ([]byte, error) {
	buf, err := skipPayload(nc.br, &nc.dec, h.Length, uint32(nc.l.limits.MaxHeaderBytes), buf, nil)
	if err != nil && !errors.Is(err, errSkipRead) {
		if errors.Is(err, wire.ErrHeaderTooLarge) || errors.Is(err, wire.ErrTooManyFields) {
			nc.sendError(h.Stream, merrors.New(errorID, err.Error(), 431).(*merrors.Error), "")
		}
		nc.protocolError(err)
	}
	return buf, err
}

func (nc *nativeConn) busy() bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return len(nc.streams) > 0
}

// control writes a control frame.
func (nc *nativeConn) control(typ byte, stream uint32, payload ...byte) {
	buf, err := nc.w.Begin()
	if err != nil {
		return
	}
	_ = nc.w.Commit(wire.AppendControl(buf, typ, 0, stream, payload...))
}

// protocolError tells the peer why the connection is being closed.
func (nc *nativeConn) protocolError(err error) {
	nc.mu.Lock()
	last := nc.lastID
	nc.mu.Unlock()
	nc.l.log.Logf(logger.DebugLevel, "transport: native connection from %s: %v", nc.remote, err)
	p := binary.BigEndian.AppendUint32(nil, last)
	nc.control(wire.TypeGoAway, 0, append(p, err.Error()...)...)
	nc.w.Wait() // the connection closes next: another goroutine may be writing the frame
}

// refuseTooLarge answers an oversized message with 413.
func (nc *nativeConn) refuseTooLarge(h wire.FrameHeader) {
	e := merrors.RequestEntityTooLarge(errorID, "request exceeds %d bytes", nc.l.limits.MaxMsgSize).(*merrors.Error)
	if h.Type == wire.TypeMessage {
		nc.mu.Lock()
		st := nc.streams[h.Stream]
		nc.mu.Unlock()
		if st == nil {
			return
		}
		st.in.fail(fmt.Errorf("%w: a message exceeds %d bytes", errTooLarge, nc.l.limits.MaxMsgSize))
		return
	}
	nc.sendError(h.Stream, e, "")
}

// sendError answers a stream that never started with e.
func (nc *nativeConn) sendError(id uint32, e *merrors.Error, notStarted string) {
	js := e.Error()
	hdr := wire.Fields{{Key: headers.ContentType, Value: "application/json"}, {Key: headers.Error, Value: js}, {Key: headers.Status, Value: strconv.Itoa(e.HTTPStatus())}}
	if notStarted != "" {
		hdr = append(hdr, wire.Field{Key: headers.NotStarted, Value: notStarted})
	}
	buf, err := nc.w.Begin()
	if err != nil {
		return
	}
	_ = nc.w.Commit(nc.w.AppendFields(buf, wire.TypeMessage, wire.FlagEnd, id, hdr, []byte(js)))
}

// open registers the call a Request frame opens and returns it to be served (nil when
// it was answered at once); false when the connection cannot go on.
func (nc *nativeConn) open(h wire.FrameHeader, payload []byte) (*nativeServerStream, bool) {
	received := time.Now()
	st := &nativeServerStream{nc: nc, id: h.Stream, received: received, stream: h.Flags&wire.FlagStream != 0}
	fields, body, err := nc.dec.Decode(payload, st.fieldsBuf[:0])
	switch {
	case errors.Is(err, wire.ErrHeaderTooLarge), errors.Is(err, wire.ErrTooManyFields):
		// the table is in a state the peer does not know: the connection cannot go on
		nc.sendError(h.Stream, merrors.New(errorID, err.Error(), 431).(*merrors.Error), "")
		nc.protocolError(err)
		return nil, false
	case err != nil:
		nc.protocolError(err)
		return nil, false
	}
	if h.Stream == 0 || h.Stream%2 == 0 {
		nc.protocolError(fmt.Errorf("request on stream %d: client streams are odd", h.Stream))
		return nil, false
	}
	if len(body) > 0 {
		body = nc.slab.copy(body)
	}
	if int64(len(body)) > nc.l.limits.MaxMsgSize {
		nc.sendError(h.Stream, merrors.RequestEntityTooLarge(errorID, "request exceeds %d bytes", nc.l.limits.MaxMsgSize).(*merrors.Error), "")
		return nil, true
	}
	nc.mu.Lock()
	if h.Stream <= nc.lastID {
		nc.mu.Unlock()
		nc.protocolError(fmt.Errorf("stream %d reused", h.Stream))
		return nil, false
	}
	if nc.goaway || nc.closed {
		nc.mu.Unlock()
		nc.control(wire.TypeCancel, h.Stream, wire.CodeRefused)
		return nil, true
	}
	if len(nc.streams)-nc.replied >= int(nc.l.limits.MaxConcurrentStreams) {
		nc.mu.Unlock()
		nc.control(wire.TypeCancel, h.Stream, wire.CodeRefused)
		return nil, true
	}
	nc.lastID = h.Stream
	st.fields, st.body = fields, body
	if st.stream {
		st.in.init()
		st.in.splitEnd = true
		st.out.init()
		if h.Flags&wire.FlagBody != 0 {
			st.in.push(inMsg{hdr: wire.Fields{{Key: Open, Value: "1"}}, body: body}, int(nc.maxFrame)+streamWindow)
		}
		if h.Flags&wire.FlagEnd != 0 {
			st.in.push(inMsg{end: true}, int(nc.maxFrame)+streamWindow)
		}
	}
	nc.streams[h.Stream] = st
	nc.active.Store(int32(len(nc.streams)))
	nc.mu.Unlock()
	nc.l.active.Add()
	return st, true
}

// serve runs one call.
func (nc *nativeConn) serve(st *nativeServerStream) {
	defer nc.l.active.Done()
	nc.l.mu.Lock()
	fn := nc.l.fn
	nc.l.mu.Unlock()
	fn(st)
	if !st.finished() {
		e := merrors.InternalServerError(errorID, "the server sent no reply").(*merrors.Error)
		if st.stream {
			_ = st.Send(&Message{Header: map[string]string{EOS: "1", headers.Error: merrors.InternalServerError(errorID, "the server ended the stream without a status").Error()}})
		} else {
			nc.release(st)
			nc.sendError(st.id, e, "")
		}
	}
	nc.mu.Lock()
	delete(nc.streams, st.id)
	nc.active.Store(int32(len(nc.streams)))
	if st.released {
		nc.replied--
	}
	idle := len(nc.streams) == 0 && nc.idle != nil
	if idle {
		close(nc.idle)
		nc.idle = nil
	}
	nc.mu.Unlock()
	if st.stream {
		st.out.close()
		st.in.fail(io.EOF)
	}
}

// message queues a stream message.
func (nc *nativeConn) message(h wire.FrameHeader, payload []byte) bool {
	fields, body, err := nc.dec.Decode(payload, nil)
	if err != nil {
		nc.protocolError(err)
		return false
	}
	nc.mu.Lock()
	st := nc.streams[h.Stream]
	nc.mu.Unlock()
	if st == nil || !st.stream {
		return true // a stream that ended: its late frames are dropped
	}
	if int64(len(body)) > nc.l.limits.MaxMsgSize {
		st.in.fail(fmt.Errorf("%w: a message exceeds %d bytes", errTooLarge, nc.l.limits.MaxMsgSize))
		return true
	}
	if len(body) > 0 {
		body = nc.slab.copy(body)
	}
	if !st.in.push(inMsg{hdr: fields, body: body, end: h.Flags&wire.FlagEnd != 0}, streamWindow+int(nc.maxFrame)) {
		st.abort(errors.New("transport: the peer sent more than its credit"))
		nc.control(wire.TypeCancel, h.Stream, wire.CodeProtocol)
	}
	return true
}

// idleGrace is how long an idle connection told to go away waits for its client to
// close it before the server does (the idle timeout, when shorter).
const idleGrace = time.Second

// goAway stops the connection taking calls: the client learns which it took.
func (nc *nativeConn) goAway() { nc.goAwayReason("server stopping") }

func (nc *nativeConn) goAwayReason(reason string) {
	nc.mu.Lock()
	if nc.goaway {
		nc.mu.Unlock()
		return
	}
	nc.goaway = true
	last := nc.lastID
	nc.mu.Unlock()
	p := binary.BigEndian.AppendUint32(nil, last)
	nc.control(wire.TypeGoAway, 0, append(p, reason...)...)
}

// goodbye tells the client, as the connection is about to close, which calls it took
// (GOAWAY): those it sent later never ran, and it may send them elsewhere. Without it a
// call sent on a connection the server had just closed is lost as ConnLostError. It
// waits for nothing past deadline: a write still in progress then is cut off.
func (nc *nativeConn) goodbye(deadline time.Time) {
	nc.mu.Lock()
	if nc.goaway { // Drain said it already
		nc.mu.Unlock()
		return
	}
	nc.goaway = true
	last := nc.lastID
	nc.mu.Unlock()
	p := append(binary.BigEndian.AppendUint32(nil, last), "server closing"...)
	nc.w.WriteNow(wire.AppendControl(nil, wire.TypeGoAway, 0, 0, p...), deadline)
}

// waitIdle waits until no call runs on the connection.
func (nc *nativeConn) waitIdle(ctx context.Context) error {
	for {
		nc.mu.Lock()
		if len(nc.streams) == 0 {
			nc.mu.Unlock()
			return nil
		}
		if nc.idle == nil {
			nc.idle = make(chan struct{})
		}
		ch := nc.idle
		nc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// nativeServerStream is one call on a native connection, as a server Socket.
type nativeServerStream struct {
	nc        *nativeConn
	id        uint32
	fields    wire.Fields
	fieldsBuf [10]wire.Field
	body      []byte
	received  time.Time
	stream    bool

	recvd bool // the request was returned by Recv

	// streams only
	in      inbox
	out     credit
	granted int // body bytes consumed since the last Window frame

	wmu        sync.Mutex
	headerSent bool
	ended      bool // the last frame was sent
	released   bool // its slot counts as free (nc.mu)

	cmu       sync.Mutex
	onCancel  interface{ Cancel() }
	cancelled bool
}

// HeaderOwned reports that the header map Recv returns belongs to the call alone.
func (s *nativeServerStream) HeaderOwned() bool { return true }

// Received returns when the call's request arrived.
func (s *nativeServerStream) Received() time.Time { return s.received }

// Local returns the server's address of the connection.
func (s *nativeServerStream) Local() string { return s.nc.local }

// Remote returns the client's address.
func (s *nativeServerStream) Remote() string { return s.nc.remote }

// OnCancel registers f to run when the client cancels the call or the connection closes
// (at once if that already happened). The server passes the cancel func of the
// handler's context; the socket has no Context of its own, which spares a context per
// call.
func (s *nativeServerStream) OnCancel(f func()) { s.OnCancelCall(cancelFunc(f)) }

// OnCancelCall is OnCancel for a value with a Cancel method, which spares the caller a
// method value.
func (s *nativeServerStream) OnCancelCall(c interface{ Cancel() }) {
	s.cmu.Lock()
	if s.cancelled {
		s.cmu.Unlock()
		c.Cancel()
		return
	}
	s.onCancel = c
	s.cmu.Unlock()
}

// cancelFunc is a func with a Cancel method.
type cancelFunc func()

func (f cancelFunc) Cancel() { f() }

func (s *nativeServerStream) abort(err error) {
	s.cmu.Lock()
	s.cancelled = true
	f := s.onCancel
	s.cmu.Unlock()
	if f != nil {
		f.Cancel()
	}
	if s.stream {
		s.in.fail(err)
		s.out.close()
	}
}

func (s *nativeServerStream) finished() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ended
}

// Close stops receiving: a blocked Recv returns. Replies can still be sent.
func (s *nativeServerStream) Close() error {
	if s.stream {
		s.in.abort(ErrClosed)
	}
	return nil
}

// Recv returns the request: for a unary call, its headers and body, then io.EOF; for a
// stream, the headers, then each message (the opening one marked Open), then io.EOF
// when the client half-closed.
func (s *nativeServerStream) Recv(m *Message) error {
	if !s.recvd {
		s.recvd = true
		extra := 0
		if s.stream {
			extra = 1
		}
		m.Header = fieldsMap(s.fields, extra+2) // room for the server's Local and Remote
		if s.stream {
			m.Header[StreamHeader] = "1"
			m.Body = nil
		} else {
			m.Body = s.body
		}
		s.fields, s.body = nil, nil
		return nil
	}
	if !s.stream {
		return io.EOF
	}
	msg, err, ok := s.in.pop(nil, nil)
	if !ok {
		return err
	}
	if msg.end {
		return io.EOF
	}
	s.grant(len(msg.body))
	if len(msg.hdr) > 0 {
		m.Header = fieldsMap(msg.hdr, 0)
	} else {
		m.Header = nil
	}
	m.Body = msg.body
	return nil
}

// grant returns credit to the client once a quarter of the window was read.
func (s *nativeServerStream) grant(n int) {
	s.granted += n
	if s.granted >= streamWindow/4 {
		g := s.granted
		s.granted = 0
		s.nc.control(wire.TypeWindow, s.id, binary.BigEndian.AppendUint32(nil, uint32(g))...)
	}
}

// Send writes a reply. On a unary call it is the one reply (":status" sets the status).
// On a stream the first Send marked Open answers the opening with headers; later ones
// are messages; one marked EOS ends the stream (its Micro-Error, if any, is the error).
func (s *nativeServerStream) Send(m *Message) error {
	if !s.stream {
		return s.sendUnary(m)
	}
	eos := m.Header[EOS] != ""
	if !eos && len(m.Body) > 0 {
		ok, err := s.out.take(s.nc.ctx, len(m.Body))
		if err != nil {
			return err
		}
		if !ok {
			return io.ErrClosedPipe
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended {
		return io.ErrClosedPipe
	}
	var flags byte
	var hdr map[string]string
	switch {
	case !s.headerSent && m.Header[headers.Status] != "" && m.Header[headers.Status] != "200":
		s.ended = true
		flags, hdr = wire.FlagEnd, m.Header
	case eos:
		s.ended = true
		flags = wire.FlagEnd
		if e := m.Header[headers.Error]; e != "" {
			hdr = map[string]string{headers.Error: e}
		}
	case !s.headerSent:
		hdr = m.Header
	}
	s.headerSent = true
	if s.ended {
		s.nc.release(s)
	}
	buf, err := s.nc.w.Begin()
	if err != nil {
		return err
	}
	return s.nc.w.Commit(s.nc.w.AppendMessage(buf, wire.TypeMessage, flags, s.id, hdr, m.Body))
}

func (s *nativeServerStream) sendUnary(m *Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended {
		return errors.New("transport: a unary call has one reply")
	}
	s.ended = true
	s.nc.release(s)
	if m.Header[NDJSON] != "" {
		e := merrors.BadRequest(errorID, "the endpoint is a stream: call it as a stream").(*merrors.Error)
		s.nc.sendErrorLocked(s, e)
		return nil
	}
	buf, err := s.nc.w.Begin()
	if err != nil {
		return err
	}
	return s.nc.w.Commit(s.nc.w.AppendMessage(buf, wire.TypeMessage, wire.FlagEnd, s.id, m.Header, m.Body))
}

// release frees the slot of a stream whose last frame is about to be written. The client
// counts the stream as ended once it reads that frame and may open the next one at once,
// before serve has removed this one: counting it until then would refuse that call.
func (nc *nativeConn) release(st *nativeServerStream) {
	nc.mu.Lock()
	if nc.streams[st.id] == st && !st.released {
		st.released = true
		nc.replied++
	}
	nc.mu.Unlock()
}

// sendErrorLocked is sendError for a stream whose wmu is held.
func (nc *nativeConn) sendErrorLocked(s *nativeServerStream, e *merrors.Error) {
	nc.sendError(s.id, e, "")
}

// ConnectionState returns nil: the native protocol runs on connections without TLS (see
// TLSSocket).
func (s *nativeServerStream) ConnectionState() *tls.ConnectionState { return nil }

var _ TLSSocket = (*nativeServerStream)(nil)
