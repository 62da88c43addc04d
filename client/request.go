package client

import (
	"github.com/seed-b3892490/micro/codec"
)

type rpcRequest struct {
	service     string
	endpoint    string
	contentType string
	body        interface{}
	opts        RequestOptions
}

func newRequest(service, endpoint string, body interface{}, contentType string, opts ...RequestOption) Request {
	var o RequestOptions
	for _, f := range opts {
		f(&o)
	}
	if o.ContentType != "" {
		contentType = o.ContentType
	}
	return &rpcRequest{service: service, endpoint: endpoint, contentType: contentType, body: body, opts: o}
}

func (r *rpcRequest) Service() string     { return r.service }
func (r *rpcRequest) Method() string      { return r.endpoint }
func (r *rpcRequest) Endpoint() string    { return r.endpoint }
func (r *rpcRequest) ContentType() string { return r.contentType }
func (r *rpcRequest) Body() interface{}   { return r.body }
func (r *rpcRequest) Codec() codec.Writer { return nil }
func (r *rpcRequest) Stream() bool        { return r.opts.Stream }

type rpcMessage struct {
	topic       string
	contentType string
	payload     interface{}
}

func newMessage(topic string, payload interface{}, contentType string, opts ...MessageOption) Message {
	var o MessageOptions
	for _, f := range opts {
		f(&o)
	}
	if o.ContentType != "" {
		contentType = o.ContentType
	}
	return &rpcMessage{topic: topic, contentType: contentType, payload: payload}
}

func (m *rpcMessage) Topic() string        { return m.topic }
func (m *rpcMessage) Payload() interface{} { return m.payload }
func (m *rpcMessage) ContentType() string  { return m.contentType }
