package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/logger"
)

// DefaultTransport is the transport used when none is given: HTTP, built on first use of
// NewHTTPTransport's result (constructing it opens nothing).
var DefaultTransport Transport = NewHTTPTransport()

// HTTPTransport is the default transport. Its listeners serve HTTP/1.1 and HTTP/2 without
// TLS (prior knowledge) on one port, or both over TLS with ALPN when a TLSConfig is set.
// Its clients speak HTTP/2 and multiplex every call to one address over a small pool of
// connections. It is safe for concurrent use.
type HTTPTransport struct {
	mu   sync.RWMutex
	opts Options
	rt   *http.Transport // built lazily, replaced by Init
	// native holds the native protocol's client connections, made on first use
	native *nativePool
}

// NewHTTPTransport returns the HTTP transport. Nothing is opened until Dial or Listen.
func NewHTTPTransport(opts ...Option) *HTTPTransport {
	t := &HTTPTransport{}
	t.opts = Options{Context: context.Background()}
	for _, o := range opts {
		o(&t.opts)
	}
	return t
}

// Init applies options. Connections made before Init are closed once idle.
func (t *HTTPTransport) Init(opts ...Option) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range opts {
		o(&t.opts)
	}
	if t.opts.Secure && t.opts.TLSConfig == nil {
		return errors.New("transport: Secure needs a TLSConfig")
	}
	if t.rt != nil {
		t.rt.CloseIdleConnections()
		t.rt = nil
	}
	return nil
}

// Options returns the transport's options.
func (t *HTTPTransport) Options() Options {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.opts
}

// String returns "http".
func (t *HTTPTransport) String() string { return "http" }

// CloseIdleConnections closes the client connections that carry no call.
func (t *HTTPTransport) CloseIdleConnections() {
	t.mu.RLock()
	rt := t.rt
	t.mu.RUnlock()
	if rt != nil {
		rt.CloseIdleConnections()
	}
	t.mu.RLock()
	p := t.native
	t.mu.RUnlock()
	if p != nil {
		p.closeIdle()
	}
}

func (t *HTTPTransport) logger() logger.Logger {
	if t.opts.Logger != nil {
		return t.opts.Logger
	}
	return logger.DefaultLogger
}

type dialTimeoutKey struct{}

// roundTripper returns the shared HTTP/2 client transport, building it on first use.
func (t *HTTPTransport) roundTripper() (*http.Transport, bool, error) {
	t.mu.RLock()
	rt, secure := t.rt, t.opts.TLSConfig != nil
	t.mu.RUnlock()
	if rt != nil {
		return rt, secure, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rt != nil {
		return t.rt, t.opts.TLSConfig != nil, nil
	}
	if t.opts.Secure && t.opts.TLSConfig == nil {
		return nil, false, errors.New("transport: Secure needs a TLSConfig")
	}
	ping, pingTimeout := t.opts.KeepAliveTime, t.opts.KeepAliveTimeout
	if ping <= 0 {
		ping = DefaultKeepAliveTime
	}
	if pingTimeout <= 0 {
		pingTimeout = DefaultKeepAliveTimeout
	}
	protocols := new(http.Protocols)
	rt = &http.Transport{
		DialContext:         dialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: ping,
			PingTimeout:     pingTimeout,
		},
		Protocols: protocols,
	}
	if t.opts.TLSConfig != nil {
		rt.TLSClientConfig = t.opts.TLSConfig.Clone()
		protocols.SetHTTP2(true)
		protocols.SetHTTP1(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	t.rt = rt
	return rt, t.opts.TLSConfig != nil, nil
}

func dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := DefaultDialTimeout
	if v, ok := ctx.Value(dialTimeoutKey{}).(time.Duration); ok && v > 0 {
		d = v
	}
	dialer := net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}
	return dialer.DialContext(ctx, network, addr)
}

// Dial returns a client Socket to addr. It connects lazily: the first Send opens (or
// reuses) a connection, and a failure to connect is reported by Send as a NotSentError.
func (t *HTTPTransport) Dial(addr string, opts ...DialOption) (Client, error) {
	dopts := DialOptions{Context: context.Background(), Timeout: DefaultDialTimeout}
	for _, o := range opts {
		o(&dopts)
	}
	return t.dial(addr, dopts, false)
}

// DialWith is Dial with the options given as a value, which spares a caller making
// calls at a high rate the option funcs. Zero fields take their defaults. The Socket
// must not be used after Close (the transport may reuse it).
func (t *HTTPTransport) DialWith(addr string, dopts DialOptions) (Client, error) {
	if dopts.Context == nil {
		dopts.Context = context.Background()
	}
	if dopts.Timeout <= 0 {
		dopts.Timeout = DefaultDialTimeout
	}
	return t.dial(addr, dopts, true)
}

