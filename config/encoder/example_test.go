package encoder_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/encoder"
	"github.com/seed-b3892490/micro/config/encoder/yaml"
)

// The reader picks an encoder by the change set's format, the encoder's String.
func Example() {
	byFormat := map[string]encoder.Encoder{}
	e := yaml.NewEncoder()
	byFormat[e.String()] = e
	var v map[string]int
	_ = byFormat["yaml"].Decode([]byte("port: 8080\n"), &v)
	fmt.Println(v["port"])
	// Output: 8080
}
