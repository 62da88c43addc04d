package auth

import (
	"errors"
	"sync"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

func TestGrantRevokeList(t *testing.T) {
	r := NewRules()
	res := svc("greeter", "Greeter.Hello")
	if err := r.Verify(user, res); !errors.Is(err, ErrForbidden) {
		t.Fatalf("empty rules: %v", err)
	}
	g := rule("hello", "service", "greeter", "Greeter.Hello", ScopeAccount, AccessGranted, 0)
	if err := r.Grant(g); err != nil {
		t.Fatal(err)
	}
	g.Resource.Endpoint = "changed" // the rules keep their own copy
	if err := r.Verify(user, res); err != nil {
		t.Fatalf("after Grant: %v", err)
	}
	// Grant with the same ID replaces.
	if err := r.Grant(rule("hello", "service", "greeter", "Greeter.Hello", ScopeAccount, AccessDenied, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(user, res); err == nil {
		t.Fatal("replaced rule still grants")
	}
	list, _ := r.List()
	if len(list) != 1 || list[0].Access != AccessDenied {
		t.Fatalf("List = %+v", list)
	}
	list[0].ID = "mutated"
	if again, _ := r.List(); again[0].ID != "hello" {
		t.Fatal("List shares the rules")
	}
	if err := r.Revoke(&Rule{ID: "hello"}); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.List(); len(list) != 0 {
		t.Fatalf("after Revoke: %+v", list)
	}
	for _, bad := range []*Rule{nil, {Resource: res}, {ID: "x"}, {ID: "x", Resource: res, Access: 7}} {
		if err := r.Grant(bad); err == nil {
			t.Errorf("Grant(%+v): no error", bad)
		}
	}
	if err := r.Revoke(nil); err == nil {
		t.Error("Revoke(nil): no error")
	}
}

func TestRulesConcurrentGrantAndVerify(t *testing.T) {
	r := NewRules()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				_ = r.Verify(user, svc("greeter", "Greeter.Hello"))
			}
		}()
	}
	for i := 0; i < 200; i++ {
		_ = r.Grant(rule("r", "*", "*", "*", ScopeAccount, Access(i%2), 0))
	}
	wg.Wait()
}

// TestStoreRulesSurviveRestart is issue 9's acceptance 5: a rule granted at run time takes
// effect on the next call, and rules survive a restart with the file store.
func TestStoreRulesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() (store.Store, Rules) {
		st := store.NewFileStore(store.DirOption(dir), store.Table("auth"))
		r, err := NewStoreRules(st)
		if err != nil {
			t.Fatal(err)
		}
		return st, r
	}
	st, r := open()
	res := svc("greeter", "Greeter.Hello")
	if err := r.Verify(user, res); err == nil {
		t.Fatal("granted before any rule")
	}
	if err := r.Grant(rule("hello", "service", "greeter", "Greeter.*", ScopeAccount, AccessGranted, 1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(user, res); err != nil {
		t.Fatalf("the next call after Grant: %v", err)
	}
	if err := r.Grant(rule("no-admin", "service", "greeter", "Greeter.Admin", ScopeAccount, AccessDenied, 1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Grant(rule("gone", "*", "*", "*", ScopePublic, AccessGranted, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.Revoke(&Rule{ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	// Something else in the same table is not a rule and is skipped.
	if err := st.Write(&store.Record{Key: rulePrefix + "junk", Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, r = open()
	defer st.Close()
	list, _ := r.List()
	if len(list) != 2 || list[0].ID != "hello" || list[1].ID != "no-admin" {
		t.Fatalf("after restart: %+v", list)
	}
	if err := r.Verify(user, res); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := r.Verify(user, svc("greeter", "Greeter.Admin")); err == nil {
		t.Fatal("the deny rule was lost")
	}
	if err := r.Verify(nil, res); err == nil {
		t.Fatal("the revoked public rule came back")
	}
}

func TestStoreRulesSeeOtherWriters(t *testing.T) {
	st := store.NewMemoryStore()
	a, err := NewStoreRules(st)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewStoreRules(st)
	b.(*storeRules).refresh = 0 // read the store on every Verify
	if err := a.Grant(rule("g", "*", "*", "*", ScopeAccount, AccessGranted, 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(user, svc("x", "X.Y")); err != nil {
		t.Fatalf("another writer's grant not seen: %v", err)
	}
	if _, err := NewStoreRules(nil); err == nil {
		t.Fatal("nil store: no error")
	}
}

func TestNoopAuth(t *testing.T) {
	a := NewAuth(Namespace("ns"))
	acc, err := a.Generate("svc", WithScopes("s"), WithType("service"))
	if err != nil || acc.ID != "svc" || acc.Issuer != "ns" || !acc.HasScope("s") {
		t.Fatalf("%+v %v", acc, err)
	}
	if _, err := a.Inspect(""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("empty token: %v", err)
	}
	if acc, err := a.Inspect("anything"); err != nil || acc.ID == "" {
		t.Fatalf("%+v %v", acc, err)
	}
	tok, err := a.Token()
	if err != nil || tok.Expired() {
		t.Fatalf("noop token %+v %v", tok, err)
	}
	a.Init(Issuer("other"))
	if a.Options().Issuer != "other" || a.Options().Namespace != "ns" || a.String() != "noop" {
		t.Fatalf("Init: %+v", a.Options())
	}
}

func BenchmarkVerify(b *testing.B) {
	r := NewRules()
	for i, ep := range []string{"Greeter.Health", "Greeter.*", "Billing.*", "/api/*"} {
		_ = r.Grant(rule(ep, "service", "*", ep, ScopeAccount, AccessGranted, int32(i)))
	}
	_ = r.Grant(rule("deny-admin", "service", "*", "Greeter.Admin", ScopeAccount, AccessDenied, 9))
	res := svc("greeter", "Greeter.Hello")
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Verify(user, res); err != nil {
			b.Fatal(err)
		}
	}
}
