package client

import (
	"context"
	stderrors "errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

// responder is implemented by stream sockets that can wait for the peer's answer to the
// opening of a stream.
type responder interface {
	Response() (int, error)
}

// Stream opens a stream to req's endpoint: req's body is sent as the opening message
// (the request of a server-streaming handler; bidi handlers drop it, as Go Micro's do).
// It returns once the server accepted the stream, with the server's error otherwise
// (an unknown endpoint, a refused connection). Close the stream when done with it.
func (c *rpcClient) Stream(ctx context.Context, req Request, opts ...CallOption) (Stream, error) {
	c.mu.RLock()
	copts := c.opts.CallOptions
	sel := c.sel
	tr, custom, maxMsg := c.opts.Transport, c.opts.Codecs, c.opts.MaxMsgSize
	c.mu.RUnlock()
	for _, o := range opts {
		o(&copts)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	media := codecs.MediaType(req.ContentType())
	m, ok := codecs.Lookup(media, custom, DefaultCodecs)
	if !ok {
		return nil, errors.InternalServerError(clientID, "unsupported Content-Type %q", req.ContentType())
	}
	var open []byte
	if req.Body() != nil {
		var err error
		if open, err = m.Marshal(req.Body()); err != nil {
			return nil, errors.Wrap(err, clientID, 500, fmt.Sprintf("encode the %s request of %s: %v", media, req.Endpoint(), err))
		}
	}
	next, err := c.next(ctx, req, copts, sel)
	if err != nil {
		return nil, err
	}
	tried := make(map[string]bool, 2)
	var lastErr error
	for attempt := 0; attempt <= copts.Retries; attempt++ {
		node, err := pick(next, tried)
		if err != nil {
			if lastErr == nil {
				lastErr = errors.Wrap(err, clientID, 503, fmt.Sprintf("service %s: %v", req.Service(), err))
			}
			break
		}
		if attempt >= 2 || tried[node.Id] {
			d, _ := copts.Backoff(ctx, req, attempt)
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, contextError(ctx.Err(), req)
				case <-t.C:
				}
			}
		}
		tried[node.Id] = true
		done := track(sel, req.Service(), node, copts)
		st, err := c.openStream(ctx, node, req, m, open, tr, maxMsg, copts)
		done(err)
		if !copts.isAddressCall() {
			sel.Mark(req.Service(), node, err)
		}
		if err == nil {
			return st, nil
		}
		lastErr = err
		// only a stream that provably never reached a handler (the connection failed, or
		// an overloaded server refused it) is opened elsewhere
		if ctx.Err() != nil || !(transport.IsNotSent(err) || isNotStarted(err)) {
			return nil, err
		}
	}
	return nil, lastErr
}

// openStream opens one stream to node and waits for the server to accept it.
func (c *rpcClient) openStream(ctx context.Context, node *registry.Node, req Request, m codec.Marshaler, open []byte, tr transport.Transport, maxMsg int64, copts CallOptions) (*rpcStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	if copts.StreamTimeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, copts.StreamTimeout)
	}
	hdr, err := callHeaders(sctx, req, strconv.FormatUint(c.seq.Add(1), 10))
	if err != nil {
		cancel()
		return nil, err
	}
	sock, err := tr.Dial(node.Address, transport.WithStream(), transport.WithContext(sctx),
		transport.WithHTTPOnly(!copts.isAddressCall() && node.Metadata[transport.WireMetadata] != transport.WireNative),
		transport.WithTimeout(copts.DialTimeout), transport.WithMaxMsgSize(maxMsg))
	if err != nil {
		cancel()
		return nil, c.transportError(ctx, err, node, req)
	}
	fail := func(err error) (*rpcStream, error) {
		_ = sock.Close()
		cancel()
		return nil, err
	}
	if err := sock.Send(&transport.Message{Header: hdr, Body: open}); err != nil {
		return fail(c.transportError(ctx, err, node, req))
	}
	st := &rpcStream{ctx: sctx, cancel: cancel, req: req, sock: sock, m: m}
	if r, ok := sock.(responder); ok {
		status, err := r.Response()
		if err != nil {
			return fail(c.transportError(ctx, err, node, req))
		}
		if status != 200 {
			var reply transport.Message
			if err := sock.Recv(&reply); err != nil {
				return fail(errors.Wrap(err, clientID, 502, fmt.Sprintf("open stream %s at %s: %v", req.Endpoint(), node.Address, err)))
			}
			if e := replyError(&reply); e != nil {
				return fail(markNotStarted(&reply, e))
			}
			return fail(errors.New(clientID, "stream refused with status "+strconv.Itoa(status), int32(status)))
		}
	}
	return st, nil
}

