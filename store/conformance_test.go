package store_test

import (
	"testing"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// TestI1Conformance is battery row I1 for the stores of this package: the conformance
// suite over the memory store and the file store.
func TestI1Conformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		storetest.Run(t, func(testing.TB) store.Store { return store.NewMemoryStore() })
	})
	t.Run("File", func(t *testing.T) {
		dir := t.TempDir() // shared by the stores of the suite, as one process's stores share a directory
		storetest.Run(t, func(testing.TB) store.Store { return store.NewFileStore(store.DirOption(dir)) },
			storetest.Suite{Persistent: true})
	})
}
