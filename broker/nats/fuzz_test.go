package nats

import (
	"errors"
	"maps"
	"net/textproto"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/seed-b3892490/micro/broker"
)

// wire returns the headers h as a subscriber's nats.go parses them after the trip
// through the server, or an error where nats.go would refuse to send them. It writes the
// header block as nats.go's publisher does (it trims white space around values and
// replaces CR and LF with spaces, and refuses invalid names) and parses it with
// nats.DecodeHeadersMsg.
func wire(h nats.Header) (nats.Header, int, error) {
	if len(h) == 0 {
		return nil, 0, nil
	}
	var b strings.Builder
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		if !plainKey(k) && k != EscapedHeader {
			return nil, 0, errors.New("nats.go refuses header name " + k)
		}
		for _, v := range vs {
			b.WriteString(k + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(textproto.TrimString(v)) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	out, err := nats.DecodeHeadersMsg([]byte(b.String()))
	return out, b.Len(), err
}

// FuzzDecodeHeader feeds header blocks to nats.go's parser and the broker's decoder:
// nothing panics, a block that fails is reported as malformed, and whatever the decoder
// accepts survives being published again. It also checks that any one header, with any
// name and value, arrives unchanged.
func FuzzDecodeHeader(f *testing.F) {
	esc := EscapedHeader
	for _, seed := range []struct{ block, key, value string }{
		{"NATS/1.0\r\nK: v\r\n\r\n", "K", "v"},
		{"NATS/1.0\r\n\r\n", "", ""},
		{"", "Content-Type", "application/json"},
		{"GARBAGE\r\n\r\n", "with space", "x"},
		{"NATS/1.0 503\r\n\r\n", "Colon:", "a\r\nb"},
		{"NATS/1.0\r\nno colon\r\n\r\n", "K", "  padded  "},
		{"NATS/1.0\r\n" + esc + ": a=%zz\r\n\r\n", esc, "v"},
		{"NATS/1.0\r\n" + esc + ": a=1&b=2&%00=%0D%0A\r\n\r\n", "é", "\x00\x7f"},
		{"NATS/1.0\r\n" + esc + ": a=1\r\n" + esc + ": a=1\r\n\r\n", "K", "\xff"},
		{"NATS/1.0\r\nA: 1\r\n" + esc + ": A=2\r\n\r\n", "A", "%41&=+"},
		{"NATS/1.0\r\nM: 1\r\nM: 2\r\n\r\n", "M", "1, 2"},
		{"NATS/1.0\r\n" + esc + ": no-equals&x\r\n\r\n", "\t", "\t"},
		{"NATS/1.0\r\n: empty name\r\n\r\n", "K", ""},
		{"NATS/1.0\r\nK:\r\n\r\n", esc, ""},
	} {
		f.Add([]byte(seed.block), seed.key, seed.value)
	}
	f.Fuzz(func(t *testing.T, block []byte, key, value string) {
		h, err := nats.DecodeHeadersMsg(block)
		if err != nil {
			h = nil
		}
		out, err := decodeHeader(h, len(block))
		switch {
		case err != nil:
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error %v does not match ErrMalformedMessage", err)
			}
		case out == nil:
			t.Fatal("accepted headers are nil")
		default:
			// a header of that name reaches handlers only from inside the escaped ones
			if _, ok := out[EscapedHeader]; ok && h[EscapedHeader] == nil {
				t.Fatalf("the %s header leaked to the handler", EscapedHeader)
			}
			roundTrip(t, out)
		}
		roundTrip(t, map[string]string{key: value, "Plain": "x", value: key})
	})
}

// roundTrip encodes header as Publish does, sends it through wire and decodes it: it
// must come back unchanged.
func roundTrip(t *testing.T, header map[string]string) {
	t.Helper()
	nm := encode("s", &broker.Message{Header: header, Body: []byte("b")})
	if string(nm.Data) != "b" || nm.Subject != "s" {
		t.Fatalf("encode changed subject or body: %q %q", nm.Subject, nm.Data)
	}
	h, n, err := wire(nm.Header)
	if err != nil {
		t.Fatalf("headers %q encoded as %q: %v", header, nm.Header, err)
	}
	got, err := decodeHeader(h, n)
	if err != nil {
		t.Fatalf("headers %q encoded as %q: decode: %v", header, nm.Header, err)
	}
	if !maps.Equal(got, header) && !(len(got) == 0 && len(header) == 0) {
		t.Fatalf("headers %q came back as %q (encoded %q)", header, got, nm.Header)
	}
}

func TestEncodeNil(t *testing.T) {
	nm := encode("s", nil)
	if nm.Header != nil || nm.Data != nil || nm.Subject != "s" {
		t.Errorf("encode(nil) = %+v", nm)
	}
	if nm := encode("s", &broker.Message{Header: map[string]string{}}); nm.Header != nil {
		t.Errorf("empty headers encoded as %q, want none", nm.Header)
	}
	h, err := decodeHeader(nil, 0)
	if err != nil || h == nil || len(h) != 0 {
		t.Errorf("decodeHeader(nil, 0) = %v, %v", h, err)
	}
}
