package typecache

import (
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
)

// types returns n distinct types: arrays of n lengths.
func types(n int) []reflect.Type {
	out := make([]reflect.Type, n)
	for i := range out {
		out[i] = reflect.ArrayOf(i, reflect.TypeFor[byte]())
	}
	return out
}

func TestBuildsOncePerType(t *testing.T) {
	var c Cache[int]
	var builds atomic.Int32
	build := func(t reflect.Type) int { builds.Add(1); return t.Len() }
	ts := types(listMax + 40) // past the list, into the map
	for round := 0; round < 3; round++ {
		for i, ty := range ts {
			if got := c.Get(ty, build); got != i {
				t.Fatalf("Get(%v) = %d, want %d", ty, got, i)
			}
		}
	}
	if n := builds.Load(); int(n) != len(ts) {
		t.Fatalf("%d builds for %d types", n, len(ts))
	}
}

func TestConcurrentGet(t *testing.T) {
	var c Cache[*int]
	ts := types(listMax * 2)
	var wg sync.WaitGroup
	seen := make([][]*int, 8)
	for g := range seen {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ty := range ts {
				seen[g] = append(seen[g], c.Get(ty, func(t reflect.Type) *int { n := t.Len(); return &n }))
			}
		}()
	}
	wg.Wait()
	for g := 1; g < len(seen); g++ {
		for i := range ts {
			if seen[g][i] != seen[0][i] {
				t.Fatalf("goroutines got different values for %v", ts[i])
			}
		}
	}
}

func BenchmarkGet(b *testing.B) {
	var c Cache[int]
	ts := types(8)
	for _, ty := range ts {
		c.Get(ty, func(t reflect.Type) int { return t.Len() })
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Get(ts[i&7], nil)
	}
}
