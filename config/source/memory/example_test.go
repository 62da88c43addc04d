package memory_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/memory"
)

// Update replaces the document and wakes every watcher.
func ExampleNewSource() {
	src := memory.NewSource(memory.WithJSON([]byte(`{"a":1}`)))
	w, _ := src.Watch()
	defer w.Stop()
	src.(memory.Updater).Update(&source.ChangeSet{Data: []byte(`{"a":2}`)})
	cs, _ := w.Next()
	fmt.Println(string(cs.Data))
	// Output: {"a":2}
}
