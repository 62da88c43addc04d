// Package transport moves messages between a client and a server.
//
// A Transport dials and listens. A Socket is a bidirectional sequence of Messages between
// two peers: on the default HTTP transport one Socket is one call. Its listeners serve,
// on one port, HTTP/1.1 (curl and other HTTP clients), HTTP/2 without TLS, and micro's
// native binary protocol, recognised by the first bytes of a connection. Its clients
// speak the native protocol to servers that answer it (many calls and streams over a few
// connections, compact headers, batched writes) and HTTP/2 to the others. A client sends
// a Message and receives the reply; Send and Recv may repeat on a client Socket, each
// pair being one exchange.
//
// Messages carry headers and a body. Header names starting with ':' are pseudo-headers
// that a transport maps to its own framing instead of sending them as headers: on HTTP,
// ":path" and ":method" describe the request line and ":status" is the response status.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
)

// Transport dials and listens for Sockets. Implementations are safe for concurrent use.
type Transport interface {
	Init(...Option) error
	Options() Options
	Dial(addr string, opts ...DialOption) (Client, error)
	Listen(addr string, opts ...ListenOption) (Listener, error)
	String() string
}

// Message is what a Socket sends and receives: headers and a body.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Socket is a bidirectional sequence of Messages with one peer. Send is done with its
// Message when it returns: it keeps neither the Message nor its Header or Body, which
// the client and server reuse for their next message (a transport that hands messages
// on later must copy them). Recv sets both fields of the Message it is given.
type Socket interface {
	Recv(*Message) error
	Send(*Message) error
	Close() error
	Local() string
	Remote() string
}

// TLSSocket is implemented by sockets of TLS connections. The server Sockets of the HTTP
// transport implement it: ConnectionState returns the state of the connection the call
// arrived on (negotiated protocol, the peer's certificates and, when the listener's
// tls.Config verified them, the verified chains), or nil when the connection is not TLS.
// With mutual TLS (see package auth/ca) it tells a server who is calling.
type TLSSocket interface {
	ConnectionState() *tls.ConnectionState
}

// Client is the dialling side of a Socket.
type Client interface {
	Socket
}

// Listener accepts Sockets. Accept blocks, calling fn for each Socket (concurrently, one
// goroutine per Socket), until Close.
type Listener interface {
	Addr() string
	Close() error
	Accept(func(Socket)) error
}

// Drainer is implemented by listeners that can stop gracefully: Drain stops accepting new
// Sockets at once, waits until every Socket being served has been handled or ctx is done,
// then closes everything that is left. It returns ctx.Err() when it had to cut Sockets off.
type Drainer interface {
	Drain(ctx context.Context) error
}

// NotSentError is a Send (or Dial) failure that happened before any part of the message
// left this process, such as a refused connection. A message that failed this way can be
// sent to another peer without any risk that the first one acted on it.
type NotSentError struct {
	Err error
}

// Error returns the text of the underlying error.
func (e *NotSentError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *NotSentError) Unwrap() error { return e.Err }

// IsNotSent reports whether err says that a message was never sent (see NotSentError).
func IsNotSent(err error) bool {
	if err == nil {
		return false
	}
	var ns *NotSentError
	return errors.As(err, &ns)
}

// ConnLostError is a failure after a message was sent: the connection broke before the
// reply came, so the peer may or may not have acted on it. A caller may not resend the
// message unless acting twice is harmless, but it learns that the peer is unreachable.
type ConnLostError struct {
	Err error
}

// Error returns the text of the underlying error.
func (e *ConnLostError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConnLostError) Unwrap() error { return e.Err }

// IsConnLost reports whether err says that a connection broke after a message was sent
// (see ConnLostError).
func IsConnLost(err error) bool {
	if err == nil {
		return false
	}
	var cl *ConnLostError
	return errors.As(err, &cl)
}

var (
	// ErrClosed is returned by operations on a closed Socket or Listener.
	ErrClosed = errors.New("transport: closed")
)
