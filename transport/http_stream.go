package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/internal/frame"
	"github.com/seed-b3892490/micro/transport/headers"
)

// Pseudo-headers of stream messages.
const (
	// Open marks the message a stream is opened with: on a client Socket, the first
	// Send; received by the server, the frame carrying the request body. Sent by a server
	// with no body, it answers the opening with the response headers at once.
	Open = ":open"
	// EOS marks the end of a stream: a client Send with it half-closes the stream; a
	// server Send with it ends the stream with the Micro-Error header as the error (or
	// cleanly without it); a client Recv sees it on the last message.
	EOS = ":eos"
	// NDJSON, on the first reply of a unary HTTP call, turns the reply into a stream of
	// newline-delimited bodies (chunked), for HTTP clients such as curl -N.
	NDJSON = ":ndjson"
)

// StreamHeader is the request header that marks a framed stream.
const StreamHeader = headers.Stream

// httpStreamClient is a client stream over one HTTP request: frames written to the
// request body, frames read from the response body.
type httpStreamClient struct {
	rt     *http.Transport
	url    string
	addr   string
	opts   DialOptions
	ctx    context.Context
	cancel context.CancelFunc

	wmu     sync.Mutex
	started bool
	pw      *io.PipeWriter
	closed  bool

	done    chan struct{} // closed when the response headers (or an error) arrived
	resp    *http.Response
	respErr error

	rmu    sync.Mutex
	br     *bufio.Reader
	ended  bool
	status int
}

func newStreamClient(rt *http.Transport, url, addr string, opts DialOptions) *httpStreamClient {
	ctx, cancel := context.WithCancel(context.WithValue(opts.Context, dialTimeoutKey{}, opts.Timeout))
	return &httpStreamClient{rt: rt, url: url, addr: addr, opts: opts, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

func (s *httpStreamClient) Local() string  { return "" }
func (s *httpStreamClient) Remote() string { return s.addr }

// Send opens the stream with its first message, writes a frame for each later one, and
// half-closes the stream for a message marked EOS. It blocks while the peer is not
// reading (HTTP/2 flow control) until the stream's context ends.
func (s *httpStreamClient) Send(m *Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.started {
		s.started = true
		pr, pw := io.Pipe()
		s.pw = pw
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url, pr)
		if err != nil {
			return err
		}
		req.ContentLength = -1
		for k, v := range m.Header {
			if len(k) > 0 && k[0] == ':' {
				continue
			}
			req.Header.Set(k, v)
		}
		req.Header.Set(StreamHeader, "1")
		// A cancelled stream fails its request body, which makes the HTTP/2 client reset
		// the stream: the server's handler sees its context end.
		stop := context.AfterFunc(s.ctx, func() { _ = pw.CloseWithError(s.ctx.Err()) })
		go func() {
			defer stop()
			defer close(s.done)
			resp, err := s.rt.RoundTrip(req)
			if err != nil {
				_ = pr.CloseWithError(err)
				if notSent(err) {
					err = &NotSentError{Err: fmt.Errorf("connect to %s: %w", s.addr, err)}
				}
				s.respErr = err
				return
			}
			s.resp = resp
			context.AfterFunc(s.ctx, func() { _ = resp.Body.Close() })
		}()
		if m.Body == nil {
			return nil
		}
		return s.write(frame.Open, m.Body)
	}
	if _, ok := m.Header[EOS]; ok {
		return s.pw.Close()
	}
	return s.write(frame.Message, m.Body)
}

func (s *httpStreamClient) write(f frame.Flags, body []byte) error {
	if err := frame.Write(s.pw, f, body); err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		return err
	}
	return nil
}

// Response waits for the server's answer to the opening of the stream and returns its
// HTTP status, or the transport error of a stream that could not be opened (a
// *NotSentError when the connection could not be made).
func (s *httpStreamClient) Response() (int, error) {
	status, _, err := s.response()
	return status, err
}

func (s *httpStreamClient) response() (int, http.Header, error) {
	select {
	case <-s.done:
	case <-s.ctx.Done():
		<-s.done
	}
	if s.respErr != nil {
		if s.opts.Context.Err() != nil {
			return 0, nil, s.opts.Context.Err()
		}
		return 0, nil, s.respErr
	}
	return s.resp.StatusCode, s.resp.Header, nil
}

// Recv returns the next message. A failed opening (a non-200 status) is returned as one
// message carrying the status and error, marked EOS; so is the end frame.
func (s *httpStreamClient) Recv(m *Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.ended {
		return io.EOF
	}
	status, hdr, err := s.response()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		s.ended = true
		out := map[string]string{headers.Status: strconv.Itoa(status), EOS: "1"}
		for k, v := range hdr {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
		body, _ := readLimited(s.resp.Body, -1, 64<<10)
		m.Header, m.Body = out, body
		return nil
	}
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.resp.Body, 32<<10)
	}
	f, payload, err := frame.Read(s.br, s.opts.MaxMsgSize)
	if err != nil {
		if s.opts.Context.Err() != nil {
			return s.opts.Context.Err()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the stream ended without its end frame
		}
		return err
	}
	switch f {
	case frame.End:
		s.ended = true
		m.Header = map[string]string{EOS: "1"}
		if len(payload) > 0 {
			m.Header[headers.Error] = string(payload)
		}
		m.Body = nil
		s.release()
	default:
		m.Header, m.Body = nil, payload
	}
	return nil
}

