package auth

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// NewRules returns rules held in memory, empty: every resource is denied until a rule
// grants it. Verify reads without locking, so it costs the same under any number of
// concurrent calls; Grant and Revoke copy the rule list.
func NewRules() Rules { return &memoryRules{} }

type memoryRules struct {
	mu    sync.Mutex // serialises changes
	rules atomic.Pointer[[]*Rule]
}

func (m *memoryRules) load() []*Rule {
	if p := m.rules.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *memoryRules) Verify(acc *Account, res *Resource, opts ...VerifyOption) error {
	return Verify(m.load(), acc, res)
}

// checkRule refuses rules Verify could not use.
func checkRule(r *Rule) error {
	if r == nil {
		return errors.New("auth: nil rule")
	}
	if r.ID == "" {
		return errors.New("auth: a rule needs an ID")
	}
	if r.Resource == nil {
		return fmt.Errorf("auth: rule %q has no resource", r.ID)
	}
	if r.Access != AccessGranted && r.Access != AccessDenied {
		return fmt.Errorf("auth: rule %q has unknown access %d", r.ID, r.Access)
	}
	return nil
}

func copyRule(r *Rule) *Rule {
	c := *r
	res := *r.Resource
	c.Resource = &res
	return &c
}

func (m *memoryRules) Grant(rule *Rule) error {
	if err := checkRule(rule); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules.Store(withRule(m.load(), copyRule(rule)))
	return nil
}

func (m *memoryRules) Revoke(rule *Rule) error {
	if rule == nil {
		return errors.New("auth: nil rule")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules.Store(withoutRule(m.load(), rule.ID))
	return nil
}

func (m *memoryRules) List(...ListOption) ([]*Rule, error) {
	return copyRules(m.load()), nil
}

// withRule returns a new list with r in place of any rule with its ID, sorted by ID.
func withRule(rules []*Rule, r *Rule) *[]*Rule {
	out := make([]*Rule, 0, len(rules)+1)
	for _, e := range rules {
		if e.ID != r.ID {
			out = append(out, e)
		}
	}
	out = append(out, r)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return &out
}

func withoutRule(rules []*Rule, id string) *[]*Rule {
	out := make([]*Rule, 0, len(rules))
	for _, e := range rules {
		if e.ID != id {
			out = append(out, e)
		}
	}
	return &out
}

func copyRules(rules []*Rule) []*Rule {
	out := make([]*Rule, len(rules))
	for i, r := range rules {
		out[i] = copyRule(r)
	}
	return out
}
