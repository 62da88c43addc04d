package codec_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/json"
	"github.com/seed-b3892490/micro/codec/text"
)

// Each codec package offers a Marshaler; pick one by Content-Type.
func ExampleMarshaler() {
	byType := map[string]codec.Marshaler{
		"application/json": json.Marshaler{},
		"text/plain":       text.Marshaler{},
	}
	b, _ := byType["application/json"].Marshal(map[string]string{"name": "alice"})
	fmt.Println(string(b), byType["text/plain"].String())
	// Output: {"name":"alice"} text
}
