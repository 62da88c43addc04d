package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/store"
)

// rulePrefix is the key prefix of rules in a store.
const rulePrefix = "auth/rules/"

// DefaultRulesRefresh is how often store-backed rules are read again, to take changes
// other processes made.
const DefaultRulesRefresh = 5 * time.Second

// NewStoreRules returns rules kept in s, so that they survive restarts and are shared by
// every process using the same store. The rules are read when it is made; Grant and
// Revoke write through to the store before they take effect here, so a change returns
// only once it is persistent and applies to the very next Verify in this process. Other
// processes see it within DefaultRulesRefresh: Verify reads the store again (in the
// calling goroutine, one call at a time) when the rules are older than that.
func NewStoreRules(s store.Store) (Rules, error) {
	if s == nil {
		return nil, errors.New("auth: NewStoreRules needs a store")
	}
	r := &storeRules{st: s, refresh: DefaultRulesRefresh}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

type storeRules struct {
	st      store.Store
	refresh time.Duration

	mu        sync.Mutex // serialises changes and reloads
	rules     atomic.Pointer[[]*Rule]
	loaded    atomic.Int64 // UnixNano of the last read
	reloading atomic.Bool
}

func (s *storeRules) load() []*Rule {
	if p := s.rules.Load(); p != nil {
		return *p
	}
	return nil
}

// reload reads every rule from the store.
func (s *storeRules) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.st.Read(rulePrefix, store.ReadPrefix())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: read rules: %w", err)
	}
	rules := make([]*Rule, 0, len(recs))
	for _, rec := range recs {
		var r Rule
		if err := json.Unmarshal(rec.Value, &r); err != nil || checkRule(&r) != nil {
			continue // not a rule of ours: skip it rather than lose every rule
		}
		rules = append(rules, &r)
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	s.rules.Store(&rules)
	s.loaded.Store(time.Now().UnixNano())
	return nil
}

func (s *storeRules) Verify(acc *Account, res *Resource, opts ...VerifyOption) error {
	if time.Since(time.Unix(0, s.loaded.Load())) > s.refresh && s.reloading.CompareAndSwap(false, true) {
		_ = s.reload() // on failure the rules in memory stay
		s.reloading.Store(false)
	}
	return Verify(s.load(), acc, res)
}

func (s *storeRules) Grant(rule *Rule) error {
	if err := checkRule(rule); err != nil {
		return err
	}
	b, err := json.Marshal(rule)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.Write(&store.Record{Key: rulePrefix + rule.ID, Value: b}); err != nil {
		return fmt.Errorf("auth: grant %q: %w", rule.ID, err)
	}
	s.rules.Store(withRule(s.load(), copyRule(rule)))
	return nil
}

func (s *storeRules) Revoke(rule *Rule) error {
	if rule == nil {
		return errors.New("auth: nil rule")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.Delete(rulePrefix + rule.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: revoke %q: %w", rule.ID, err)
	}
	s.rules.Store(withoutRule(s.load(), rule.ID))
	return nil
}

func (s *storeRules) List(...ListOption) ([]*Rule, error) { return copyRules(s.load()), nil }