// release ends the request once the stream is over, freeing its goroutines.
func (s *httpStreamClient) release() {
	s.wmu.Lock()
	if s.pw != nil {
		_ = s.pw.Close()
	}
	s.wmu.Unlock()
}

// Close cancels the stream if it is still running and frees everything it holds.
func (s *httpStreamClient) Close() error {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	if s.pw != nil {
		_ = s.pw.CloseWithError(ErrClosed)
	}
	s.wmu.Unlock()
	s.cancel()
	if started {
		<-s.done
		if s.resp != nil {
			_ = s.resp.Body.Close()
		}
	}
	return nil
}

// httpStreamServer is the server side of a framed stream. Close stops receiving (a
// blocked Recv returns); replies can still be sent.
type httpStreamServer struct {
	w        http.ResponseWriter
	r        *http.Request
	rc       *http.ResponseController
	limits   *Limits
	received time.Time

	rmu    sync.Mutex
	opened bool
	br     *bufio.Reader

	wmu        sync.Mutex
	headerSent bool
	ended      bool
}

func (s *httpStreamServer) Local() string            { return localAddr(s.r) }
func (s *httpStreamServer) Remote() string           { return s.r.RemoteAddr }
func (s *httpStreamServer) Close() error             { return s.r.Body.Close() }
func (s *httpStreamServer) Context() context.Context { return s.r.Context() }
func (s *httpStreamServer) Received() time.Time      { return s.received }

// ConnectionState returns the TLS state of the stream's connection, nil without TLS (see
// TLSSocket).
func (s *httpStreamServer) ConnectionState() *tls.ConnectionState { return s.r.TLS }

// Recv returns the stream's headers first (no body), then each frame the client sends,
// then io.EOF when the client half-closed.
func (s *httpStreamServer) Recv(m *Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if !s.opened {
		s.opened = true
		if err := checkHeaderCount(s.r, s.limits); err != nil {
			return err
		}
		m.Header = messageHeader(s.r)
		m.Body = nil
		// a stream lives as long as its handler: no whole-request read deadline
		_ = s.rc.SetReadDeadline(time.Time{})
		s.br = bufio.NewReaderSize(s.r.Body, 32<<10)
		return nil
	}
	f, payload, err := frame.Read(s.br, s.limits.MaxMsgSize)
	if err != nil {
		if errors.Is(err, frame.ErrTooLarge) {
			return fmt.Errorf("%w: %v", errTooLarge, err)
		}
		return err
	}
	m.Header, m.Body = nil, payload
	if f == frame.Open {
		m.Header = map[string]string{Open: "1"}
	}
	return nil
}

// Send writes the response headers (on the first Send), then a frame per message; a
// message marked EOS writes the end frame. A message with a non-200 :status before the
// headers went out is answered as a plain error response instead.
func (s *httpStreamServer) Send(m *Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended {
		return io.ErrClosedPipe
	}
	if !s.headerSent {
		if st := m.Header[headers.Status]; st != "" && st != "200" {
			s.ended = true
			return writeWhole(s.w, s.rc, s.limits, m)
		}
		h := s.w.Header()
		for k, v := range m.Header {
			if len(k) > 0 && k[0] != ':' && k != headers.Error {
				h.Set(k, v)
			}
		}
		h["Date"] = nil
		s.w.WriteHeader(http.StatusOK)
		s.headerSent = true
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
	var err error
	switch {
	case m.Header[EOS] != "":
		s.ended = true
		err = frame.Write(s.w, frame.End, []byte(m.Header[headers.Error]))
	case m.Header[Open] != "" && m.Body == nil:
		// headers only
	default:
		err = frame.Write(s.w, frame.Message, m.Body)
	}
	if err == nil {
		err = s.rc.Flush()
	}
	_ = s.rc.SetWriteDeadline(time.Time{})
	return err
}

// writeWhole writes m as a complete response: :status, headers and body.
func writeWhole(w http.ResponseWriter, rc *http.ResponseController, limits *Limits, m *Message) error {
	h := w.Header()
	status := http.StatusOK
	for k, v := range m.Header {
		if len(k) > 0 && k[0] == ':' {
			if k == headers.Status {
				if c, err := strconv.Atoi(v); err == nil && c >= 100 && c <= 999 {
					status = c
				}
			}
			continue
		}
		h.Set(k, v)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no content sniffing
	}
	h["Date"] = nil
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	_ = rc.SetWriteDeadline(time.Now().Add(limits.WriteTimeout))
	w.WriteHeader(status)
	if len(m.Body) == 0 {
		return nil
	}
	_, err := w.Write(m.Body)
	return err
}

// ndjsonLine returns body with a newline unless it ends with one.
func ndjsonLine(body []byte) []byte {
	if len(body) > 0 && body[len(body)-1] == '\n' {
		return body
	}
	return append(bytes.Clone(body), '\n')
}
