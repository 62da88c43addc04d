// Package wholebody implements the Codec methods shared by codecs whose message body is
// everything left on the stream (proto, bytes, text).
package wholebody

import (
	"io"

	"github.com/seed-b3892490/micro/codec"
)

// ReadBody reads everything left on r and decodes it with m into b; a nil b discards it.
func ReadBody(r io.Reader, m codec.Marshaler, b interface{}) error {
	data, err := io.ReadAll(r)
	if err != nil || b == nil {
		return err
	}
	return m.Unmarshal(data, b)
}

// Write encodes b with m and writes it to w; a nil b writes nothing.
func Write(w io.Writer, m codec.Marshaler, b interface{}) error {
	if b == nil {
		return nil
	}
	data, err := m.Marshal(b)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
