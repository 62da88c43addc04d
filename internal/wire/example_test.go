package wire_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/internal/wire"
)

// A header block encoded twice on one connection: the second time, the pairs the first
// one added to the table cost one byte each.
func Example() {
	var enc wire.Encoder
	dec := wire.Decoder{MaxBytes: 1 << 20, MaxFields: 100}
	fields := wire.Fields{{Key: "Micro-Endpoint", Value: "Greeter.Hello"}, {Key: "Timeout", Value: "5000000000"}}
	for i := 0; i < 2; i++ {
		var block []byte
		for _, f := range fields {
			block = enc.AppendField(block, f.Key, f.Value)
		}
		block = wire.AppendEnd(block)
		got, rest, err := dec.Decode(append(block, "body"...), nil)
		fmt.Println(len(block), got, string(rest), err)
	}
	// Output:
	// 43 [{Micro-Endpoint Greeter.Hello} {Timeout 5000000000}] body <nil>
	// 14 [{Micro-Endpoint Greeter.Hello} {Timeout 5000000000}] body <nil>
}
