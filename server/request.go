package server

import (
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/transport"
)

// rpcRequest is a call being served.
type rpcRequest struct {
	service     string
	endpoint    string
	contentType string
	header      map[string]string
	body        []byte
	value       interface{}
	ep          *endpoint
	newCodec    codec.NewCodec
	stream      bool
	reply       transport.Message // the reply the server sends, kept here to spare an allocation
}

func (r *rpcRequest) Service() string           { return r.service }
func (r *rpcRequest) Method() string            { return r.endpoint }
func (r *rpcRequest) Endpoint() string          { return r.endpoint }
func (r *rpcRequest) ContentType() string       { return r.contentType }
func (r *rpcRequest) Header() map[string]string { return r.header }
func (r *rpcRequest) Body() interface{}         { return r.value }
func (r *rpcRequest) Read() ([]byte, error)     { return r.body, nil }
func (r *rpcRequest) Stream() bool              { return r.stream }

// Codec returns a reader over the raw body, for wrappers that decode it themselves.
func (r *rpcRequest) Codec() codec.Reader {
	if r.newCodec == nil {
		return nil
	}
	b := append([]byte(nil), r.body...)
	return r.newCodec(codecs.NewBuffer(b))
}

// rpcResponse is what a custom Router writes its reply into.
type rpcResponse struct {
	header   map[string]string
	body     []byte
	newCodec codec.NewCodec
	buf      codecs.Buffer
}

func (r *rpcResponse) Codec() codec.Writer {
	if r.newCodec == nil {
		return nil
	}
	return r.newCodec(&r.buf)
}

func (r *rpcResponse) WriteHeader(h map[string]string) {
	if r.header == nil {
		r.header = make(map[string]string, len(h))
	}
	for k, v := range h {
		r.header[k] = v
	}
}

func (r *rpcResponse) Write(b []byte) error {
	r.body = append(r.body, b...)
	return nil
}

// message is a published message as a subscriber sees it.
type message struct {
	topic       string
	contentType string
	payload     interface{}
	header      map[string]string
	body        []byte
	newCodec    codec.NewCodec
}

func (m *message) Topic() string             { return m.topic }
func (m *message) Payload() interface{}      { return m.payload }
func (m *message) ContentType() string       { return m.contentType }
func (m *message) Header() map[string]string { return m.header }
func (m *message) Body() []byte              { return m.body }

func (m *message) Codec() codec.Reader {
	if m.newCodec == nil {
		return nil
	}
	b := append([]byte(nil), m.body...)
	return m.newCodec(codecs.NewBuffer(b))
}
