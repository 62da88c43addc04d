package ca_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/seed-b3892490/micro/auth/ca"
)

// Two services get identities from one CA and shake hands with mutual TLS: each side
// verifies the other against the CA, and the server learns which service is calling.
// With the HTTP transport, the same configurations go to transport.TLSConfig.
func Example() {
	authority, err := ca.New("example root")
	if err != nil {
		panic(err)
	}
	billing, err := authority.NewIdentity("billing", ca.TTL(time.Hour))
	if err != nil {
		panic(err)
	}
	greeter, err := authority.NewIdentity("greeter")
	if err != nil {
		panic(err)
	}
	name, _ := ca.ServiceName(greeter.Current().Leaf)
	fmt.Println("greeter's certificate names", name)

	clientConn, serverConn := net.Pipe()
	defer clientConn.Close()
	defer serverConn.Close()
	caller := make(chan string, 1)
	go func() {
		srv := tls.Server(serverConn, greeter.ServerTLSConfig())
		if err := srv.Handshake(); err != nil {
			caller <- "refused: " + err.Error()
			return
		}
		state := srv.ConnectionState()
		service, _ := ca.PeerService(&state)
		caller <- service
		_, _ = srv.Write([]byte("hi"))
	}()
	cli := tls.Client(clientConn, billing.ClientTLSConfig(ca.ExpectService("greeter")))
	if err := cli.Handshake(); err != nil {
		panic(err)
	}
	if _, err := cli.Read(make([]byte, 2)); err != nil {
		panic(err)
	}
	fmt.Println("greeter was called by", <-caller)
	// Output:
	// greeter's certificate names greeter
	// greeter was called by billing
}
