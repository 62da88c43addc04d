package yaml_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/encoder/yaml"
)

// Encode and decode a document.
func ExampleNewEncoder() {
	enc := yaml.NewEncoder()
	b, _ := enc.Encode(map[string]interface{}{"greeting": "hello"})
	var back map[string]interface{}
	_ = enc.Decode(b, &back)
	fmt.Println(enc.String(), back["greeting"])
	// Output: yaml hello
}
