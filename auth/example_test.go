package auth_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/auth"
)

// Rules decide access: the highest priority that applies wins, and at equal priority a
// denial beats a grant.
func Example() {
	rules := auth.NewRules()
	_ = rules.Grant(&auth.Rule{ID: "public-health", Scope: auth.ScopePublic, Access: auth.AccessGranted, Priority: 100,
		Resource: &auth.Resource{Type: "service", Name: "*", Endpoint: "Greeter.Health"}})
	_ = rules.Grant(&auth.Rule{ID: "accounts", Scope: auth.ScopeAccount, Access: auth.AccessGranted, Priority: 50,
		Resource: &auth.Resource{Type: "service", Name: "*", Endpoint: "*"}})
	_ = rules.Grant(&auth.Rule{ID: "no-admin", Scope: auth.ScopeAccount, Access: auth.AccessDenied, Priority: 50,
		Resource: &auth.Resource{Type: "service", Name: "greeter", Endpoint: "Greeter.Admin"}})

	alice := &auth.Account{ID: "alice"}
	for _, c := range []struct {
		acc *auth.Account
		ep  string
	}{{nil, "Greeter.Health"}, {nil, "Greeter.Hello"}, {alice, "Greeter.Hello"}, {alice, "Greeter.Admin"}} {
		err := rules.Verify(c.acc, &auth.Resource{Type: "service", Name: "greeter", Endpoint: c.ep})
		fmt.Println(c.ep, c.acc != nil, err == nil)
	}
	// Output:
	// Greeter.Health false true
	// Greeter.Hello false false
	// Greeter.Hello true true
	// Greeter.Admin true false
}
