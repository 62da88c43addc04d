package source_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/source"
)

// A change set's checksum identifies its data.
func ExampleChangeSet_Sum() {
	cs := &source.ChangeSet{Data: []byte(`{"a":1}`), Format: "json"}
	fmt.Println(cs.Sum())
	// Output: bb6cb5c68df4652941caf652a366f2d8
}
