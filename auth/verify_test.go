package auth

import (
	"errors"
	"fmt"
	"testing"
)

func rule(id, typ, name, ep, scope string, access Access, prio int32) *Rule {
	return &Rule{ID: id, Scope: scope, Access: access, Priority: prio, Resource: &Resource{Type: typ, Name: name, Endpoint: ep}}
}

func svc(name, ep string) *Resource { return &Resource{Type: "service", Name: name, Endpoint: ep} }

var (
	user    = &Account{ID: "alice", Type: "user", Scopes: []string{"user", "billing.read"}}
	admin   = &Account{ID: "root", Type: "user", Scopes: []string{"admin"}}
	service = &Account{ID: "billing", Type: "service", Scopes: []string{"service", "service:billing"}}
	noScope = &Account{ID: "bob"}
)

// TestG3RulePrecedence is reliability battery G3's table and issue 9's acceptance 3: each
// case is a set of rules, an account and a resource, and the decision.
func TestG3RulePrecedence(t *testing.T) {
	G, D := AccessGranted, AccessDenied
	cases := []struct {
		name  string
		rules []*Rule
		acc   *Account
		res   *Resource
		allow bool
	}{
		{"no rules deny", nil, user, svc("greeter", "Greeter.Hello"), false},
		{"no rules deny anonymous", nil, nil, svc("greeter", "Greeter.Hello"), false},
		{"public rule admits anonymous", []*Rule{rule("p", "service", "greeter", "Greeter.Health", ScopePublic, G, 0)}, nil, svc("greeter", "Greeter.Health"), true},
		{"public rule admits accounts too", []*Rule{rule("p", "*", "*", "*", ScopePublic, G, 0)}, user, svc("greeter", "Greeter.Hello"), true},
		{"account scope refuses anonymous", []*Rule{rule("a", "*", "*", "*", ScopeAccount, G, 0)}, nil, svc("greeter", "Greeter.Hello"), false},
		{"account scope admits any account", []*Rule{rule("a", "*", "*", "*", ScopeAccount, G, 0)}, noScope, svc("greeter", "Greeter.Hello"), true},
		{"named scope held", []*Rule{rule("s", "service", "billing", "*", "billing.read", G, 0)}, user, svc("billing", "Billing.Get"), true},
		{"named scope missing", []*Rule{rule("s", "service", "billing", "*", "billing.read", G, 0)}, admin, svc("billing", "Billing.Get"), false},
		{"named scope, anonymous", []*Rule{rule("s", "service", "billing", "*", "billing.read", G, 0)}, nil, svc("billing", "Billing.Get"), false},
		{"exact endpoint", []*Rule{rule("e", "service", "greeter", "Greeter.Hello", ScopeAccount, G, 0)}, user, svc("greeter", "Greeter.Hello"), true},
		{"other endpoint", []*Rule{rule("e", "service", "greeter", "Greeter.Hello", ScopeAccount, G, 0)}, user, svc("greeter", "Greeter.Bye"), false},
		{"endpoint is case-sensitive", []*Rule{rule("e", "service", "greeter", "Greeter.Hello", ScopeAccount, G, 0)}, user, svc("greeter", "greeter.hello"), false},
		{"Service.* wildcard", []*Rule{rule("w", "service", "greeter", "Greeter.*", ScopeAccount, G, 0)}, user, svc("greeter", "Greeter.Bye"), true},
		{"Service.* is not another service", []*Rule{rule("w", "service", "greeter", "Greeter.*", ScopeAccount, G, 0)}, user, svc("greeter", "GreeterAdmin.Bye"), false},
		{"Service.* is not the bare name", []*Rule{rule("w", "service", "greeter", "Greeter.*", ScopeAccount, G, 0)}, user, svc("greeter", "Greeter"), false},
		{"path prefix", []*Rule{rule("p", "api", "web", "/admin/*", "admin", G, 0)}, admin, &Resource{Type: "api", Name: "web", Endpoint: "/admin/users/1"}, true},
		{"path prefix covers its root", []*Rule{rule("p", "api", "web", "/admin/*", "admin", G, 0)}, admin, &Resource{Type: "api", Name: "web", Endpoint: "/admin"}, true},
		{"path prefix is not a string prefix", []*Rule{rule("p", "api", "web", "/admin/*", "admin", G, 0)}, admin, &Resource{Type: "api", Name: "web", Endpoint: "/administrator"}, false},
		{"name wildcard", []*Rule{rule("n", "service", "*", "*", ScopeAccount, G, 0)}, user, svc("anything", "X.Y"), true},
		{"name prefix wildcard", []*Rule{rule("n", "service", "go.micro.*", "*", ScopeAccount, G, 0)}, user, svc("go.micro.srv", "X.Y"), true},
		{"name prefix is not the bare prefix", []*Rule{rule("n", "service", "go.micro.*", "*", ScopeAccount, G, 0)}, user, svc("go.micro", "X.Y"), false},
		{"other name", []*Rule{rule("n", "service", "greeter", "*", ScopeAccount, G, 0)}, user, svc("billing", "X.Y"), false},
		{"type must match", []*Rule{rule("t", "api", "*", "*", ScopeAccount, G, 0)}, user, svc("greeter", "X.Y"), false},
		{"type wildcard", []*Rule{rule("t", "*", "greeter", "*", ScopeAccount, G, 0)}, user, svc("greeter", "X.Y"), true},
		{"higher priority grant beats deny", []*Rule{rule("d", "*", "*", "*", ScopeAccount, D, 1), rule("g", "*", "*", "*", ScopeAccount, G, 2)}, user, svc("greeter", "X.Y"), true},
		{"higher priority deny beats grant", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 1), rule("d", "service", "greeter", "Greeter.Admin", ScopeAccount, D, 5)}, user, svc("greeter", "Greeter.Admin"), false},
		{"lower priority deny loses", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 5), rule("d", "service", "greeter", "Greeter.Admin", ScopeAccount, D, 1)}, user, svc("greeter", "Greeter.Admin"), true},
		{"equal priority: deny beats grant", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 3), rule("d", "*", "*", "*", ScopeAccount, D, 3)}, user, svc("greeter", "X.Y"), false},
		{"equal priority: deny beats grant, listed first", []*Rule{rule("d", "*", "*", "*", ScopeAccount, D, 3), rule("g", "*", "*", "*", ScopeAccount, G, 3)}, user, svc("greeter", "X.Y"), false},
		{"a deny that does not apply is ignored", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 1), rule("d", "*", "*", "*", "admin", D, 9)}, user, svc("greeter", "X.Y"), true},
		{"deny for a scope applies to its holder", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 1), rule("d", "*", "*", "*", "admin", D, 9)}, admin, svc("greeter", "X.Y"), false},
		{"public deny refuses everyone", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, 1), rule("d", "service", "greeter", "*", ScopePublic, D, 2)}, admin, svc("greeter", "X.Y"), false},
		{"service account by its scope", []*Rule{rule("s", "service", "ledger", "Ledger.*", "service:billing", G, 0)}, service, svc("ledger", "Ledger.Post"), true},
		{"another service refused", []*Rule{rule("s", "service", "ledger", "Ledger.*", "service:billing", G, 0)}, &Account{ID: "shop", Type: "service", Scopes: []string{"service", "service:shop"}}, svc("ledger", "Ledger.Post"), false},
		{"negative priority still applies", []*Rule{rule("g", "*", "*", "*", ScopeAccount, G, -5)}, user, svc("greeter", "X.Y"), true},
		{"rule without resource ignored", []*Rule{{ID: "x", Scope: ScopePublic, Access: G}}, user, svc("greeter", "X.Y"), false},
		{"nil rule ignored", []*Rule{nil, rule("g", "*", "*", "*", ScopeAccount, G, 0)}, user, svc("greeter", "X.Y"), true},
		{"nil resource denied", []*Rule{rule("g", "*", "*", "*", ScopePublic, G, 0)}, user, nil, false},
		{"Go Micro example: public health", []*Rule{rule("public-health", "service", "*", "Greeter.Health", ScopePublic, G, 100), rule("authenticated-hello", "service", "*", "*", ScopeAccount, G, 50)}, nil, svc("greeter", "Greeter.Health"), true},
		{"Go Micro example: hello needs an account", []*Rule{rule("public-health", "service", "*", "Greeter.Health", ScopePublic, G, 100), rule("authenticated-hello", "service", "*", "*", ScopeAccount, G, 50)}, nil, svc("greeter", "Greeter.Hello"), false},
		{"Go Micro example: hello with an account", []*Rule{rule("public-health", "service", "*", "Greeter.Health", ScopePublic, G, 100), rule("authenticated-hello", "service", "*", "*", ScopeAccount, G, 50)}, user, svc("greeter", "Greeter.Hello"), true},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.rules, tc.acc, tc.res)
			if tc.allow && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if !tc.allow && !errors.Is(err, ErrForbidden) {
				t.Fatalf("allowed (err %v)", err)
			}
			if ref := reference(tc.rules, tc.acc, tc.res); ref != tc.allow {
				t.Fatalf("the reference model says %v", ref)
			}
			// The memory rules give the same answer.
			r := NewRules()
			for i, rl := range tc.rules {
				if rl == nil || rl.Resource == nil {
					continue
				}
				c := *rl
				c.ID = fmt.Sprintf("%s-%d", rl.ID, i)
				if err := r.Grant(&c); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.Verify(tc.acc, tc.res) == nil; got != tc.allow {
				t.Fatalf("memory rules: allowed %v", got)
			}
		})
	}
}

