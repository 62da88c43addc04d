// Package encoder turns configuration documents into Go values and back. The json, yaml
// and toml sub-packages hold the encoders micro ships; the reader picks one by a change
// set's Format.
package encoder

// Encoder encodes and decodes one document format.
type Encoder interface {
	Encode(interface{}) ([]byte, error)
	Decode([]byte, interface{}) error
	// String names the format, as change sets name it: "json", "yaml", "toml".
	String() string
}
