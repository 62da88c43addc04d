package events

import (
	"errors"
	"testing"
	"time"
)

// TestStoreTTL: an event written with a 1 s TTL is there at 0.9 s and gone at 1.1 s,
// and no longer counts against MaxEvents; one without a TTL stays (battery row I1's
// TTL figure, on a clock the test moves).
func TestStoreTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	st := NewStore(WithMaxEvents(2)).(*memoryStore)
	st.now = func() time.Time { return now }
	if err := st.Write(&Event{ID: "short", Topic: "t"}, WithTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(&Event{ID: "forever", Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		evs, err := st.Read("t")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids
	}
	now = now.Add(900 * time.Millisecond)
	if got := read(); len(got) != 2 {
		t.Fatalf("at 0.9 s: %v, want both", got)
	}
	if err := st.Write(&Event{ID: "third", Topic: "u"}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("a third Write at 0.9 s: %v, want ErrStoreFull", err)
	}
	now = now.Add(200 * time.Millisecond)
	if got := read(); len(got) != 1 || got[0] != "forever" {
		t.Fatalf("at 1.1 s: %v, want [forever]", got)
	}
	if err := st.Write(&Event{ID: "third", Topic: "u"}); err != nil {
		t.Fatalf("a third Write once the first expired: %v", err)
	}
}
