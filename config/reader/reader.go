// Package reader merges change sets from several sources into one document and reads
// values out of it. The json sub-package is the implementation micro uses.
package reader

import (
	"os"
	"strings"
	"time"

	"github.com/seed-b3892490/micro/config/encoder"
	"github.com/seed-b3892490/micro/config/encoder/json"
	"github.com/seed-b3892490/micro/config/encoder/toml"
	"github.com/seed-b3892490/micro/config/encoder/yaml"
	"github.com/seed-b3892490/micro/config/source"
)

// Reader merges change sets and builds Values from the result.
type Reader interface {
	// Merge decodes each change set by its Format and merges them in order: a later
	// change set overrides an earlier one key by key (maps merge, anything else is
	// replaced). The result is one change set in the reader's own format.
	Merge(...*source.ChangeSet) (*source.ChangeSet, error)
	// Values reads a change set made by Merge.
	Values(*source.ChangeSet) (Values, error)
	String() string
}

// Values is one version of the whole configuration. Get and Scan on one Values never see
// a mix of two versions.
type Values interface {
	// Bytes returns the whole document, encoded.
	Bytes() []byte
	// Get returns the value at path. A path that holds nothing gives a Value whose
	// methods return their defaults, and a nil error.
	Get(path ...string) (Value, error)
	// Set puts val at path, making the maps on the way.
	Set(val interface{}, path ...string)
	// Del removes the value at path.
	Del(path ...string)
	// Map returns a copy of the whole document.
	Map() map[string]interface{}
	// Scan decodes the whole document into v, as encoding/json would: fields the
	// document does not name keep the values they had.
	Scan(v interface{}) error
}

// Value is the configuration at one path. Each conversion returns def when the value is
// missing or cannot be converted; strings convert to numbers, booleans and durations
// when they parse (values from the environment arrive as strings), and numbers and
// booleans convert to strings.
type Value interface {
	Bool(def bool) bool
	Int(def int) int
	String(def string) string
	Float64(def float64) float64
	// Duration parses strings such as "1.5s"; a number is taken as nanoseconds.
	Duration(def time.Duration) time.Duration
	// StringSlice converts a list, or splits a string on commas.
	StringSlice(def []string) []string
	StringMap(def map[string]string) map[string]string
	// Scan decodes the value into val as encoding/json would; a missing value leaves val
	// as it was, so a pre-filled struct keeps its defaults.
	Scan(val interface{}) error
	// Bytes returns a string value's bytes as they are, anything else encoded as JSON.
	Bytes() []byte
}

// Options configure a Reader.
type Options struct {
	// Encoding maps a change set's Format to its decoder.
	Encoding map[string]encoder.Encoder
}

// Option sets a field of Options.
type Option func(o *Options)

// NewOptions returns Options with decoders for json, yaml (also as "yml") and toml, and
// opts applied.
func NewOptions(opts ...Option) Options {
	y := yaml.NewEncoder()
	o := Options{Encoding: map[string]encoder.Encoder{
		"json": json.NewEncoder(),
		"yaml": y,
		"yml":  y,
		"toml": toml.NewEncoder(),
	}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithEncoder adds e as the decoder of change sets whose Format is e.String().
func WithEncoder(e encoder.Encoder) Option {
	return func(o *Options) {
		if o.Encoding == nil {
			o.Encoding = map[string]encoder.Encoder{}
		}
		o.Encoding[e.String()] = e
	}
}

// ReplaceEnvVars replaces each ${NAME} in raw with the value of the environment variable
// NAME, and ${NAME:-default} with default when NAME is unset or empty. An unset variable
// without a default becomes the empty string; "$$" stands for a literal "$". The reader
// applies the same expansion to the string values of each decoded document, so a value
// holding quotes or newlines cannot break the document's syntax.
func ReplaceEnvVars(raw []byte) ([]byte, error) {
	return []byte(ExpandEnv(string(raw))), nil
}

// ExpandEnv is ReplaceEnvVars for one string.
func ExpandEnv(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !validEnvName(name) {
				b.WriteString(s[i : i+3+end])
			} else if v := os.Getenv(name); v != "" || !hasDef {
				b.WriteString(v)
			} else {
				b.WriteString(def)
			}
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
