package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	merrors "github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/connmux"
	"github.com/seed-b3892490/micro/internal/inflight"
	"github.com/seed-b3892490/micro/internal/wire"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/transport/headers"
)

const errorID = "go.micro.transport"

type httpListener struct {
	ln     net.Listener
	srv    *http.Server
	limits Limits
	log    logger.Logger

	active inflight.Tracker // calls being served
	conns  inflight.Tracker // connections not yet closed

	liveMu  sync.Mutex
	live    map[net.Conn]http.ConnState // the connections counted by conns
	changed chan struct{}               // closed and replaced when a connection's state changes

	mu       sync.Mutex
	fn       func(Socket)
	shutdown chan struct{} // closed when Accept's Serve has returned
	started  bool

	// mux routes connections opening with the native Magic to serveNative, the rest to
	// the HTTP server; nil when the listener serves HTTP only (TLS, or native off).
	mux       *connmux.Mux
	nativeLn  net.Listener
	httpLn    net.Listener
	nativeMu  sync.Mutex
	natives   map[*nativeConn]struct{}
	nativeOff bool // set by Close and Drain: no more native connections
	nativeWG  sync.WaitGroup

	// Native calls run on pooled workers: a worker done with a call waits for the next
	// one, up to maxIdleWorkers of them, until the listener closes.
	work        chan task
	idleWorkers atomic.Int32
	workersDone chan struct{}
	closeOnce   sync.Once
	watching    atomic.Bool // a watchdog runs
}

// maxIdleWorkers bounds the workers kept waiting for native calls.
const maxIdleWorkers = 256

// task is a worker's job: go on reading a native connection.
type task struct{ nc *nativeConn }

// dispatch gives t to an idle worker, or a new one.
func (l *httpListener) dispatch(t task) {
	select {
	case l.work <- t:
		return
	default:
	}
	// not in nativeWG: like HTTP's, a handler may outlive Close (Drain waits for it)
	go l.worker(t)
}

func (l *httpListener) worker(t task) {
	// The idle timer is armed once and left running while the worker works: resetting
	// it per call would make it the runtime's earliest timer over and over, and each
	// time that wakes the thread sleeping in the network poller. When it fires, a
	// worker that has not been idle for workerIdle yet sets it for the rest.
	var idle *time.Timer
	for {
		t.nc.runReader()
		t = task{}
		if l.idleWorkers.Add(1) > maxIdleWorkers {
			l.idleWorkers.Add(-1)
			if idle != nil {
				idle.Stop()
			}
			return
		}
		since := time.Now()
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		}
	wait:
		select {
		case t = <-l.work:
			l.idleWorkers.Add(-1)
		case <-idle.C:
			if d := time.Since(since); d < workerIdle {
				idle.Reset(workerIdle - d)
				goto wait
			}
			l.idleWorkers.Add(-1)
			return
		case <-l.workersDone:
			l.idleWorkers.Add(-1)
			idle.Stop()
			return
		}
	}
}

// workerIdle is how long a worker waits for another call before it ends.
const workerIdle = time.Second

// inlineTick is how often the watchdog looks at calls served on their connection's
// reader: one still running a tick later (between one and two ticks in all) has the
// reading handed on to another worker, so that frames behind it are read.
const inlineTick = 500 * time.Microsecond

// watchdogQuiet is how many ticks without such a call the watchdog waits before it ends.
const watchdogQuiet = 8

// watchInline makes sure a watchdog runs: a reader is about to serve a call itself.
func (l *httpListener) watchInline() {
	if !l.watching.Load() && l.watching.CompareAndSwap(false, true) {
		go l.watchdog()
	}
}

// watchdog hands the reading of a connection on to another worker when its reader has
// served one call for a whole tick. It ends when the listener closes, or after
// watchdogQuiet ticks in which no call was served so.
func (l *httpListener) watchdog() {
	t := time.NewTicker(inlineTick)
	defer t.Stop()
	quiet := 0
	for {
		select {
		case <-t.C:
		case <-l.workersDone:
			l.watching.Store(false)
			return
		}
		if l.handOffInline() {
			quiet = 0
			continue
		}
		if quiet++; quiet < watchdogQuiet {
			continue
		}
		l.watching.Store(false)
		// A reader that began a call before the flag went down saw it up and started
		// no watchdog: look once more, and go on if one did.
		if !l.anyInline() || !l.watching.CompareAndSwap(false, true) {
			return
		}
		quiet = 0
	}
}

