// Package protorpc is the application/proto-rpc codec: Go Micro's envelope of two
// netstrings (a 4-byte big-endian length, then that many bytes). A request is
// netstring(Request) then netstring(body); a response is netstring(Response) then
// netstring(body, empty on error). Request and Response are protocol buffer messages:
// Request{service_method = 1; seq = 2 (fixed64)}, Response{service_method = 1;
// seq = 2 (fixed64); error = 3}.
package protorpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/proto"
)

// MaxNetString is the largest netstring read: a longer length is refused before
// anything is allocated for it.
var MaxNetString = 4 << 20

// ErrTooLarge is returned for a netstring longer than MaxNetString.
var ErrTooLarge = errors.New("protorpc: netstring exceeds the size limit")

// Request is the envelope of a request.
type Request struct {
	ServiceMethod string
	Seq           uint64
}

// Response is the envelope of a response.
type Response struct {
	ServiceMethod string
	Seq           uint64
	Error         string
}

// WriteNetString writes data as one netstring.
func WriteNetString(w io.Writer, data []byte) (int, error) {
	buf := make([]byte, 4, 4+len(data))
	binary.BigEndian.PutUint32(buf, uint32(len(data)))
	return w.Write(append(buf, data...))
}

// ReadNetString reads one netstring of at most MaxNetString bytes.
func ReadNetString(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(MaxNetString) {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return data, nil
}

func encodeEnvelope(method string, seq uint64, errText string) []byte {
	var b []byte
	if method != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, method)
	}
	if seq != 0 {
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, seq)
	}
	if errText != "" {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, errText)
	}
	return b
}

func decodeEnvelope(b []byte) (method string, seq uint64, errText string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, "", fmt.Errorf("protorpc: bad envelope: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return "", 0, "", fmt.Errorf("protorpc: bad method: %w", protowire.ParseError(n))
			}
			method, b = v, b[n:]
		case num == 2 && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return "", 0, "", fmt.Errorf("protorpc: bad seq: %w", protowire.ParseError(n))
			}
			seq, b = v, b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return "", 0, "", fmt.Errorf("protorpc: bad error: %w", protowire.ParseError(n))
			}
			errText, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", 0, "", fmt.Errorf("protorpc: bad envelope: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return method, seq, errText, nil
}

// Codec reads and writes proto-rpc envelopes.
type Codec struct {
	Conn io.ReadWriteCloser
	body []byte
}

// NewCodec returns a proto-rpc Codec over c.
func NewCodec(c io.ReadWriteCloser) codec.Codec { return &Codec{Conn: c} }

// ReadHeader reads the envelope netstring and the body netstring that follows it.
func (c *Codec) ReadHeader(m *codec.Message, t codec.MessageType) error {
	c.body = nil
	env, err := ReadNetString(c.Conn)
	if err != nil {
		return err
	}
	method, seq, errText, err := decodeEnvelope(env)
	if err != nil {
		return err
	}
	if t == codec.Request && method == "" {
		return errors.New("protorpc: request has no service method")
	}
	m.Method, m.Endpoint, m.Id, m.Error = method, method, strconv.FormatUint(seq, 10), errText
	body, err := ReadNetString(c.Conn)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	c.body = body
	return nil
}

// ReadBody decodes the body read with the last header into b (nil discards).
func (c *Codec) ReadBody(b interface{}) error {
	body := c.body
	c.body = nil
	if b == nil || len(body) == 0 {
		return nil
	}
	return proto.Marshaler{}.Unmarshal(body, b)
}

// Write writes the envelope of m, then b (empty when m carries an error).
func (c *Codec) Write(m *codec.Message, b interface{}) error {
	method := m.Endpoint
	if method == "" {
		method = m.Method
	}
	seq, _ := strconv.ParseUint(m.Id, 10, 64)
	var body []byte
	if b != nil && m.Error == "" {
		var err error
		if body, err = (proto.Marshaler{}).Marshal(b); err != nil {
			return err
		}
	}
	env := encodeEnvelope(method, seq, m.Error)
	if _, err := WriteNetString(c.Conn, env); err != nil {
		return err
	}
	_, err := WriteNetString(c.Conn, body)
	return err
}

// Close closes the connection.
func (c *Codec) Close() error { return c.Conn.Close() }

// String returns "proto-rpc".
func (c *Codec) String() string { return "proto-rpc" }
