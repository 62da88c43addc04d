package nats

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/broker"
)

// EscapedHeader is the NATS header that carries, percent-encoded, the message headers
// NATS cannot carry as they are (see the package documentation). It never reaches a
// handler: a message header of that name travels escaped too.
const EscapedHeader = "Micro-Escaped-Headers"

// encode returns the NATS message for m published on topic: headers as NATS headers, the
// body, not copied, as the payload. A nil m is an empty message.
func encode(topic string, m *broker.Message) *nats.Msg {
	nm := &nats.Msg{Subject: topic}
	if m == nil {
		return nm
	}
	nm.Data = m.Body
	if len(m.Header) == 0 {
		return nm
	}
	h := make(nats.Header, len(m.Header))
	vals := make([]string, len(m.Header)) // one backing array for every value slice
	var esc strings.Builder
	i := 0
	for k, v := range m.Header {
		if plainKey(k) && plainValue(v) {
			vals[i] = v
			h[k] = vals[i : i+1 : i+1]
			i++
			continue
		}
		if esc.Len() > 0 {
			esc.WriteByte('&')
		}
		esc.WriteString(url.QueryEscape(k))
		esc.WriteByte('=')
		esc.WriteString(url.QueryEscape(v))
	}
	if esc.Len() > 0 {
		h[EscapedHeader] = []string{esc.String()}
	}
	nm.Header = h
	return nm
}

// plainKey reports whether NATS carries k as a header name unchanged: printable ASCII
// without the characters nats.go refuses in names, and not EscapedHeader.
func plainKey(k string) bool {
	if k == "" || k == EscapedHeader {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 33 || c > 126 || strings.IndexByte(`"()/,:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// plainValue reports whether NATS carries v as a header value unchanged: nats.go trims
// leading and trailing white space and replaces CR and LF with spaces, so values with
// those, or any other control character, are escaped.
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// headerBytes returns the size of the header block of a message nats.go received: the
// size it was on the wire less subject, reply subject and payload.
func headerBytes(m *nats.Msg) int {
	return m.Size() - len(m.Subject) - len(m.Reply) - len(m.Data)
}

// decodeHeader returns the message headers of a received NATS message, given its parsed
// NATS headers and the size of its header block (rawBytes). nats.go hands on a message
// whose header block it could not parse with nil headers: that, or a malformed
// EscapedHeader, is an error matching ErrMalformedMessage. A NATS header given several
// values (only other publishers do that) is joined with ", ", as HTTP does. The result is
// never nil.
func decodeHeader(h nats.Header, rawBytes int) (map[string]string, error) {
	if h == nil && rawBytes > 0 {
		return nil, fmt.Errorf("%w: nats.go could not parse its header block of %d bytes", ErrMalformedMessage, rawBytes)
	}
	out := make(map[string]string, len(h))
	for k, vs := range h {
		switch {
		case k == EscapedHeader:
		case len(vs) == 1:
			out[k] = vs[0]
		default:
			out[k] = strings.Join(vs, ", ")
		}
	}
	vs, ok := h[EscapedHeader]
	if !ok {
		return out, nil
	}
	if len(vs) != 1 || vs[0] == "" {
		return nil, fmt.Errorf("%w: %s header: %d values, want 1 non-empty one", ErrMalformedMessage, EscapedHeader, len(vs))
	}
	for n, pair := range strings.Split(vs[0], "&") {
		ek, ev, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %s header: pair %d has no '='", ErrMalformedMessage, EscapedHeader, n)
		}
		k, err := url.QueryUnescape(ek)
		if err != nil {
			return nil, fmt.Errorf("%w: %s header: name of pair %d: %w", ErrMalformedMessage, EscapedHeader, n, err)
		}
		v, err := url.QueryUnescape(ev)
		if err != nil {
			return nil, fmt.Errorf("%w: %s header: value of pair %d: %w", ErrMalformedMessage, EscapedHeader, n, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: header %q given twice", ErrMalformedMessage, k)
		}
		out[k] = v
	}
	return out, nil
}