// reference is the rule model written as plainly as possible: sort the applying rules by
// priority and look at the top group.
func reference(rules []*Rule, acc *Account, res *Resource) bool {
	if res == nil {
		return false
	}
	type hit struct {
		prio int32
		deny bool
	}
	var hits []hit
	for _, r := range rules {
		if r == nil || r.Resource == nil {
			continue
		}
		if !refName(r.Resource.Type, res.Type) || !refName(r.Resource.Name, res.Name) || !refEndpoint(r.Resource.Endpoint, res.Endpoint) {
			continue
		}
		ok := false
		switch r.Scope {
		case "":
			ok = true
		case "*":
			ok = acc != nil
		default:
			if acc != nil {
				for _, s := range acc.Scopes {
					if s == r.Scope {
						ok = true
					}
				}
			}
		}
		if ok {
			hits = append(hits, hit{r.Priority, r.Access != AccessGranted})
		}
	}
	if len(hits) == 0 {
		return false
	}
	top := hits[0].prio
	for _, h := range hits {
		if h.prio > top {
			top = h.prio
		}
	}
	for _, h := range hits {
		if h.prio == top && h.deny {
			return false
		}
	}
	return true
}

func refName(p, n string) bool {
	if p == "*" || p == n {
		return true
	}
	if len(p) >= 2 && p[len(p)-2:] == ".*" {
		pre := p[:len(p)-1] // keep the dot
		return len(n) > len(pre)-1 && len(n) >= len(pre) && n[:len(pre)] == pre
	}
	return false
}

