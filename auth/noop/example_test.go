package noop_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/noop"
)

// The noop auth accepts any non-empty token: for development only.
func Example() {
	a := noop.NewAuth(auth.Issuer("dev"))
	acc, err := a.Inspect("whatever")
	fmt.Println(a.String(), acc.Issuer, err)
	_, err = a.Inspect("")
	fmt.Println(err)
	// Output:
	// noop dev <nil>
	// invalid token provided
}
