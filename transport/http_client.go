package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/seed-b3892490/micro/transport/headers"
)

// httpClientSocket carries calls to one address: each Send is one HTTP request, the
// following Recv its response.
type httpClientSocket struct {
	rt   *http.Transport
	url  string
	addr string
	opts DialOptions
	ctx  context.Context

	resp   *http.Response
	closed bool
}

func (s *httpClientSocket) Local() string  { return "" }
func (s *httpClientSocket) Remote() string { return s.addr }

// Send sends m as one HTTP request and waits for the response headers. A failure to
// connect is returned as a *NotSentError.
func (s *httpClientSocket) Send(m *Message) error {
	if s.closed {
		return ErrClosed
	}
	s.discard()
	path := "/"
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url, bytes.NewReader(m.Body))
	if err != nil {
		return err
	}
	for k, v := range m.Header {
		if len(k) > 0 && k[0] == ':' {
			if k == headers.Path && v != "" && v[0] == '/' {
				path = v
			}
			continue
		}
		req.Header.Set(k, v)
	}
	if path != "/" {
		req.URL.Path = path
	}
	req.Close = s.opts.ConnClose
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		if notSent(err) {
			return &NotSentError{Err: fmt.Errorf("connect to %s: %w", s.addr, err)}
		}
		return err
	}
	s.resp = resp
	return nil
}

// notSent reports whether err proves that the request was not handled by the peer: the
// connection could not be made, or writing the request failed because the peer had
// already closed the connection (a stale pooled connection). A micro server reads a
// whole request before it calls a handler, so a request it could not receive in full was
// never acted on.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "write") {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var recErr tls.RecordHeaderError
	return errors.As(err, &recErr)
}

// Recv reads the response of the last Send. Header ":status" holds the HTTP status.
func (s *httpClientSocket) Recv(m *Message) error {
	if s.closed {
		return ErrClosed
	}
	resp := s.resp
	if resp == nil {
		return errors.New("transport: Recv without a Send")
	}
	s.resp = nil
	defer resp.Body.Close()
	hdr := make(map[string]string, len(resp.Header)+1)
	for k, v := range resp.Header {
		if len(v) > 0 && !hopByHop[k] {
			hdr[k] = v[0]
		}
	}
	hdr[headers.Status] = strconv.Itoa(resp.StatusCode)
	m.Header = hdr
	if resp.ContentLength > s.opts.MaxMsgSize {
		return fmt.Errorf("transport: reply of %d bytes exceeds the limit of %d", resp.ContentLength, s.opts.MaxMsgSize)
	}
	body, err := readLimited(resp.Body, resp.ContentLength, s.opts.MaxMsgSize)
	if errors.Is(err, errTooLarge) {
		return fmt.Errorf("transport: reply exceeds the limit of %d bytes", s.opts.MaxMsgSize)
	}
	if err != nil {
		return err
	}
	m.Body = body
	return nil
}

// discard drops a response that was never read.
func (s *httpClientSocket) discard() {
	if s.resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(s.resp.Body, 64<<10))
		_ = s.resp.Body.Close()
		s.resp = nil
	}
}

// Close releases the socket; the connection under it stays pooled for other calls.
func (s *httpClientSocket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.discard()
	return nil
}
