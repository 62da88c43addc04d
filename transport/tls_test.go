package transport_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/transport"
)

// stateServer serves l, answering every call (unary, or the first frame of a stream)
// with the peer service and protocol its Socket's ConnectionState names.
func stateServer(t *testing.T, l transport.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Accept(func(s transport.Socket) {
			answer := "no TLSSocket"
			if ts, ok := s.(transport.TLSSocket); ok {
				answer = "plain"
				if cs := ts.ConnectionState(); cs != nil {
					name, _ := ca.PeerService(cs)
					answer = name + " over " + cs.NegotiatedProtocol
				}
			}
			var m transport.Message
			if err := s.Recv(&m); err != nil {
				return
			}
			if m.Header[transport.StreamHeader] != "" {
				if err := s.Recv(&m); err != nil { // the opening frame
					return
				}
			}
			_ = s.Send(&transport.Message{Header: map[string]string{}, Body: []byte(answer)})
		})
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
}

func askState(t *testing.T, tr transport.Transport, addr string, opts ...transport.DialOption) string {
	t.Helper()
	c, err := tr.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&transport.Message{Header: map[string]string{}, Body: []byte("?")}); err != nil {
		t.Fatal(err)
	}
	var m transport.Message
	if err := c.Recv(&m); err != nil {
		t.Fatal(err)
	}
	return string(m.Body)
}

// Server Sockets, unary and stream, expose the TLS state of their connection, and nil
// without TLS.
func TestTLSSocketConnectionState(t *testing.T) {
	plain := transport.NewHTTPTransport()
	defer plain.CloseIdleConnections()
	pl, err := plain.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stateServer(t, pl)
	for _, opts := range [][]transport.DialOption{nil, {transport.WithStream()}} {
		if got := askState(t, plain, pl.Addr(), opts...); got != "plain" {
			t.Fatalf("plain connection: %q", got)
		}
	}

	authority, err := ca.New("transport test root")
	if err != nil {
		t.Fatal(err)
	}
	server, err := authority.NewIdentity("server")
	if err != nil {
		t.Fatal(err)
	}
	caller, err := authority.NewIdentity("caller")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := transport.NewHTTPTransport(transport.TLSConfig(server.ServerTLSConfig())).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stateServer(t, tl)
	secure := transport.NewHTTPTransport(transport.Secure(true), transport.TLSConfig(caller.ClientTLSConfig(ca.ExpectService("server"))))
	defer secure.CloseIdleConnections()
	for _, opts := range [][]transport.DialOption{nil, {transport.WithStream()}} {
		if got := askState(t, secure, tl.Addr(), opts...); got != "caller over h2" {
			t.Fatalf("mutual TLS: %q", got)
		}
	}
}

// A listener reports the handshakes it refused through the transport's logger.
func TestRefusedHandshakeLogged(t *testing.T) {
	authority, err := ca.New("transport test root")
	if err != nil {
		t.Fatal(err)
	}
	server, err := authority.NewIdentity("server")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(testutil.SyncBuffer)
	tl, err := transport.NewHTTPTransport(transport.TLSConfig(server.ServerTLSConfig()), transport.Logger(logger.NewLogger(logger.WithOutput(logs)))).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stateServer(t, tl)
	caller, err := authority.NewIdentity("caller")
	if err != nil {
		t.Fatal(err)
	}
	noCert := caller.ClientTLSConfig()
	noCert.GetClientCertificate = nil
	conn, err := tls.Dial("tcp", tl.Addr(), noCert)
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
		_ = conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got through")
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		s := logs.String()
		return strings.Contains(s, "level=WARN") && strings.Contains(s, "TLS handshake error") && strings.Contains(s, "didn't provide a certificate")
	}, "the refused handshake is logged as a warning")
}
