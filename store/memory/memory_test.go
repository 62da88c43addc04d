package memory_test

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/memory"
	"github.com/seed-b3892490/micro/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the conformance suite over memory.NewStore.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(testing.TB) store.Store { return memory.NewStore() })
}

func TestNewStoreTakesOptions(t *testing.T) {
	s := memory.NewStore(store.Table("t"))
	if s.String() != "memory" || s.Options().Table != "t" {
		t.Fatalf("%s %+v", s, s.Options())
	}
}

func ExampleNewStore() {
	s := memory.NewStore()
	_ = s.Write(&store.Record{Key: "greeting", Value: []byte("hello")})
	recs, _ := s.Read("greeting")
	fmt.Println(string(recs[0].Value))
	// Output: hello
}
