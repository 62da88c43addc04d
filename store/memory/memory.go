// Package memory is the memory store under the name of its own package: NewStore returns
// store.NewMemoryStore, records in the process's memory, for tests and caches.
package memory

import "github.com/seed-b3892490/micro/store"

// NewStore returns a new memory store (store.NewMemoryStore): nothing survives the
// process, and Close drops every record. Safe for concurrent use.
func NewStore(opts ...store.Option) store.Store { return store.NewMemoryStore(opts...) }
