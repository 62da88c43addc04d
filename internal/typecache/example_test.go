package typecache_test

import (
	"fmt"
	"reflect"

	"github.com/seed-b3892490/micro/internal/typecache"
)

func ExampleCache() {
	var fields typecache.Cache[int]
	count := func(t reflect.Type) int { return t.Elem().NumField() }
	type point struct{ X, Y int }
	fmt.Println(fields.Get(reflect.TypeFor[*point](), count))
	fmt.Println(fields.Get(reflect.TypeFor[*point](), nil)) // built already: nil is never called
	// Output:
	// 2
	// 2
}
