package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	stderrors "errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
)

// observing is a transport whose listeners report every Socket to onSocket before the
// server serves it: the server does not pass sockets to handlers, so this is where a test
// sees the TLS state of each call.
type observing struct {
	transport.Transport
	onSocket func(transport.Socket)
}

func (o *observing) Listen(addr string, opts ...transport.ListenOption) (transport.Listener, error) {
	l, err := o.Transport.Listen(addr, opts...)
	if err != nil {
		return nil, err
	}
	return &observingListener{Listener: l, on: o.onSocket}, nil
}

type observingListener struct {
	transport.Listener
	on func(transport.Socket)
}

func (l *observingListener) Accept(fn func(transport.Socket)) error {
	return l.Listener.Accept(func(s transport.Socket) {
		l.on(s)
		fn(s)
	})
}

func (l *observingListener) Drain(ctx context.Context) error {
	if d, ok := l.Listener.(transport.Drainer); ok {
		return d.Drain(ctx)
	}
	return l.Listener.Close()
}

// peers records the TLS state of the calls a server received.
type peers struct {
	mu       sync.Mutex
	services []string // PeerService of each call ("?" when it reported false)
	protos   []string // negotiated protocol of each call
	serials  map[string]bool
}

func (p *peers) observe(s transport.Socket) {
	ts, ok := s.(transport.TLSSocket)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok || ts.ConnectionState() == nil {
		p.services = append(p.services, "no TLS")
		return
	}
	cs := ts.ConnectionState()
	name, ok := ca.PeerService(cs)
	if !ok {
		name = "?"
	}
	p.services = append(p.services, name)
	p.protos = append(p.protos, cs.NegotiatedProtocol)
	if p.serials == nil {
		p.serials = map[string]bool{}
	}
	p.serials[cs.PeerCertificates[0].SerialNumber.String()] = true
}

func (p *peers) snapshot() (services, protos []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.services...), append([]string(nil), p.protos...)
}

func (p *peers) sawSerial(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serials[s]
}

// mtlsServer starts the server svc-b of testutil.Greeter and testutil.Streamer on an
// HTTP transport listening with cfg, registered in reg; the transport's log is captured.
func mtlsServer(t testing.TB, reg registry.Registry, cfg *tls.Config, p *peers) (*testutil.Greeter, *testutil.SyncBuffer) {
	t.Helper()
	g := new(testutil.Greeter)
	logs := new(testutil.SyncBuffer)
	tr := &observing{Transport: transport.NewHTTPTransport(transport.TLSConfig(cfg), transport.Logger(logger.NewLogger(logger.WithOutput(logs)))), onSocket: p.observe}
	srv := testutil.NewServer(t, reg, "svc-b", g, server.Transport(tr))
	if err := srv.Handle(srv.NewHandler(new(testutil.Streamer))); err != nil {
		t.Fatal(err)
	}
	return g, logs
}

// mtlsClient returns a client on its own HTTP transport dialling with cfg.
func mtlsClient(t testing.TB, reg registry.Registry, cfg *tls.Config, opts ...client.Option) (client.Client, *transport.HTTPTransport) {
	t.Helper()
	tr := transport.NewHTTPTransport(transport.TLSConfig(cfg))
	c := testutil.NewClient(t, reg, append([]client.Option{client.Transport(tr)}, opts...)...)
	t.Cleanup(tr.CloseIdleConnections)
	return c, tr
}

func hello(c client.Client, name string) (string, error) {
	var rsp testproto.Response
	err := c.Call(context.Background(), c.NewRequest("svc-b", "Greeter.Hello", &testproto.Request{Name: name}), &rsp)
	return rsp.Message, err
}

