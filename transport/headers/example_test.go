package headers_test

import (
	"fmt"
	"net/http"

	"github.com/seed-b3892490/micro/transport/headers"
)

// Header names travel in canonical form over HTTP: look them up with http.Header.Get (or
// metadata.Get), which folds case.
func Example() {
	h := http.Header{}
	h.Set(headers.ID, "42")
	fmt.Println(h.Get("micro-id"), headers.Endpoint)
	// Output: 42 Micro-Endpoint
}