// handOffInline hands on the reading of each connection whose reader has served the
// same call since the last tick, and reports whether any reader served calls since.
func (l *httpListener) handOffInline() (active bool) {
	var handed []*nativeConn
	l.nativeMu.Lock()
	for nc := range l.natives {
		v := nc.inline.Load()
		if v != nc.watched {
			nc.watched, active = v, true // a call began or ended since the last tick
			continue
		}
		if v&inlineServing == 0 {
			continue
		}
		active = true
		if nc.inline.CompareAndSwap(v, v&^inlineServing) {
			nc.handoffs.Add(1)
			handed = append(handed, nc)
		}
	}
	l.nativeMu.Unlock()
	for _, nc := range handed {
		l.dispatch(task{nc: nc})
	}
	return active
}

// anyInline reports whether a reader is serving a call itself.
func (l *httpListener) anyInline() bool {
	l.nativeMu.Lock()
	defer l.nativeMu.Unlock()
	for nc := range l.natives {
		if nc.inline.Load()&inlineServing != 0 {
			return true
		}
	}
	return false
}

func newHTTPListener(ln net.Listener, limits Limits, tlsConf *tls.Config, log logger.Logger, native bool) *httpListener {
	l := &httpListener{ln: ln, limits: limits, log: log, shutdown: make(chan struct{}), httpLn: ln}
	if native && tlsConf == nil {
		l.mux = connmux.New(ln, muxTimeout)
		l.nativeLn = l.mux.Match(func(p []byte) bool { return string(p) == wire.Magic }, len(wire.Magic))
		l.httpLn = l.mux.Fallback()
		l.natives = make(map[*nativeConn]struct{})
		l.work = make(chan task)
		l.workersDone = make(chan struct{})
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if tlsConf != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes(limits.MaxHeaderBytes),
		TLSConfig:         tlsConf,
		Protocols:         protocols,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(limits.MaxConcurrentStreams),
			SendPingTimeout:      limits.IdleTimeout / 2,
			PingTimeout:          limits.ReadHeaderTimeout,
		},
		ConnState: l.connState,
		ErrorLog:  stdlog.New(serverLog{log}, "", 0),
	}
	return l
}

// serverLog writes what net/http's server logs (TLS handshakes it refused, panics it
// recovered, failed accepts) through the transport's logger, as warnings.
type serverLog struct{ l logger.Logger }