// rpcStream is the client side of a stream. One goroutine may Send while another Recvs.
type rpcStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	req    Request
	sock   transport.Socket
	m      codec.Marshaler

	smu  sync.Mutex
	sent bool              // CloseSend was called
	smsg transport.Message // what Send sends, reused
	sbuf []byte            // what Send encodes into, reused

	rmu   sync.Mutex
	err   error // what ended receiving; io.EOF for a clean end
	ended bool
	rmsg  transport.Message // what Recv receives into, reused

	closeOnce sync.Once
}

func (s *rpcStream) Context() context.Context { return s.ctx }
func (s *rpcStream) Request() Request         { return s.req }

// Response returns nil: a stream's replies are read with Recv.
func (s *rpcStream) Response() Response { return nil }

// Send encodes v and sends it. It blocks while the server does not read, until the
// stream's context ends. Once the server has ended the stream it returns io.EOF; Recv
// then returns the server's verdict.
func (s *rpcStream) Send(v interface{}) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	body, owned, err := codecs.MarshalAppend(s.m, s.sbuf, v)
	if err != nil {
		return errors.Wrap(err, clientID, 500, fmt.Sprintf("encode a message of %s: %v", s.req.Endpoint(), err))
	}
	if s.sent {
		return stderrors.New("client: Send after CloseSend")
	}
	// sockets do not keep a message once Send returns: its struct and buffer serve again
	s.smsg = transport.Message{Body: body}
	err = s.sock.Send(&s.smsg)
	s.smsg = transport.Message{}
	if owned {
		s.sbuf = codecs.Keep(body)
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return contextError(s.ctx.Err(), s.req)
		}
		return io.EOF
	}
	return nil
}

// CloseSend tells the server no more messages come: its Recv returns io.EOF, and it may
// go on sending.
func (s *rpcStream) CloseSend() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.sent {
		return nil
	}
	s.sent = true
	return s.sock.Send(&transport.Message{Header: map[string]string{transport.EOS: "1"}})
}

// Recv decodes the next message into v. It returns io.EOF after a clean end of the
// stream, the handler's *errors.Error after a failed one, and a context error when the
// stream's context ended.
func (s *rpcStream) Recv(v interface{}) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.ended {
		return s.err
	}
	s.rmsg = transport.Message{}
	msg := &s.rmsg
	if err := s.sock.Recv(msg); err != nil {
		if s.ctx.Err() != nil {
			err = contextError(s.ctx.Err(), s.req)
		} else {
			err = errors.Wrap(newLostError(err), clientID, 502, fmt.Sprintf("stream %s: %v", s.req.Endpoint(), err))
		}
		s.finish(err)
		return err
	}
	if msg.Header[transport.EOS] != "" {
		err := io.EOF
		if e := replyError(msg); e != nil {
			err = e
		}
		s.finish(err)
		return err
	}
	body := msg.Body
	*msg = transport.Message{}
	if err := s.m.Unmarshal(body, v); err != nil {
		return errors.Wrap(err, clientID, 500, fmt.Sprintf("decode a message of %s: %v", s.req.Endpoint(), err))
	}
	return nil
}

// finish records how the stream ended and releases it.
func (s *rpcStream) finish(err error) {
	s.ended = true
	s.err = err
	_ = s.Close()
}

// Error returns what ended the stream: nil while it runs or after a clean end.
func (s *rpcStream) Error() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.err == io.EOF {
		return nil
	}
	return s.err
}

// Close ends the stream: if it still runs, the server's handler sees its context
// cancelled. It frees the stream's goroutines and buffers; it is idempotent.
func (s *rpcStream) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		_ = s.sock.Close()
	})
	return nil
}
