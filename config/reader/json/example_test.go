package json_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/reader/json"
	"github.com/seed-b3892490/micro/config/source"
)

// Merge decodes change sets by format and merges them, later ones winning key by key.
func ExampleNewReader() {
	r := json.NewReader()
	merged, _ := r.Merge(
		&source.ChangeSet{Format: "yaml", Data: []byte("server:\n  port: 8080\n  name: a\n")},
		&source.ChangeSet{Format: "toml", Data: []byte("[server]\nname = \"b\"\n")},
	)
	vals, _ := r.Values(merged)
	fmt.Println(string(vals.Bytes()))
	// Output: {"server":{"name":"b","port":8080}}
}
