// Package wire is micro's native binary protocol: what the HTTP transport's micro clients
// speak to micro servers on the same port as HTTP, when both ends know it.
//
// A client opens a connection by sending Magic; a server that speaks the protocol answers
// with Magic too (an HTTP server answers 400 and closes, which tells the client to use
// HTTP). After that both sides send frames:
//
//	+----------------+------+-------+----------------+-------------+
//	| length (4, BE) | type | flags | stream (4, BE) | payload ... |
//	+----------------+------+-------+----------------+-------------+
//
// length counts the payload only. A call is a stream: the client opens it with a Request
// frame (odd stream ids chosen by the client, increasing) and both sides send Message
// frames on it until each has sent one with FlagEnd. A unary call is one Request with
// FlagEnd and one Message with FlagEnd. Request and Message payloads are a header block
// (see Encoder) followed by the body. Streams send Window frames to grant the peer credit
// for more message bytes, so a slow reader holds back a fast writer; Cancel ends a stream
// at once in both directions. Ping and Pong check a quiet connection; GoAway tells the
// client which streams the server took before it stopped taking more.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Magic opens a connection, in both directions. It starts with a NUL and ends with CRLF,
// so that an HTTP/1 server reads it as a malformed request line and answers at once;
// it is as long as the HTTP/2 connection preface (24 bytes), so that a server looking for
// that preface has all it waits for.
const Magic = "\x00MICRO-NATIVE-WIRE/1.0\r\n"

// HeaderLen is the size of a frame header.
const HeaderLen = 10

// Frame types.
const (
	TypeRequest byte = 1 // opens a stream: header block + body
	TypeMessage byte = 2 // a message on a stream: header block + body
	TypeCancel  byte = 3 // ends a stream at once; payload: a code byte and a reason
	TypeWindow  byte = 4 // grants the peer credit; payload: 4-byte increment
	TypePing    byte = 5 // payload: 8 opaque bytes, echoed by Pong
	TypePong    byte = 6
	TypeGoAway  byte = 7 // payload: 4-byte last stream id taken, then a reason
)

// Frame flags.
const (
	// FlagEnd marks the sender's last frame on the stream.
	FlagEnd byte = 1
	// FlagStream, on a Request, opens a stream call rather than a unary one.
	FlagStream byte = 2
	// FlagBody, on a stream's Request, says the frame carries an opening message.
	FlagBody byte = 4
)

// Cancel codes.
const (
	// CodeCancel: the sender gave up on the stream (its caller went away).
	CodeCancel byte = 0
	// CodeRefused: the server did not start the call (too many streams on the
	// connection, or it is stopping); the client may send it again elsewhere.
	CodeRefused byte = 1
	// CodeProtocol: the stream broke the protocol (credit exceeded, bad frame).
	CodeProtocol byte = 2
)

// FrameHeader is a decoded frame header.
type FrameHeader struct {
	Length uint32
	Type   byte
	Flags  byte
	Stream uint32
}

// ErrTooLarge is returned for a frame whose payload is longer than the reader allows.
var ErrTooLarge = errors.New("wire: frame exceeds the size limit")

// AppendFrameHeader appends a frame header to dst.
func AppendFrameHeader(dst []byte, length int, typ, flags byte, stream uint32) []byte {
	return append(dst,
		byte(length>>24), byte(length>>16), byte(length>>8), byte(length),
		typ, flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

// PutLength writes the payload length of the frame whose header starts at dst[0].
func PutLength(dst []byte, length int) {
	binary.BigEndian.PutUint32(dst, uint32(length))
}

// Buffered reports whether r holds a whole frame: reading it will not wait for the
// connection.
func Buffered(r *bufio.Reader) bool {
	n := r.Buffered()
	if n < HeaderLen {
		return false
	}
	b, _ := r.Peek(HeaderLen)
	return n-HeaderLen >= int(binary.BigEndian.Uint32(b))
}

// ReadFrameHeader reads one frame header.
func ReadFrameHeader(r *bufio.Reader) (FrameHeader, error) {
	var h FrameHeader
	b, err := r.Peek(HeaderLen)
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return h, err
	}
	h.Length = binary.BigEndian.Uint32(b)
	h.Type = b[4]
	h.Flags = b[5]
	h.Stream = binary.BigEndian.Uint32(b[6:])
	_, _ = r.Discard(HeaderLen)
	if h.Type < TypeRequest || h.Type > TypeGoAway {
		return h, fmt.Errorf("wire: unknown frame type %d", h.Type)
	}
	return h, nil
}

// eagerPayload is the longest payload ReadPayload makes room for before its bytes
// arrive: a longer one grows as it is read, so that a length that lies costs what the
// peer sent, not what it claimed.
const eagerPayload = 64 << 10

// ReadPayload reads a payload of n bytes into buf (grown when too small) and returns it.
func ReadPayload(r *bufio.Reader, n uint32, buf []byte) ([]byte, error) {
	if int(n) <= cap(buf) || n <= eagerPayload {
		if int(n) > cap(buf) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return buf, nil
	}
	buf = buf[:0]
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(int(n)-len(buf), max(len(buf), eagerPayload)))
		}
		k, err := io.ReadFull(r, buf[len(buf):min(cap(buf), int(n))])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// Discard skips a payload of n bytes.
func Discard(r *bufio.Reader, n uint32) error {
	_, err := r.Discard(int(n))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
