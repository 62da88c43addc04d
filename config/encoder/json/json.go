// Package json is the JSON configuration encoder, the default.
package json

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/seed-b3892490/micro/config/encoder"
)

type jsonEncoder struct{}

// NewEncoder returns the JSON encoder. Decode keeps numbers exact (json.Number) when it
// decodes into an interface{}, and refuses trailing data after the document.
func NewEncoder() encoder.Encoder { return jsonEncoder{} }

func (jsonEncoder) Encode(v interface{}) ([]byte, error) { return json.Marshal(v) }

func (jsonEncoder) Decode(d []byte, v interface{}) error {
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("json: unexpected data after the document")
	}
	return nil
}

func (jsonEncoder) String() string { return "json" }
