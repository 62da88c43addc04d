// Package json is the application/json codec: protocol buffer messages are encoded with
// protojson, every other value with encoding/json. Structs whose fields are all strings,
// booleans and numbers skip encoding/json's reflection walk and get the same bytes and
// values from a plan made once per type.
package json

import (
	"encoding/json"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/internal/fastjson"
)

var (
	marshalOpts   = protojson.MarshalOptions{}
	unmarshalOpts = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// Marshaler encodes values as JSON. It is stateless and safe for concurrent use.
type Marshaler struct{}

// Marshal returns the JSON encoding of v, without a trailing newline.
func (Marshaler) Marshal(v interface{}) ([]byte, error) {
	if pb, ok := v.(proto.Message); ok {
		return marshalOpts.Marshal(pb)
	}
	if b, ok := fastjson.Append(nil, v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes JSON into v, a pointer. Unknown fields of protocol buffer messages
// are ignored, as encoding/json ignores unknown fields of structs.
func (Marshaler) Unmarshal(d []byte, v interface{}) error {
	if pb, ok := v.(proto.Message); ok {
		return unmarshalOpts.Unmarshal(d, pb)
	}
	if fastjson.Decode(d, v) {
		return nil
	}
	return json.Unmarshal(d, v)
}

// String returns "json".
func (Marshaler) String() string { return "json" }

// Codec reads and writes a stream of JSON values, one per message.
type Codec struct {
	Conn    io.ReadWriteCloser
	Encoder *json.Encoder
	Decoder *json.Decoder
}

// NewCodec returns a JSON Codec over c.
func NewCodec(c io.ReadWriteCloser) codec.Codec {
	return &Codec{Conn: c, Encoder: json.NewEncoder(c), Decoder: json.NewDecoder(c)}
}

// ReadHeader does nothing: headers travel beside the body.
func (c *Codec) ReadHeader(m *codec.Message, t codec.MessageType) error { return nil }

// ReadBody decodes the next JSON value into b; a nil b discards it.
func (c *Codec) ReadBody(b interface{}) error {
	if b == nil {
		var discard json.RawMessage
		return c.Decoder.Decode(&discard)
	}
	if pb, ok := b.(proto.Message); ok {
		var raw json.RawMessage
		if err := c.Decoder.Decode(&raw); err != nil {
			return err
		}
		return unmarshalOpts.Unmarshal(raw, pb)
	}
	return c.Decoder.Decode(b)
}

// Write writes b as one JSON value followed by a newline.
func (c *Codec) Write(m *codec.Message, b interface{}) error {
	if b == nil {
		return nil
	}
	if pb, ok := b.(proto.Message); ok {
		data, err := marshalOpts.Marshal(pb)
		if err != nil {
			return err
		}
		_, err = c.Conn.Write(append(data, '\n'))
		return err
	}
	return c.Encoder.Encode(b)
}

// Close closes the connection.
func (c *Codec) Close() error { return c.Conn.Close() }

// String returns "json".
func (c *Codec) String() string { return "json" }