func (t *HTTPTransport) dial(addr string, dopts DialOptions, reuse bool) (Client, error) {
	if dopts.MaxMsgSize <= 0 {
		dopts.MaxMsgSize = DefaultLimits().MaxMsgSize
	}
	t.mu.RLock()
	native := t.opts.TLSConfig == nil && !t.opts.NativeOff && !t.opts.Secure
	t.mu.RUnlock()
	if native && !dopts.ConnClose && !dopts.HTTPOnly && !nativeEnvOff() {
		if reuse && !dopts.Stream {
			s := socketPool.Get().(*nativeSocket)
			s.t, s.pool, s.addr, s.opts, s.reuse = t, t.nativePool(), addr, dopts, true
			return s, nil
		}
		return &nativeSocket{t: t, pool: t.nativePool(), addr: addr, opts: dopts, stream: dopts.Stream}, nil
	}
	c, err := t.dialHTTPErr(addr, dopts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// WireMetadata is the registry node metadata key under which a server names the wire
// protocol it speaks beside HTTP; WireNative is micro's native protocol. A client calls a
// registered node without it over HTTP, and one with it over the native protocol.
const (
	WireMetadata = "wire"
	WireNative   = "micro/1"
)

// NativeListen reports whether the transport's listeners serve the native protocol.
func (t *HTTPTransport) NativeListen() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.opts.TLSConfig == nil && !t.opts.NativeOff && !t.opts.Secure
}

// nativePool returns the transport's native client connections.
func (t *HTTPTransport) nativePool() *nativePool {
	t.mu.RLock()
	p := t.native
	t.mu.RUnlock()
	if p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.native == nil {
		t.native = &nativePool{t: t, addrs: make(map[string]*nativeAddr)}
	}
	return t.native
}

// dialHTTP returns an HTTP client Socket to addr, for a server that does not speak the
// native protocol; an error becomes a Socket whose Send reports it.
func (t *HTTPTransport) dialHTTP(addr string, dopts DialOptions) Client {
	c, err := t.dialHTTPErr(addr, dopts)
	if err != nil {
		return errSocket{err}
	}
	return c
}

func (t *HTTPTransport) dialHTTPErr(addr string, dopts DialOptions) (Client, error) {
	rt, secure, err := t.roundTripper()
	if err != nil {
		return nil, err
	}
	if secure && dopts.InsecureSkipVerify {
		// A dedicated transport, so that skipping verification never leaks into other calls.
		rt = rt.Clone()
		rt.TLSClientConfig.InsecureSkipVerify = true
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	if dopts.Stream {
		return newStreamClient(rt, scheme+addr+"/", addr, dopts), nil
	}
	return &httpClientSocket{
		rt:   rt,
		url:  scheme + addr + "/",
		addr: addr,
		opts: dopts,
		ctx:  context.WithValue(dopts.Context, dialTimeoutKey{}, dopts.Timeout),
	}, nil
}

// errSocket is a Socket that fails with err.
type errSocket struct{ err error }

func (s errSocket) Recv(*Message) error { return s.err }
func (s errSocket) Send(*Message) error { return s.err }
func (s errSocket) Close() error        { return nil }
func (s errSocket) Local() string       { return "" }
func (s errSocket) Remote() string      { return "" }

// Listen listens on addr ("host:port"; port 0 picks a free port) and returns a Listener
// whose Accept serves HTTP/1.1 and HTTP/2 until Close or Drain.
func (t *HTTPTransport) Listen(addr string, opts ...ListenOption) (Listener, error) {
	t.mu.RLock()
	topts := t.opts
	t.mu.RUnlock()
	lopts := ListenOptions{Context: context.Background(), Limits: topts.Limits}
	for _, o := range opts {
		o(&lopts)
	}
	if topts.Secure && topts.TLSConfig == nil {
		return nil, errors.New("transport: Secure needs a TLSConfig")
	}
	ln := lopts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("transport: listen on %s: %w", addr, err)
		}
	}
	ln = newLimitListener(ln, lopts.Limits.withDefaults().MaxConns)
	var tlsConf *tls.Config
	switch {
	case lopts.TLSConfig != nil:
		tlsConf = lopts.TLSConfig.Clone()
	case topts.TLSConfig != nil:
		tlsConf = topts.TLSConfig.Clone()
	}
	return newHTTPListener(ln, lopts.Limits.withDefaults(), tlsConf, t.logger(), !topts.NativeOff), nil
}
