// Package proto is the application/protobuf codec: values must be protocol buffer
// messages (or *Message, a raw passthrough). Generated proto3 messages whose fields are
// all singular scalars are encoded and decoded straight from their fields, with the
// same bytes and values as google.golang.org/protobuf/proto, which does everything else.
package proto

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/internal/fastproto"
	"github.com/seed-b3892490/micro/internal/wholebody"
)

// Message is a raw, already encoded body that passes through the proto and json codecs
// unchanged.
type Message struct {
	Data []byte
}

// NewMessage returns a Message holding data.
func NewMessage(data []byte) *Message { return &Message{Data: data} }

// MarshalJSON returns the raw data, which must be JSON when used with the json codec.
func (m *Message) MarshalJSON() ([]byte, error) { return m.Data, nil }

// UnmarshalJSON stores a copy of the raw data.
func (m *Message) UnmarshalJSON(data []byte) error {
	m.Data = append([]byte(nil), data...)
	return nil
}

// Marshaler encodes protocol buffer messages. It is safe for concurrent use.
type Marshaler struct{}

// Marshal encodes v, a proto.Message or *Message.
func (Marshaler) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *Message:
		return m.Data, nil
	case proto.Message:
		if b, ok := fastproto.Append(nil, m); ok {
			if b == nil {
				b = []byte{} // proto.Marshal's empty message: empty, not nil
			}
			return b, nil
		}
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("proto: cannot encode %T: not a protocol buffer message", v)
}

// Unmarshal decodes data into v, a proto.Message or *Message.
func (Marshaler) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case *Message:
		m.Data = append([]byte(nil), data...)
		return nil
	case proto.Message:
		// proto.Unmarshal resets m through its reflection view, which costs more than
		// decoding a small message; resetting it directly, then merging, is the same.
		if fastproto.Decode(data, m) {
			return nil // a message of scalar fields, decoded as proto would
		}
		proto.Reset(m)
		return mergeOpts.Unmarshal(data, m)
	}
	return fmt.Errorf("proto: cannot decode into %T: not a protocol buffer message", v)
}

// mergeOpts decodes into a message already reset, with proto.Unmarshal's defaults.
var mergeOpts = proto.UnmarshalOptions{Merge: true, RecursionLimit: protowire.DefaultRecursionLimit}

// String returns "proto".
func (Marshaler) String() string { return "proto" }

// Codec reads and writes one protocol buffer message per stream: the body is everything
// up to the end of the connection.
type Codec struct {
	Conn io.ReadWriteCloser
}

// NewCodec returns a proto Codec over c.
func NewCodec(c io.ReadWriteCloser) codec.Codec { return &Codec{Conn: c} }

// ReadHeader does nothing: headers travel beside the body.
func (c *Codec) ReadHeader(m *codec.Message, t codec.MessageType) error { return nil }

// ReadBody reads the rest of the connection and decodes it into b (nil discards).
func (c *Codec) ReadBody(b interface{}) error { return wholebody.ReadBody(c.Conn, Marshaler{}, b) }

// Write encodes b and writes it.
func (c *Codec) Write(m *codec.Message, b interface{}) error {
	return wholebody.Write(c.Conn, Marshaler{}, b)
}

// Close closes the connection.
func (c *Codec) Close() error { return c.Conn.Close() }

// String returns "proto".
func (c *Codec) String() string { return "proto" }