// Acceptance 4: svc-a calls svc-b over mutual TLS, a unary call and a stream, over
// HTTP/2 negotiated by ALPN, and svc-b learns from the connection that svc-a is calling.
func TestMTLSCallBetweenServices(t *testing.T) {
	authority := newCA(t)
	svcA, svcB := newIdentity(t, authority, "svc-a"), newIdentity(t, authority, "svc-b")
	reg := registry.NewMemoryRegistry()
	var p peers
	g, logs := mtlsServer(t, reg, svcB.ServerTLSConfig(), &p)
	c, _ := mtlsClient(t, reg, svcA.ClientTLSConfig(ca.ExpectService("svc-b")))

	for i := 0; i < 20; i++ { // pooled: the later calls reuse the connection
		if msg, err := hello(c, "a"); err != nil || msg != "Hello a" {
			t.Fatalf("call %d: %q, %v", i, msg, err)
		}
	}
	st, err := c.Stream(context.Background(), c.NewRequest("svc-b", "Streamer.Echo", &testproto.Echo{}, client.WithContentType("application/protobuf")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 1; i <= 50; i++ {
		if err := st.Send(&testproto.Echo{Seq: int64(i)}); err != nil {
			t.Fatal(err)
		}
		var m testproto.Echo
		if err := st.Recv(&m); err != nil || m.Seq != int64(i) {
			t.Fatalf("stream message %d: %d, %v", i, m.Seq, err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(new(testproto.Echo)); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
	if g.Calls.Load() != 20 {
		t.Fatalf("handler ran %d times, want 20", g.Calls.Load())
	}
	services, protos := p.snapshot()
	if len(services) != 21 {
		t.Fatalf("%d sockets observed, want 21 (20 calls and a stream)", len(services))
	}
	for i := range services {
		if services[i] != "svc-a" || protos[i] != "h2" {
			t.Fatalf("call %d: peer %q over %q, want svc-a over h2", i, services[i], protos[i])
		}
	}

	// a caller without a certificate of the CA does not get through (the error it sees
	// may not say why: see TestG4HandshakeRefused; the server's log does)
	noCert := svcA.ClientTLSConfig()
	noCert.GetClientCertificate = nil
	bad, _ := mtlsClient(t, reg, noCert, client.Retries(0))
	if _, err := hello(bad, "intruder"); err == nil {
		t.Fatal("a call without a client certificate succeeded")
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(logs.String(), "client didn't provide a certificate")
	}, "the server logs the refused handshake")
	if g.Calls.Load() != 20 {
		t.Fatal("the handler ran for a caller without a certificate")
	}
}

// The HTTP transport on its own: unary and stream sockets over TLS expose the peer, many
// calls share few pooled connections, and HTTP/1.1 clients negotiate http/1.1 by ALPN.
func TestMTLSTransportSockets(t *testing.T) {
	authority := newCA(t)
	svcA, svcB := newIdentity(t, authority, "svc-a"), newIdentity(t, authority, "svc-b")
	var handshakes atomic.Int64
	srvCfg := svcB.ServerTLSConfig()
	getCert := srvCfg.GetCertificate
	srvCfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		handshakes.Add(1)
		return getCert(h)
	}
	ln, err := transport.NewHTTPTransport(transport.TLSConfig(srvCfg)).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p peers
	done := make(chan error, 1)
	go func() {
		done <- ln.Accept(func(s transport.Socket) {
			p.observe(s)
			var first transport.Message
			if err := s.Recv(&first); err != nil {
				return
			}
			if first.Header[transport.StreamHeader] == "" { // unary: one reply
				_ = s.Send(&transport.Message{Body: first.Body})
				return
			}
			for i := 0; i < 100; i++ { // a stream: echo every frame
				var m transport.Message
				if err := s.Recv(&m); err != nil {
					return
				}
				if err := s.Send(&transport.Message{Body: m.Body}); err != nil {
					return
				}
			}
		})
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})

	tr := transport.NewHTTPTransport(transport.TLSConfig(svcA.ClientTLSConfig()))
	defer tr.CloseIdleConnections()
	const calls = 200
	unary := func() error {
		sock, err := tr.Dial(ln.Addr())
		if err != nil {
			return err
		}
		defer sock.Close()
		if err := sock.Send(&transport.Message{Body: []byte("ping")}); err != nil {
			return err
		}
		var m transport.Message
		if err := sock.Recv(&m); err != nil || string(m.Body) != "ping" {
			return stderrors.New("unary reply " + string(m.Body) + ": " + errString(err))
		}
		return nil
	}
	if err := unary(); err != nil { // the connection the others share
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := unary(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Fatalf("%d calls made %d TLS handshakes: connections are not pooled", calls, n)
	}

	st, err := tr.Dial(ln.Addr(), transport.WithStream())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&transport.Message{Header: map[string]string{}, Body: []byte("s0")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var m transport.Message
		if err := st.Recv(&m); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "s0", false: "s"}[i == 0]; string(m.Body) != want {
			t.Fatalf("stream reply %d: %q, want %q", i, m.Body, want)
		}
		if i < 2 {
			if err := st.Send(&transport.Message{Body: []byte("s")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	services, protos := p.snapshot()
	if len(services) != calls+2 {
		t.Fatalf("%d sockets observed, want %d", len(services), calls+2)
	}
	for i := range services {
		if services[i] != "svc-a" || protos[i] != "h2" {
			t.Fatalf("socket %d: peer %q over %q", i, services[i], protos[i])
		}
	}

	// an HTTP/1.1-only client (as curl --http1.1 with the certificate)
	h1 := svcA.ClientTLSConfig()
	h1.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", ln.Addr(), h1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nh1"); err != nil {
		t.Fatal(err)
	}
	rsp, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rsp), "HTTP/1.1 200") || !strings.HasSuffix(string(rsp), "h1") {
		t.Fatalf("HTTP/1.1 reply: %q", rsp)
	}
	services, protos = p.snapshot()
	if last := len(services) - 1; services[last] != "svc-a" || protos[last] != "http/1.1" {
		t.Fatalf("HTTP/1.1 socket: peer %q over %q", services[last], protos[last])
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// rawCert signs a certificate for the test: by parent (self-signed when parent is nil).
func rawCert(t testing.TB, parent *x509.Certificate, parentKey any, uris []string, usage []x509.ExtKeyUsage) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "svc-a"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  usage,
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func caKey(t testing.TB, c *ca.CA) any {
	t.Helper()
	p, err := c.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(p)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func presenting(cfg *tls.Config, cert *tls.Certificate) *tls.Config {
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	return cfg
}

// rawServer serves a transport listener with cfg whose every call is answered "ok",
// counting the calls; the listener's log (where refused handshakes are reported) is
// captured.
func rawServer(t testing.TB, cfg *tls.Config) (string, *atomic.Int64, *testutil.SyncBuffer) {
	t.Helper()
	logs := new(testutil.SyncBuffer)
	tr := transport.NewHTTPTransport(transport.TLSConfig(cfg), transport.Logger(logger.NewLogger(logger.WithOutput(logs))))
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- ln.Accept(func(s transport.Socket) {
			served.Add(1)
			var m transport.Message
			_ = s.Recv(&m)
			_ = s.Send(&transport.Message{Body: []byte("ok")})
		})
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr(), &served, logs
}

// call makes one unary call to addr over an HTTP transport dialling with cfg.
func call(addr string, cfg *tls.Config, opts ...transport.DialOption) error {
	tr := transport.NewHTTPTransport(transport.TLSConfig(cfg))
	defer tr.CloseIdleConnections()
	sock, err := tr.Dial(addr, opts...)
	if err != nil {
		return err
	}
	defer sock.Close()
	if err := sock.Send(&transport.Message{Body: []byte("x")}); err != nil {
		return err
	}
	var m transport.Message
	if err := sock.Recv(&m); err != nil {
		return err
	}
	if string(m.Body) != "ok" {
		return stderrors.New("reply " + string(m.Body))
	}
	return nil
}

// remoteAlert reports whether err is a TLS alert sent by the peer naming want.
func remoteAlert(err error, want string) bool {
	var op *net.OpError
	return stderrors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "tls: "+want)
}

// Battery G4: the handshake refuses every peer that is not a current certificate of the
// CA naming a service, on both sides, and before any request reaches a handler.
func TestG4HandshakeRefused(t *testing.T) {
	authority, other := newCA(t), newCA(t)
	svcA, svcB := newIdentity(t, authority, "svc-a"), newIdentity(t, authority, "svc-b")
	addr, served, _ := rawServer(t, svcB.ServerTLSConfig())
	if err := call(addr, svcA.ClientTLSConfig()); err != nil {
		t.Fatalf("the right client is refused: %v", err)
	}
	if served.Load() != 1 {
		t.Fatalf("served %d calls, want 1", served.Load())
	}

	expired, err := authority.Issue("svc-a", time.Hour, ca.ValidityWindow(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	fromOther, err := other.Issue("svc-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	noClientCert := svcA.ClientTLSConfig()
	noClientCert.GetClientCertificate = nil
	clients := []struct {
		name string
		cfg  *tls.Config
		// what the server logs, the alert it sends under TLS 1.3 and under TLS 1.2
		reason, alert, alert12 string
	}{
		{"no client certificate", noClientCert, "client didn't provide a certificate", "certificate required", "handshake failure"},
		{"self-signed with a micro:// SAN", presenting(svcA.ClientTLSConfig(), rawCert(t, nil, nil, []string{"micro://svc-a"}, clientAuth)), "certificate signed by unknown authority", "unknown certificate authority", ""},
		{"another CA", presenting(svcA.ClientTLSConfig(), fromOther), "certificate signed by unknown authority", "unknown certificate authority", ""},
		{"expired, right CA", presenting(svcA.ClientTLSConfig(), expired), "certificate has expired", "expired certificate", ""},
		{"right CA, no micro:// SAN", presenting(svcA.ClientTLSConfig(), rawCert(t, authority.Certificate(), caKey(t, authority), []string{"spiffe://x/svc-a"}, clientAuth)), "names no service", "bad certificate", ""},
		{"right CA, server auth only", presenting(svcA.ClientTLSConfig(), rawCert(t, authority.Certificate(), caKey(t, authority), []string{"micro://svc-a"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})), "incompatible key usage", "bad certificate", ""},
	}
	for _, tc := range clients {
		t.Run("server refuses/"+tc.name, func(t *testing.T) {
			addr, served, logs := rawServer(t, svcB.ServerTLSConfig())
			// Under TLS 1.3 the client finishes its handshake before the server checks
			// the client's certificate: the call fails on the server's alert, or, when
			// the connection is gone before HTTP/2 could use it, with an error that no
			// longer names it. The server's log says why it refused.
			err := call(addr, tc.cfg)
			if err == nil {
				t.Fatal("the call succeeded")
			}
			testutil.Eventually(t, 5*time.Second, func() bool {
				return strings.Contains(logs.String(), "TLS handshake error") && strings.Contains(logs.String(), tc.reason)
			}, "the server logs the refusal: "+tc.reason)
			// TLS 1.3 on a plain connection: the alert is the next thing read
			conn, err := tls.Dial("tcp", addr, tc.cfg)
			if err != nil {
				t.Fatalf("TLS 1.3 client handshake: %v", err)
			}
			_, err = conn.Read(make([]byte, 1))
			_ = conn.Close()
			if !remoteAlert(err, tc.alert) {
				t.Fatalf("TLS 1.3: want the alert %q, got %v", tc.alert, err)
			}
			// under TLS 1.2 the server decides before the client's handshake ends
			alert12 := tc.alert12
			if alert12 == "" {
				alert12 = tc.alert
			}
			cfg12 := tc.cfg.Clone()
			cfg12.MaxVersion = tls.VersionTLS12
			if err := call(addr, cfg12); !remoteAlert(err, alert12) {
				t.Fatalf("TLS 1.2: want the alert %q, got %v", alert12, err)
			}
			if served.Load() != 0 {
				t.Fatalf("the handler ran %d times", served.Load())
			}
		})
	}

	// the client refuses servers that are not the CA's services
	mitmID := newIdentity(t, other, "svc-b")
	expiredServer, err := authority.Issue("svc-b", time.Hour, ca.ValidityWindow(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	withCert := func(cert *tls.Certificate) *tls.Config {
		cfg := svcB.ServerTLSConfig()
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
		return cfg
	}
	mitmAddr, mitmServed, _ := rawServer(t, mitmID.ServerTLSConfig())
	expiredAddr, expiredServed, _ := rawServer(t, withCert(expiredServer))
	unnamedAddr, unnamedServed, _ := rawServer(t, withCert(rawCert(t, authority.Certificate(), caKey(t, authority), nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})))
	servers := []struct {
		name string
		addr string
		cfg  *tls.Config
		opts []transport.DialOption
		want func(error) bool
	}{
		{"unknown CA (MITM)", mitmAddr, svcA.ClientTLSConfig(), nil, isUnknownAuthority},
		{"unknown CA, even with WithInsecureSkipVerify", mitmAddr, svcA.ClientTLSConfig(), []transport.DialOption{transport.WithInsecureSkipVerify(true)}, isUnknownAuthority},
		{"expired, right CA", expiredAddr, svcA.ClientTLSConfig(), nil, func(err error) bool {
			var inv x509.CertificateInvalidError
			return stderrors.As(err, &inv) && inv.Reason == x509.Expired
		}},
		{"right CA, no micro:// SAN", unnamedAddr, svcA.ClientTLSConfig(), nil, verificationError("names no service")},
		{"not the expected service", addr, svcA.ClientTLSConfig(ca.ExpectService("svc-c")), nil, verificationError(`not the expected "svc-c"`)},
		// the zero configuration verifies against the system roots and the hostname
		{"zero tls.Config", addr, &tls.Config{}, nil, verificationError("x509: ")},
		{"tls.Config with the CA pool, by IP", addr, presenting(&tls.Config{RootCAs: authority.Pool()}, svcA.Current()), nil, func(err error) bool {
			var host x509.HostnameError
			return stderrors.As(err, &host)
		}},
	}
	for _, tc := range servers {
		t.Run("client refuses/"+tc.name, func(t *testing.T) {
			if err := call(tc.addr, tc.cfg, tc.opts...); !tc.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if n := served.Load() + mitmServed.Load() + expiredServed.Load() + unnamedServed.Load(); n != 1 {
		t.Fatalf("handlers ran %d times, want only the first call's", n)
	}
}

func isUnknownAuthority(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	return stderrors.As(err, &cv) && stderrors.As(err, &ua)
}

func verificationError(text string) func(error) bool {
	return func(err error) bool {
		var cv *tls.CertificateVerificationError
		return stderrors.As(err, &cv) && strings.Contains(err.Error(), text)
	}
}

// Battery G4, HTTP broker: brokers with the identities' configurations deliver to each
// other; a publisher without a client certificate or trusting other roots is refused.
func TestG4BrokerMTLS(t *testing.T) {
	authority := newCA(t)
	svcA, svcB := newIdentity(t, authority, "svc-a"), newIdentity(t, authority, "svc-b")
	reg := registry.NewMemoryRegistry()
	connect := func(cfg *tls.Config) broker.Broker {
		b := broker.NewHttpBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"), broker.TLSConfig(cfg))
		if err := b.Connect(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Disconnect() })
		return b
	}
	sub := connect(svcB.PeerTLSConfig())
	var got atomic.Int64
	if _, err := sub.Subscribe("g4", func(e broker.Event) error {
		got.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pub := connect(svcA.PeerTLSConfig())
	for i := 0; i < 5; i++ {
		if err := pub.Publish("g4", &broker.Message{Body: []byte("hi")}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if got.Load() != 5 {
		t.Fatalf("delivered %d of 5", got.Load())
	}

	// Without a client certificate: under TLS 1.3 the request follows the client's half
	// of the handshake and fails on the server's alert; under TLS 1.2 the handshake
	// itself fails.
	noCert := svcA.PeerTLSConfig()
	noCert.GetClientCertificate = nil
	if err := connect(noCert).Publish("g4", &broker.Message{Body: []byte("no")}); err == nil {
		t.Fatal("a publisher without a client certificate got through")
	} else {
		t.Logf("publish without a client certificate, TLS 1.3: %v", err)
	}
	noCert12 := noCert.Clone()
	noCert12.MaxVersion = tls.VersionTLS12
	if err := connect(noCert12).Publish("g4", &broker.Message{Body: []byte("no")}); err == nil || !strings.Contains(err.Error(), "remote error: tls: handshake failure") {
		t.Fatalf("publish without a client certificate, TLS 1.2: %v", err)
	}
	if err := connect(&tls.Config{}).Publish("g4", &broker.Message{Body: []byte("no")}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("publish with the zero tls.Config: %v", err)
	}
	if got.Load() != 5 {
		t.Fatalf("the subscriber's handler ran for refused publishers: %d deliveries", got.Load())
	}
}

// Identities with 2 s certificates rotate them under load: 8 callers, no failed call,
// and new connections present the new certificates, on both sides.
func TestRotationWithoutFailedCalls(t *testing.T) {
	const (
		ttl      = 2 * time.Second
		duration = 5 * time.Second
		callers  = 8
	)
	authority := newCA(t)
	svcA := newIdentity(t, authority, "svc-a", ca.TTL(ttl))
	svcB := newIdentity(t, authority, "svc-b", ca.TTL(ttl))
	reg := registry.NewMemoryRegistry()

	var handshakes atomic.Int64
	var servedMu sync.Mutex
	servedSerials := map[string]bool{} // server certificates presented
	srvCfg := svcB.ServerTLSConfig()
	getCert := srvCfg.GetCertificate
	srvCfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := getCert(h)
		if err == nil {
			handshakes.Add(1)
			servedMu.Lock()
			servedSerials[c.Leaf.SerialNumber.String()] = true
			servedMu.Unlock()
		}
		return c, err
	}
	var p peers // client certificates the server saw, per call
	_, logs := mtlsServer(t, reg, srvCfg, &p)

	var (
		mu            sync.Mutex
		currentA      = map[string]bool{} // serials Current() returned
		currentB      = map[string]bool{}
		clientSawB    = map[string]bool{} // server certificates the clients verified
		calls, failed atomic.Int64
		firstErr      atomic.Value
	)
	// Certificates record whole seconds, so a 2 s TTL gives lifetimes of 2 to 3 s and
	// renewals every 1.3 to 2 s: two rotations by 4 s. The calls go on for duration, and
	// at most 3 s more should a slow machine not have rotated twice by then.
	deadline, hardDeadline := time.Now().Add(duration), time.Now().Add(duration+3*time.Second)
	more := func() bool {
		now := time.Now()
		if now.Before(deadline) {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		return now.Before(hardDeadline) && (len(currentA) < 3 || len(currentB) < 3)
	}
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		cfg := svcA.ClientTLSConfig(ca.ExpectService("svc-b"))
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			err := verify(cs)
			if err == nil {
				mu.Lock()
				clientSawB[cs.PeerCertificates[0].SerialNumber.String()] = true
				mu.Unlock()
			}
			return err
		}
		c, tr := mtlsClient(t, reg, cfg, client.Retries(0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 1_000_000 && more(); n++ {
				calls.Add(1)
				if msg, err := hello(c, "r"); err != nil || msg != "Hello r" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, errString(err))
				}
				mu.Lock()
				currentA[svcA.Current().Leaf.SerialNumber.String()] = true
				currentB[svcB.Current().Leaf.SerialNumber.String()] = true
				mu.Unlock()
				if n%5 == 4 {
					// this caller's connection is idle between its calls: the next call
					// makes a new connection, with a new handshake
					tr.CloseIdleConnections()
				}
			}
		}()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d calls, %d failed, %d handshakes; svc-a used %d certificates, svc-b %d", calls.Load(), failed.Load(), handshakes.Load(), len(currentA), len(currentB))
	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed, the first with %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	if len(currentA) < 3 || len(currentB) < 3 {
		t.Fatalf("svc-a had %d certificates, svc-b %d: want 2 rotations at least", len(currentA), len(currentB))
	}
	servedMu.Lock()
	defer servedMu.Unlock()
	for serial := range currentA {
		if !p.sawSerial(serial) {
			t.Errorf("no call arrived with svc-a's certificate %s", serial)
		}
	}
	for serial := range currentB {
		if !servedSerials[serial] || !clientSawB[serial] {
			t.Errorf("svc-b's certificate %s: presented %v, verified by a client %v", serial, servedSerials[serial], clientSawB[serial])
		}
	}
	services, _ := p.snapshot()
	for _, s := range services {
		if s != "svc-a" {
			t.Fatalf("a call came from %q", s)
		}
	}
	if strings.Contains(logs.String(), "TLS handshake error") {
		t.Fatalf("the server refused handshakes:\n%s", logs.String())
	}
}

func BenchmarkIssue(b *testing.B) {
	authority := newCA(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := authority.Issue("svc-a", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake measures one mutual TLS handshake between two identities, both
// sides verifying, over an in-memory connection.
func BenchmarkHandshake(b *testing.B) {
	authority := newCA(b)
	cli := newIdentity(b, authority, "svc-a").ClientTLSConfig(ca.ExpectService("svc-b"))
	srv := newIdentity(b, authority, "svc-b").ServerTLSConfig()
	b.ReportAllocs()
	for b.Loop() {
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() {
			s := tls.Server(c2, srv)
			err := s.Handshake()
			if err == nil {
				if _, ok := ca.PeerService(ptr(s.ConnectionState())); !ok {
					err = stderrors.New("no peer service")
				}
			}
			if err == nil {
				_, err = s.Write([]byte{1}) // the client reads it once the server verified it
			}
			_ = c2.Close() // not s.Close: its close_notify would wait for a reader
			done <- err
		}()
		c := tls.Client(c1, cli)
		err := c.Handshake()
		if err == nil {
			_, err = io.ReadFull(c, make([]byte, 1))
		}
		_ = c1.Close()
		if serr := <-done; serr != nil || err != nil {
			b.Fatal(serr, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
