// Package jsonrpc is the application/json-rpc codec: Go Micro's JSON-RPC 1.0 envelope.
//
// A request is {"method":"Type.Method","params":[<body>],"id":<id>}; a response is
// {"id":"<id>","result":<body>,"error":null} or, on failure, {"id":"<id>","result":null,
// "error":"<error text>"}. The id of a response is always a string. Bodies inside the
// envelope are JSON, encoded as the json codec encodes them.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/seed-b3892490/micro/codec"
	mjson "github.com/seed-b3892490/micro/codec/json"
)

type request struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	ID     json.RawMessage   `json:"id"`
}

type response struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  interface{}     `json:"error"`
}

// Codec reads and writes JSON-RPC envelopes, one per message.
type Codec struct {
	Conn io.ReadWriteCloser
	dec  *json.Decoder
	body json.RawMessage // the body of the message whose header was read
}

// NewCodec returns a JSON-RPC Codec over c.
func NewCodec(c io.ReadWriteCloser) codec.Codec {
	return &Codec{Conn: c, dec: json.NewDecoder(c)}
}

// ReadHeader reads the next envelope: for a Request its method and id, for a Response
// its id and error.
func (c *Codec) ReadHeader(m *codec.Message, t codec.MessageType) error {
	c.body = nil
	switch t {
	case codec.Request:
		var r request
		if err := c.dec.Decode(&r); err != nil {
			return fmt.Errorf("jsonrpc: %w", err)
		}
		if r.Method == "" {
			return errors.New("jsonrpc: request has no method")
		}
		if len(r.Params) > 1 {
			return fmt.Errorf("jsonrpc: request has %d params, want one", len(r.Params))
		}
		m.Method, m.Endpoint, m.Id = r.Method, r.Method, idString(r.ID)
		if len(r.Params) == 1 {
			c.body = r.Params[0]
		}
	case codec.Response:
		var r struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := c.dec.Decode(&r); err != nil {
			return fmt.Errorf("jsonrpc: %w", err)
		}
		m.Id = idString(r.ID)
		if len(r.Error) > 0 && string(r.Error) != "null" {
			var s string
			if json.Unmarshal(r.Error, &s) != nil {
				s = string(r.Error)
			}
			m.Error = s
		}
		c.body = r.Result
	default:
		var raw json.RawMessage
		if err := c.dec.Decode(&raw); err != nil {
			return fmt.Errorf("jsonrpc: %w", err)
		}
		c.body = raw
	}
	return nil
}

// idString renders a JSON-RPC id as the string Go Micro answers with.
func idString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// ReadBody decodes the body of the envelope last read into b; nil discards it.
func (c *Codec) ReadBody(b interface{}) error {
	body := c.body
	c.body = nil
	if b == nil || len(body) == 0 || string(body) == "null" {
		return nil
	}
	return mjson.Marshaler{}.Unmarshal(body, b)
}

// Write writes b in an envelope: a request envelope for codec.Request (method m.Endpoint
// or m.Method, id m.Id), a response envelope otherwise (m.Error as the error).
func (c *Codec) Write(m *codec.Message, b interface{}) error {
	var body json.RawMessage = []byte("null")
	if b != nil {
		data, err := mjson.Marshaler{}.Marshal(b)
		if err != nil {
			return err
		}
		body = data
	}
	var out interface{}
	switch m.Type {
	case codec.Request:
		method := m.Endpoint
		if method == "" {
			method = m.Method
		}
		id := json.RawMessage(strconv.Quote(m.Id))
		if _, err := strconv.ParseUint(m.Id, 10, 64); err == nil {
			id = json.RawMessage(m.Id)
		}
		out = request{Method: method, Params: []json.RawMessage{body}, ID: id}
	case codec.Event:
		out = body
	default:
		r := response{ID: m.Id, Result: body}
		if m.Error != "" {
			r.Result = []byte("null")
			r.Error = m.Error
		}
		out = r
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = c.Conn.Write(append(data, '\n'))
	return err
}

// Close closes the connection.
func (c *Codec) Close() error { return c.Conn.Close() }

// String returns "json-rpc".
func (c *Codec) String() string { return "json-rpc" }
