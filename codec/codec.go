// Package codec defines how message bodies are encoded, chosen by Content-Type.
//
// A Marshaler turns a Go value into bytes and back; it is what the RPC client and server
// use on the hot path. A Codec is Go Micro's streaming form of the same thing, reading and
// writing Messages over an io.ReadWriteCloser; every codec package in this tree offers
// both (NewCodec and Marshaler). The built-in content types are:
//
//	application/json                      codec/json
//	application/protobuf, application/x-protobuf   codec/proto
//	application/octet-stream              codec/bytes
//	text/plain                            codec/text
package codec

import (
	"errors"
	"io"
)

// MessageType says what a Message is.
type MessageType int

// The message types, with Go Micro's values.
const (
	Error MessageType = iota
	Request
	Response
	Event
)

// ErrInvalidMessage is returned when a message cannot be encoded or decoded.
var ErrInvalidMessage = errors.New("invalid message")

// NewCodec makes a Codec over a connection or buffer.
type NewCodec func(io.ReadWriteCloser) Codec

// Codec encodes and decodes Messages over a stream. ReadHeader and ReadBody are called in
// pairs; ReadBody(nil) discards the body.
type Codec interface {
	Reader
	Writer
	Close() error
	String() string
}

// Reader reads a message's header, then its body.
type Reader interface {
	ReadHeader(*Message, MessageType) error
	ReadBody(interface{}) error
}

// Writer writes a message with the given body.
type Writer interface {
	Write(*Message, interface{}) error
}

// Marshaler encodes and decodes values. Implementations are safe for concurrent use.
type Marshaler interface {
	Marshal(interface{}) ([]byte, error)
	Unmarshal([]byte, interface{}) error
	String() string
}

// Message is a message's envelope as a Codec sees it.
type Message struct {
	Header   map[string]string
	Id       string
	Target   string
	Method   string
	Endpoint string
	Error    string

	// Body is the raw body, filled by codecs that read it whole.
	Body []byte
	Type MessageType
}
