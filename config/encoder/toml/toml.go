// Package toml is the TOML configuration encoder. The reader uses it for change sets
// whose Format is "toml".
package toml

import (
	"bytes"

	"github.com/BurntSushi/toml"

	"github.com/seed-b3892490/micro/config/encoder"
)

type tomlEncoder struct{}

// NewEncoder returns the TOML encoder.
func NewEncoder() encoder.Encoder { return tomlEncoder{} }

func (tomlEncoder) Encode(v interface{}) ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (tomlEncoder) Decode(d []byte, v interface{}) error {
	_, err := toml.NewDecoder(bytes.NewReader(d)).Decode(v)
	return err
}

func (tomlEncoder) String() string { return "toml" }
