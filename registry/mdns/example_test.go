package mdns_test

import (
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/mdns"
)

// The mDNS registry needs no address. This one names services under "example." instead
// of "micro." and collects answers to lookups for 200 ms.
func ExampleNewRegistry() {
	r := mdns.NewRegistry(mdns.Domain("example"), registry.Timeout(200*time.Millisecond))
	fmt.Println(r.String(), r.Options().Timeout)
	// Output: mdns 200ms
}
