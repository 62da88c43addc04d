// Package text is the text/plain codec: bodies are raw text, given as
// *string, string, *Frame, Frame, *[]byte or []byte.
package text

import (
	"fmt"
	"io"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/internal/wholebody"
)

// Frame is a raw text body.
type Frame struct {
	Data []byte
}

// Marshaler passes bytes through. It is safe for concurrent use.
type Marshaler struct{}

// Marshal returns the bytes of v: *Frame, Frame, *[]byte or []byte.
func (Marshaler) Marshal(v interface{}) ([]byte, error) {
	switch b := v.(type) {
	case *string:
		return []byte(*b), nil
	case string:
		return []byte(b), nil
	case *Frame:
		return b.Data, nil
	case Frame:
		return b.Data, nil
	case *[]byte:
		return *b, nil
	case []byte:
		return b, nil
	}
	return nil, fmt.Errorf("text: cannot encode %T: want a string, *text.Frame or []byte", v)
}

// Unmarshal stores a copy of data in v: *Frame or *[]byte.
func (Marshaler) Unmarshal(data []byte, v interface{}) error {
	switch b := v.(type) {
	case *string:
		*b = string(data)
		return nil
	case *Frame:
		b.Data = append([]byte(nil), data...)
		return nil
	case *[]byte:
		*b = append([]byte(nil), data...)
		return nil
	}
	return fmt.Errorf("text: cannot decode into %T: want *string, *text.Frame or *[]byte", v)
}

// String returns "text".
func (Marshaler) String() string { return "text" }

// Codec reads and writes one raw body per stream.
type Codec struct {
	Conn io.ReadWriteCloser
}

// NewCodec returns a text Codec over c.
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

// String returns "text".
func (c *Codec) String() string { return "text" }
