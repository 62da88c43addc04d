// Package json is micro's configuration reader: it decodes change sets in any format the
// reader's options know (json, yaml, toml by default), merges them into one JSON
// document, and serves values from it.
//
// Merging is deep: for each key, a map from a later change set merges into the map an
// earlier one had at the same key, and any other value (string, number, list) replaces
// what was there. Strings have ${NAME} environment references expanded after decoding
// (see reader.ExpandEnv). Numbers keep their exact text (json.Number), so large integers
// do not lose precision.
//
// A Values is immutable as far as readers can tell: Get, Scan and Bytes on one Values
// see one version of the document even while Set or Del run on it concurrently (they
// replace the document copy-on-write).
package json

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/seed-b3892490/micro/config/encoder"
	"github.com/seed-b3892490/micro/config/encoder/json"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source"
)

type jsonReader struct {
	opts reader.Options
	json encoder.Encoder
}

// NewReader returns the JSON reader with the given options.
func NewReader(opts ...reader.Option) reader.Reader {
	o := reader.NewOptions(opts...)
	return &jsonReader{opts: o, json: json.NewEncoder()}
}

// errEmpty reports a change set with no data at all. It is refused rather than read as an
// empty document, so that a file caught between truncation and its new contents never
// replaces a good configuration with nothing.
var errEmpty = errors.New("empty document")

func (r *jsonReader) Merge(sets ...*source.ChangeSet) (*source.ChangeSet, error) {
	var merged map[string]interface{}
	for _, cs := range sets {
		if cs == nil {
			continue
		}
		doc, err := r.decode(cs)
		if err != nil {
			return nil, err
		}
		merged = mergeMaps(merged, doc)
	}
	if merged == nil {
		merged = map[string]interface{}{}
	}
	data, err := r.json.Encode(merged)
	if err != nil {
		return nil, fmt.Errorf("config: encode merged document: %w", err)
	}
	cs := &source.ChangeSet{Timestamp: time.Now(), Data: data, Format: r.json.String(), Source: "json"}
	cs.Checksum = cs.Sum()
	return cs, nil
}

// decode turns one change set into a normalised tree with environment references
// expanded.
func (r *jsonReader) decode(cs *source.ChangeSet) (map[string]interface{}, error) {
	format := cs.Format
	if format == "" {
		format = "json"
	}
	enc, ok := r.opts.Encoding[format]
	if !ok {
		return nil, fmt.Errorf("config: %s: no decoder for format %q (add one with reader.WithEncoder)", describe(cs), format)
	}
	if len(bytes.TrimSpace(cs.Data)) == 0 {
		return nil, fmt.Errorf("config: %s: %w", describe(cs), errEmpty)
	}
	var raw interface{}
	if err := enc.Decode(cs.Data, &raw); err != nil {
		return nil, fmt.Errorf("config: %s: malformed %s: %w", describe(cs), format, err)
	}
	tree, err := normalize(raw, 0)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", describe(cs), err)
	}
	switch t := tree.(type) {
	case nil:
		return map[string]interface{}{}, nil // a document of only comments
	case map[string]interface{}:
		return t, nil
	default:
		return nil, fmt.Errorf("config: %s: the document must be a map of keys, not a %s", describe(cs), kind(tree))
	}
}

func describe(cs *source.ChangeSet) string {
	if cs.Source == "" {
		return "change set"
	}
	return "source " + strconv.Quote(cs.Source)
}

func (r *jsonReader) Values(cs *source.ChangeSet) (reader.Values, error) {
	if cs == nil {
		return nil, errors.New("config: no change set")
	}
	if cs.Format != "" && cs.Format != r.json.String() {
		// Not one of ours: merge it first so that Values reads any known format.
		m, err := r.Merge(cs)
		if err != nil {
			return nil, err
		}
		cs = m
	}
	return NewValues(cs.Data)
}

func (r *jsonReader) String() string { return "json" }
