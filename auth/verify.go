package auth

import "strings"

// Verify decides access to res for acc with rules, as described in the package doc: the
// matching rules that apply to acc, highest priority first, a denial beating a grant at
// equal priority; no applying rule denies.
func Verify(rules []*Rule, acc *Account, res *Resource) error {
	if res == nil {
		return ErrForbidden
	}
	decided := false
	var best int32
	granted := false
	for _, r := range rules {
		if r == nil || r.Resource == nil || !matches(r.Resource, res) || !applies(r.Scope, acc) {
			continue
		}
		switch {
		case !decided || r.Priority > best:
			decided, best, granted = true, r.Priority, r.Access == AccessGranted
		case r.Priority == best && r.Access != AccessGranted:
			granted = false
		}
	}
	if decided && granted {
		return nil
	}
	return ErrForbidden
}

// applies reports whether a rule of scope covers acc.
func applies(scope string, acc *Account) bool {
	switch scope {
	case ScopePublic:
		return true
	case ScopeAccount:
		return acc != nil
	}
	return acc.HasScope(scope)
}

func matches(rule, res *Resource) bool {
	return matchName(rule.Type, res.Type) && matchName(rule.Name, res.Name) && matchEndpoint(rule.Endpoint, res.Endpoint)
}

// matchName matches "*", an exact name, or a prefix ending in ".*".
func matchName(pattern, name string) bool {
	if pattern == "*" || pattern == name {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(name, p+".")
	}
	return false
}

// matchEndpoint matches "*", an exact endpoint, "Service.*" and path prefixes "/a/*".
func matchEndpoint(pattern, ep string) bool {
	if pattern == "*" || pattern == ep {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, "/*"); ok {
		return ep == p || strings.HasPrefix(ep, p+"/")
	}
	if p, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(ep, p+".")
	}
	return false
}
