package memory_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config/loader/memory"
	"github.com/seed-b3892490/micro/config/source"
	msource "github.com/seed-b3892490/micro/config/source/memory"
)

// A loader merges its sources and yields a new snapshot when one changes; a change that
// cannot be read is reported and the snapshot stays.
func ExampleNewLoader() {
	src := msource.NewSource(msource.WithJSON([]byte(`{"v":1}`)))
	l := memory.NewLoader()
	defer l.Close()
	_ = l.Load(src)
	w, _ := l.Watch("v")
	defer w.Stop()

	src.(msource.Updater).Update(&source.ChangeSet{Data: []byte(`{"v":`)})
	_, err := w.Next()
	fmt.Println(err != nil)
	src.(msource.Updater).Update(&source.ChangeSet{Data: []byte(`{"v":2}`)})
	snap, _ := w.Next()
	fmt.Println(string(snap.ChangeSet.Data))
	// Output:
	// true
	// {"v":2}
}