func (w serverLog) Write(p []byte) (int, error) {
	w.l.Log(logger.WarnLevel, "transport: "+strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// maxHeaderBytes returns the net/http setting for a header block limit: net/http allows
// 4096 bytes beyond its setting, so the setting is that much lower.
func maxHeaderBytes(limit int) int {
	if limit > 8192 {
		return limit - 4096
	}
	return limit
}

// connState counts open connections, so that Drain knows when the last one is gone.
func (l *httpListener) connState(c net.Conn, st http.ConnState) {
	l.liveMu.Lock()
	defer l.liveMu.Unlock()
	if l.live == nil {
		l.live = make(map[net.Conn]http.ConnState)
	}
	switch st {
	case http.StateNew:
		l.live[c] = st
		l.conns.Add()
	case http.StateClosed, http.StateHijacked:
		if _, ok := l.live[c]; ok {
			delete(l.live, c)
			l.conns.Done()
		}
	default:
		if _, ok := l.live[c]; ok {
			l.live[c] = st
		}
	}
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// waitQuiet waits until no connection has a stream in progress: HTTP/2 marks a connection
// idle once the last frame of its last stream is written.
func (l *httpListener) waitQuiet(ctx context.Context) error {
	for {
		l.liveMu.Lock()
		busy := false
		for _, st := range l.live {
			if st == http.StateActive {
				busy = true
				break
			}
		}
		if !busy {
			l.liveMu.Unlock()
			return nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.liveMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// halfClose shuts the write side of every open connection.
func (l *httpListener) halfClose() {
	l.liveMu.Lock()
	defer l.liveMu.Unlock()
	for c := range l.live {
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	l.nativeMu.Lock()
	defer l.nativeMu.Unlock()
	for nc := range l.natives {
		if cw, ok := nc.c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
}

// flushGrace is how long Drain lets connections flush their last replies, and drainGrace
// how long it then waits for peers to close them, before it closes what is left.
const (
	flushGrace = 20 * time.Millisecond
	drainGrace = 150 * time.Millisecond
)

func (l *httpListener) Addr() string { return l.ln.Addr().String() }

// Accept serves connections, calling fn for every call, until Close or Drain.
func (l *httpListener) Accept(fn func(Socket)) error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return errors.New("transport: Accept called twice")
	}
	l.started = true
	l.fn = fn
	l.mu.Unlock()
	defer close(l.shutdown)
	if l.mux != nil {
		l.nativeWG.Add(2)
		go func() {
			defer l.nativeWG.Done()
			_ = l.mux.Serve()
		}()
		go func() {
			defer l.nativeWG.Done()
			l.acceptNative()
		}()
		defer l.nativeWG.Wait()
	}
	var err error
	if l.srv.TLSConfig != nil {
		err = l.srv.ServeTLS(l.httpLn, "", "")
	} else {
		err = l.srv.Serve(l.httpLn)
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, connmux.ErrClosed) {
		return nil
	}
	return err
}

// Close stops accepting and closes every connection at once (a native one after a
// GOAWAY naming the last call it took, written within goodbyeGrace).
func (l *httpListener) Close() error {
	if l.mux != nil {
		// first: the HTTP server's Close waits for its Accept, which the mux ends
		_ = l.mux.Close()
		l.closeNatives()
	}
	err := l.srv.Close()
	if !l.wasStarted() {
		_ = l.ln.Close()
	}
	return err
}

// muxTimeout is how long a new connection may take to send the bytes that tell native
// from HTTP; one that sends fewer goes to the HTTP server with what it sent.
const muxTimeout = time.Second

// acceptNative serves the native connections the mux routes here.
func (l *httpListener) acceptNative() {
	for {
		c, err := l.nativeLn.Accept()
		if err != nil {
			return
		}
		// not in nativeWG: the goroutine may go on to serve a call, which (as with
		// HTTP) may outlive Close; the connection itself is closed by Close
		go l.serveNative(c)
	}
}

// addNative records a native connection; false once the listener is closing.
func (l *httpListener) addNative(nc *nativeConn) bool {
	l.nativeMu.Lock()
	defer l.nativeMu.Unlock()
	if l.nativeOff {
		return false
	}
	l.natives[nc] = struct{}{}
	l.conns.Add()
	return true
}

func (l *httpListener) removeNative(nc *nativeConn) {
	l.nativeMu.Lock()
	defer l.nativeMu.Unlock()
	if _, ok := l.natives[nc]; ok {
		delete(l.natives, nc)
		l.conns.Done()
	}
}

// nativeConns stops new native connections and returns those open.
func (l *httpListener) nativeConns() []*nativeConn {
	l.nativeMu.Lock()
	defer l.nativeMu.Unlock()
	l.nativeOff = true
	out := make([]*nativeConn, 0, len(l.natives))
	for nc := range l.natives {
		out = append(out, nc)
	}
	return out
}

// goodbyeGrace bounds the GOAWAY frames Close writes before it closes the native
// connections.
const goodbyeGrace = 50 * time.Millisecond

func (l *httpListener) closeNatives() {
	natives := l.nativeConns()
	deadline := time.Now().Add(goodbyeGrace)
	for _, nc := range natives {
		nc.goodbye(deadline)
	}
	for _, nc := range natives {
		nc.shutdown()
	}
	l.closeOnce.Do(func() { close(l.workersDone) })
}

func (l *httpListener) wasStarted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// Drain stops accepting, lets the calls being served finish until ctx is done, then
// closes every connection (idle kept-alive ones included).
func (l *httpListener) Drain(ctx context.Context) error {
	if !l.wasStarted() {
		return l.ln.Close()
	}
	// Shutdown closes the listener, sends GOAWAY on HTTP/2 connections and closes HTTP/1
	// connections once their call is answered. It polls slowly, so rather than wait for it
	// we watch the calls being served, then the connections: a connection closes once
	// its last reply is flushed and the peer has seen the GOAWAY. Close cuts off what is
	// left when ctx ends, or shortly after the last call: the GOAWAY went out when the
	// drain began and the last replies are flushed within that grace, but HTTP/2 peers
	// keep idle connections open until the server closes them.
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.srv.Shutdown(sctx)
	}()
	var natives []*nativeConn
	if l.mux != nil {
		// No new connections; every native one learns which calls it still gets served
		// (GOAWAY), so its client sends the rest elsewhere.
		_ = l.mux.Close()
		natives = l.nativeConns()
		for _, nc := range natives {
			nc.goAway()
		}
	}
	err := l.active.Wait(ctx)
	if err == nil {
		for _, nc := range natives {
			_ = nc.waitIdle(ctx)
		}
	}
	if err == nil {
		// The last replies are queued on their connections: wait until every
		// connection has written the last frame of its last stream, give it a moment
		// to flush, then end our side of each (FIN after everything written). Peers
		// read what is left and close theirs; closing outright could reset a
		// connection whose last replies the peer has not read yet.
		quiet, cancelQuiet := context.WithTimeout(ctx, time.Second)
		_ = l.waitQuiet(quiet)
		cancelQuiet()
		flush, cancelFlush := context.WithTimeout(ctx, flushGrace)
		if l.conns.Wait(flush) != nil {
			l.halfClose()
			closing, cancelClosing := context.WithTimeout(ctx, drainGrace)
			_ = l.conns.Wait(closing)
			cancelClosing()
		}
		cancelFlush()
	}
	cancel()
	cerr := l.srv.Close()
	if l.mux != nil {
		l.closeNatives()
	}
	<-done
	<-l.shutdown
	if err != nil {
		return err
	}
	return cerr
}

// ServeHTTP turns one HTTP request into a Socket.
func (l *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.active.Add()
	defer l.active.Done()
	l.mu.Lock()
	fn := l.fn
	l.mu.Unlock()
	rc := http.NewResponseController(w)
	if r.Method == http.MethodPost && r.Header.Get(StreamHeader) != "" {
		if r.ProtoMajor == 1 {
			_ = rc.EnableFullDuplex()
		}
		st := &httpStreamServer{w: w, r: r, rc: rc, limits: &l.limits, received: time.Now()}
		fn(st)
		st.wmu.Lock()
		ended := st.ended
		st.wmu.Unlock()
		if !ended {
			_ = st.Send(&Message{Header: map[string]string{EOS: "1", headers.Error: merrors.InternalServerError(errorID, "the server ended the stream without a status").Error()}})
		}
		return
	}
	s := &httpServerSocket{w: w, r: r, rc: rc, limits: &l.limits, received: time.Now()}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.sendError(merrors.MethodNotAllowed(errorID, "method %s not allowed: send calls with POST", r.Method).(*merrors.Error))
		return
	}
	fn(s)
	if !s.sent {
		s.sendError(merrors.InternalServerError(errorID, "the server sent no reply").(*merrors.Error))
	}
}

// hopByHop lists request headers that describe the connection, not the call; they are
// not passed on as message headers.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Content-Length":      true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Accept-Encoding":     true,
	"Http2-Settings":      true,
}

type httpServerSocket struct {
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	limits *Limits
	recvd  bool
	sent   bool
	ndjson bool // the reply is a stream of newline-delimited bodies
	// received is when the request's headers had arrived.
	received time.Time
}

// Received returns when the call's request arrived, so that a deadline sent as a
// duration counts from then rather than from when a handler starts.
func (s *httpServerSocket) Received() time.Time { return s.received }

func (s *httpServerSocket) Local() string { return localAddr(s.r) }

// ConnectionState returns the TLS state of the call's connection, nil without TLS (see
// TLSSocket).
func (s *httpServerSocket) ConnectionState() *tls.ConnectionState { return s.r.TLS }

func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

// checkHeaderCount refuses a request with more header fields than the limit.
func checkHeaderCount(r *http.Request, limits *Limits) error {
	n := 0
	for _, v := range r.Header {
		n += len(v)
	}
	if n > limits.MaxHeaderCount {
		return merrors.New(errorID, "request has "+strconv.Itoa(n)+" header fields, more than the limit of "+strconv.Itoa(limits.MaxHeaderCount), http.StatusRequestHeaderFieldsTooLarge)
	}
	return nil
}

// messageHeader turns request headers into message headers (first values, without the
// headers that describe the connection), with the :path and :method pseudo-headers.
func messageHeader(r *http.Request) map[string]string {
	hdr := make(map[string]string, len(r.Header)+2)
	for k, v := range r.Header {
		if len(v) == 0 || hopByHop[k] {
			continue
		}
		hdr[k] = v[0]
	}
	hdr[headers.Path] = r.URL.Path
	hdr[headers.HTTPMethod] = r.Method
	return hdr
}

func (s *httpServerSocket) Remote() string { return s.r.RemoteAddr }

func (s *httpServerSocket) Close() error { return nil }

// Context returns the context of the HTTP request: it is cancelled when the caller goes
// away or the listener closes the connection.
func (s *httpServerSocket) Context() context.Context { return s.r.Context() }

// Recv returns the request as a Message on its first call, io.EOF after. Limit violations
// are returned as *errors.Error with the HTTP status to answer (413, 431, 408, 400).
func (s *httpServerSocket) Recv(m *Message) error {
	if s.recvd {
		return io.EOF
	}
	s.recvd = true
	if err := checkHeaderCount(s.r, s.limits); err != nil {
		return err
	}
	m.Header = messageHeader(s.r)
	body, err := s.readBody()
	if err != nil {
		return err
	}
	m.Body = body
	return nil
}

func (s *httpServerSocket) tooLarge() error {
	return merrors.RequestEntityTooLarge(errorID, "request exceeds %d bytes", s.limits.MaxMsgSize)
}

func (s *httpServerSocket) readBody() ([]byte, error) {
	r, limit := s.r, s.limits.MaxMsgSize
	if r.ContentLength > limit {
		return nil, s.tooLarge()
	}
	if r.ContentLength == 0 {
		return nil, nil
	}
	_ = s.rc.SetReadDeadline(time.Now().Add(s.limits.ReadTimeout))
	body, err := readLimited(r.Body, r.ContentLength, limit)
	switch {
	case err == nil:
		return body, nil
	case errors.Is(err, errTooLarge):
		return nil, s.tooLarge()
	case isTimeout(err):
		return nil, merrors.Timeout(errorID, "request body not received within %s", s.limits.ReadTimeout)
	default:
		return nil, merrors.BadRequest(errorID, "reading request body: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

var errTooLarge = errors.New("message too large")

// chunkPool recycles the buffers bodies of unknown length are read into.
var chunkPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// readLimited reads a body of known (n >= 0) or unknown (n < 0) length, failing with
// errTooLarge as soon as more than limit bytes arrive. A body of unknown length is read
// into pooled chunks and copied once into a buffer of its exact size, so an oversized
// body costs no allocation beyond the pool.
func readLimited(r io.Reader, n, limit int64) ([]byte, error) {
	if n >= 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	var chunks []*[32 << 10]byte
	defer func() {
		for _, c := range chunks {
			chunkPool.Put(c)
		}
	}()
	var total int64
	for {
		c := chunkPool.Get().(*[32 << 10]byte)
		chunks = append(chunks, c)
		k, err := io.ReadFull(r, c[:])
		total += int64(k)
		if total > limit {
			return nil, errTooLarge
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, total)
	off := 0
	for _, c := range chunks {
		off += copy(out[off:], c[:])
	}
	return out, nil
}

// Send writes the reply. Header ":status" sets the HTTP status (default 200). A first
// reply marked NDJSON starts a chunked stream of newline-terminated bodies instead, which
// later Sends continue and a Send marked EOS ends (its Micro-Error, if any, goes in a
// trailer).
func (s *httpServerSocket) Send(m *Message) error {
	switch {
	case s.ndjson:
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
		defer s.rc.SetWriteDeadline(time.Time{})
		if m.Header[EOS] != "" {
			s.ndjson = false
			if e := m.Header[headers.Error]; e != "" {
				s.w.Header().Set(http.TrailerPrefix+headers.Error, e)
			}
			return nil
		}
		if _, err := s.w.Write(ndjsonLine(m.Body)); err != nil {
			return err
		}
		return s.rc.Flush()
	case s.sent:
		return errors.New("transport: a unary HTTP call has one reply")
	}
	s.sent = true
	if m.Header[NDJSON] != "" {
		s.ndjson = true
		h := s.w.Header()
		for k, v := range m.Header {
			if len(k) > 0 && k[0] != ':' {
				h.Set(k, v)
			}
		}
		h["Date"] = nil
		s.w.WriteHeader(http.StatusOK)
		if len(m.Body) == 0 {
			return s.rc.Flush()
		}
		s.sent = true
		if _, err := s.w.Write(ndjsonLine(m.Body)); err != nil {
			return err
		}
		return s.rc.Flush()
	}
	return writeWhole(s.w, s.rc, s.limits, m)
}

// sendError answers with e as the JSON body, the Micro-Error header and e's status.
func (s *httpServerSocket) sendError(e *merrors.Error) {
	js := e.Error()
	_ = s.Send(&Message{
		Header: map[string]string{
			headers.ContentType: "application/json",
			headers.Error:       js,
			headers.Status:      strconv.Itoa(e.HTTPStatus()),
		},
		Body: []byte(js),
	})
}

var (
	_ TLSSocket = (*httpServerSocket)(nil)
	_ TLSSocket = (*httpStreamServer)(nil)
)