func refEndpoint(p, e string) bool {
	if p == "*" || p == e {
		return true
	}
	if len(p) >= 2 && p[len(p)-2:] == "/*" {
		root := p[:len(p)-2]
		return e == root || len(e) > len(root) && e[:len(root)+1] == root+"/"
	}
	return refName(p, e)
}

// FuzzVerify compares Verify with the reference model on rule sets built from the fuzz
// input: random types, names, endpoints (with every wildcard form), scopes, accesses and
// priorities.
func FuzzVerify(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(0), uint8(1), uint8(2))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}, uint8(3), uint8(4), uint8(5))
	types := []string{"*", "service", "api"}
	names := []string{"*", "greeter", "go.micro.*", "go.micro.srv", "billing"}
	eps := []string{"*", "Greeter.Hello", "Greeter.*", "/a/*", "/a", "/a/b", "Greeter.Bye", "greeter.hello"}
	scopes := []string{"", "*", "admin", "user"}
	accounts := []*Account{nil, {ID: "x"}, {ID: "a", Scopes: []string{"admin"}}, {ID: "u", Scopes: []string{"user", "admin"}}}
	f.Fuzz(func(t *testing.T, data []byte, ta, na, ea uint8) {
		var rules []*Rule
		for i := 0; i+6 <= len(data) && len(rules) < 16; i += 6 {
			d := data[i : i+6]
			rules = append(rules, &Rule{
				ID:       fmt.Sprint(i),
				Resource: &Resource{Type: types[int(d[0])%len(types)], Name: names[int(d[1])%len(names)], Endpoint: eps[int(d[2])%len(eps)]},
				Scope:    scopes[int(d[3])%len(scopes)],
				Access:   Access(d[4] % 2),
				Priority: int32(d[5]%4) - 1,
			})
		}
		res := &Resource{Type: types[1+int(ta)%2], Name: names[1+int(na)%(len(names)-1)], Endpoint: eps[1+int(ea)%(len(eps)-1)]}
		for _, acc := range accounts {
			got := Verify(rules, acc, res) == nil
			if want := reference(rules, acc, res); got != want {
				t.Fatalf("Verify %v, model %v for %+v on %+v with %d rules", got, want, acc, res, len(rules))
			}
		}
	})
}
