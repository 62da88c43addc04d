// Package typecache keeps what a codec worked out about a Go type, built once per type:
// a short list copied on write, scanned by type (quicker than a sync.Map for the few
// types a process encodes), and a map beyond its first entries.
package typecache

import (
	"reflect"
	"sync"
	"sync/atomic"
)

// listMax bounds the list; types past it are looked up in a sync.Map.
const listMax = 64

// Cache holds one value of V per type. The zero Cache is ready to use.
type Cache[V any] struct {
	list     atomic.Pointer[[]entry[V]]
	mu       sync.Mutex
	overflow sync.Map // reflect.Type -> V
}

type entry[V any] struct {
	t reflect.Type
	v V
}

// Get returns t's value, building it with build the first time. Two goroutines may
// build the same type at once; one result is kept, and both get it.
func (c *Cache[V]) Get(t reflect.Type, build func(reflect.Type) V) V {
	var list []entry[V]
	if l := c.list.Load(); l != nil {
		list = *l
	}
	for i := range list {
		if list[i].t == t {
			return list[i].v
		}
	}
	if len(list) >= listMax {
		if v, ok := c.overflow.Load(t); ok {
			return v.(V)
		}
	}
	v := build(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.list.Load(); l != nil {
		list = *l
	}
	for i := range list {
		if list[i].t == t {
			return list[i].v // built by another goroutine meanwhile
		}
	}
	if len(list) >= listMax {
		got, _ := c.overflow.LoadOrStore(t, v)
		return got.(V)
	}
	grown := append(append(make([]entry[V], 0, len(list)+1), list...), entry[V]{t, v})
	c.list.Store(&grown)
	return v
}
