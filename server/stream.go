package server

import (
	"context"
	"io"
	"sync"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// rpcStream is the server side of a stream, given to stream handlers. Send and Recv may
// be used from two goroutines at once (one sending, one receiving).
type rpcStream struct {
	ctx  context.Context
	req  *rpcRequest
	sock transport.Socket
	m    codec.Marshaler
	ct   string

	// ndjson streams answer a plain HTTP request: the request body is the one message
	// Recv returns, replies are newline-delimited.
	ndjson  bool
	pending []byte
	// dropOpen drops the message the client opened the stream with (bidi handlers).
	dropOpen bool

	smu  sync.Mutex
	sent int
	smsg transport.Message // what Send sends, reused
	sbuf []byte            // what Send encodes into, reused

	rmu  sync.Mutex
	err  error
	rmsg transport.Message // what Recv receives into, reused
}

func (s *rpcStream) Context() context.Context { return s.ctx }
func (s *rpcStream) Request() Request         { return s.req }

// Send encodes v and sends it. It blocks while the client does not read (flow control)
// and fails once the stream is over or its context ended.
func (s *rpcStream) Send(v interface{}) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	body, owned, err := codecs.MarshalAppend(s.m, s.sbuf, v)
	if err != nil {
		return err
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	// sockets do not keep a message once Send returns: its struct and buffer serve again
	msg := &s.smsg
	*msg = transport.Message{Body: body}
	if s.ndjson && s.sent == 0 {
		msg.Header = map[string]string{transport.NDJSON: "1", headers.ContentType: s.ct}
	}
	err = s.sock.Send(msg)
	*msg = transport.Message{}
	if owned {
		s.sbuf = codecs.Keep(body)
	}
	if err != nil {
		if cerr := s.ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	s.sent++
	return nil
}

// Recv decodes the next message into v; it returns io.EOF once the client has closed its
// side of the stream.
func (s *rpcStream) Recv(v interface{}) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.ndjson {
		if s.pending == nil {
			return io.EOF
		}
		body := s.pending
		s.pending = nil
		return s.m.Unmarshal(body, v)
	}
	msg := &s.rmsg
	for {
		*msg = transport.Message{}
		if err := s.sock.Recv(msg); err != nil {
			if err != io.EOF {
				if cerr := s.ctx.Err(); cerr != nil {
					err = cerr
				}
				s.err = err
			}
			return err
		}
		if msg.Header[transport.Open] != "" && s.dropOpen {
			s.dropOpen = false
			continue
		}
		s.dropOpen = false
		body := msg.Body
		*msg = transport.Message{}
		return s.m.Unmarshal(body, v)
	}
}

// Error returns the error that ended receiving, if any.
func (s *rpcStream) Error() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.err
}

// Close does nothing: the stream ends when the handler returns.
func (s *rpcStream) Close() error { return nil }

// sentCount returns how many messages were sent.
func (s *rpcStream) sentCount() int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.sent
}
