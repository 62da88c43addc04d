// Package tree builds the documents of the config sources that assemble one from named
// values (env, flag, cli): paths set into nested maps, then encoded as a change set.
package tree

import (
	"time"

	"github.com/seed-b3892490/micro/config/encoder"
	"github.com/seed-b3892490/micro/config/source"
)

// Set puts v at path in m, making maps on the way. A deeper path wins over a shallower
// one whatever the order they are set in: a map replaces a value in its way, and a value
// never replaces a map.
func Set(m map[string]interface{}, path []string, v interface{}) {
	if len(path) == 0 {
		return
	}
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if _, isMap := m[last].(map[string]interface{}); !isMap {
		m[last] = v
	}
}

// ChangeSet encodes root with enc as a change set of the named source.
func ChangeSet(enc encoder.Encoder, name string, root map[string]interface{}) (*source.ChangeSet, error) {
	data, err := enc.Encode(root)
	if err != nil {
		return nil, err
	}
	cs := &source.ChangeSet{Timestamp: time.Now(), Format: enc.String(), Source: name, Data: data}
	cs.Checksum = cs.Sum()
	return cs, nil
}
