package loader_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/loader"
	"github.com/seed-b3892490/micro/config/source"
)

// Copy gives a snapshot that shares nothing with the original.
func ExampleCopy() {
	s := &loader.Snapshot{Version: "1", ChangeSet: &source.ChangeSet{Data: []byte(`{"a":1}`)}}
	c := loader.Copy(s)
	c.ChangeSet.Data[1] = 'X'
	fmt.Println(string(s.ChangeSet.Data), string(c.ChangeSet.Data))
	// Output: {"a":1} {Xa":1}
}
