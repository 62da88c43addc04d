// Package frame reads and writes the length-prefixed frames of micro's streams.
//
// A frame is one flags byte, a 4-byte big-endian payload length, and the payload:
//
//	+-------+----------------+-------------+
//	| flags | length (4, BE) | payload ... |
//	+-------+----------------+-------------+
//
// A stream's request body is a sequence of Open and Message frames; its response body is
// a sequence of Message frames closed by one End frame whose payload is the JSON of the
// handler's error, or empty for a clean end.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Flags say what a frame is.
type Flags byte

// The frame kinds.
const (
	// Message is a message sent with Send.
	Message Flags = 0
	// Open is the message a stream was opened with (the request body given to Stream).
	Open Flags = 1
	// End closes a response stream; its payload is the error JSON, or empty.
	End Flags = 2
)

// HeaderLen is the size of a frame header.
const HeaderLen = 5

// ErrTooLarge is returned for a frame longer than the reader's limit.
var ErrTooLarge = errors.New("frame: payload exceeds the message size limit")

// ErrBadFlags is returned for a frame of unknown kind.
var ErrBadFlags = errors.New("frame: unknown frame kind")

// Write writes one frame.
func Write(w io.Writer, f Flags, payload []byte) error {
	var hdr [HeaderLen]byte
	hdr[0] = byte(f)
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if len(payload) == 0 {
		_, err := w.Write(hdr[:])
		return err
	}
	buf := make([]byte, 0, HeaderLen+len(payload))
	buf = append(append(buf, hdr[:]...), payload...)
	_, err := w.Write(buf)
	return err
}

// Read reads one frame whose payload is at most limit bytes. It returns io.EOF only
// before the first byte of a frame; a frame cut short is io.ErrUnexpectedEOF. A length
// over limit is refused before anything is allocated for it.
func Read(r io.Reader, limit int64) (Flags, []byte, error) {
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	f := Flags(hdr[0])
	if f > End {
		return 0, nil, fmt.Errorf("%w: %d", ErrBadFlags, hdr[0])
	}
	n := int64(binary.BigEndian.Uint32(hdr[1:]))
	if n > limit {
		return 0, nil, fmt.Errorf("%w (%d > %d bytes)", ErrTooLarge, n, limit)
	}
	if n == 0 {
		return f, nil, nil
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return f, payload, nil
}
