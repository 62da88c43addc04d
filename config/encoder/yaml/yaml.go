// Package yaml is the YAML configuration encoder. The reader uses it for change sets whose
// Format is "yaml" or "yml".
package yaml

import (
	"go.yaml.in/yaml/v3"

	"github.com/seed-b3892490/micro/config/encoder"
)

type yamlEncoder struct{}

// NewEncoder returns the YAML encoder.
func NewEncoder() encoder.Encoder { return yamlEncoder{} }

func (yamlEncoder) Encode(v interface{}) ([]byte, error) { return yaml.Marshal(v) }

func (yamlEncoder) Decode(d []byte, v interface{}) error { return yaml.Unmarshal(d, v) }

func (yamlEncoder) String() string { return "yaml" }
