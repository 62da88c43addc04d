package events_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/seed-b3892490/micro/events"
)

func idsOf(evs []*events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestStoreReadWrite: Read returns copies of a topic's events in write order, paged by
// ReadOffset and ReadLimit; bad input gives clear errors.
func TestStoreReadWrite(t *testing.T) {
	s := events.NewStore()
	var want []string
	for i := 0; i < 5; i++ {
		e := &events.Event{ID: fmt.Sprint("e", i), Topic: "t", Metadata: map[string]string{"i": fmt.Sprint(i)}, Payload: []byte{byte(i)}}
		if err := s.Write(e); err != nil {
			t.Fatal(err)
		}
		e.Payload[0] = 99 // the store has its own copy
		e.Metadata["i"] = "changed"
		want = append(want, e.ID)
	}
	if err := s.Write(&events.Event{ID: "other", Topic: "u"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Read("t")
	if err != nil || !slices.Equal(idsOf(all), want) {
		t.Fatalf("Read: %v %v, want %v", idsOf(all), err, want)
	}
	for i, e := range all {
		if e.Payload[0] != byte(i) || e.Metadata["i"] != fmt.Sprint(i) {
			t.Errorf("event %d: %v %v: changed after Write", i, e.Payload, e.Metadata)
		}
	}
	all[0].Payload[0] = 42 // nor does a reader change it
	again, _ := s.Read("t", events.ReadLimit(1))
	if again[0].Payload[0] != 0 {
		t.Error("a reader's change reached the store")
	}
	for _, c := range []struct {
		opts []events.ReadOption
		want []string
	}{
		{[]events.ReadOption{events.ReadLimit(2)}, want[:2]},
		{[]events.ReadOption{events.ReadOffset(3)}, want[3:]},
		{[]events.ReadOption{events.ReadOffset(1), events.ReadLimit(2)}, want[1:3]},
		{[]events.ReadOption{events.ReadOffset(5)}, nil},
		{[]events.ReadOption{events.ReadOffset(1 << 31), events.ReadLimit(1 << 31)}, nil},
		{[]events.ReadOption{events.ReadLimit(100)}, want},
	} {
		got, err := s.Read("t", c.opts...)
		if err != nil || !slices.Equal(idsOf(got), c.want) {
			t.Errorf("Read with %d options: %v %v, want %v", len(c.opts), idsOf(got), err, c.want)
		}
	}
	if got, err := s.Read("nothing-here"); err != nil || len(got) != 0 {
		t.Errorf("Read of an unknown topic: %v %v", got, err)
	}
	if _, err := s.Read(""); !errors.Is(err, events.ErrMissingTopic) {
		t.Errorf("Read(\"\"): %v", err)
	}
	if err := s.Write(nil); !errors.Is(err, events.ErrMissingEvent) {
		t.Errorf("Write(nil): %v", err)
	}
	if err := s.Write(&events.Event{ID: "x"}); !errors.Is(err, events.ErrMissingTopic) {
		t.Errorf("Write without a topic: %v", err)
	}
}

// TestStoreMaxEvents: a store with WithMaxEvents refuses writes beyond it.
func TestStoreMaxEvents(t *testing.T) {
	s := events.NewStore(events.WithMaxEvents(2))
	for i := 0; i < 2; i++ {
		if err := s.Write(&events.Event{Topic: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(&events.Event{Topic: "u"}); !errors.Is(err, events.ErrStoreFull) {
		t.Fatalf("third Write: %v, want ErrStoreFull", err)
	}
}

// TestStoreConcurrent: concurrent writers and readers (for -race); every write is read.
func TestStoreConcurrent(t *testing.T) {
	s := events.NewStore()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if err := s.Write(&events.Event{Topic: "t", ID: fmt.Sprint(w, "-", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := s.Read("t", events.ReadLimit(10)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, _ := s.Read("t"); len(got) != 400 {
		t.Fatalf("%d events, want 400", len(got))
	}
}

// TestPackageRead: Read uses a memory store made on first use, or DefaultStore.
func TestPackageRead(t *testing.T) {
	if got, err := events.Read("package-read"); err != nil || len(got) != 0 {
		t.Fatalf("Read: %v %v", got, err)
	}
	mine := events.NewStore()
	if err := mine.Write(&events.Event{ID: "a", Topic: "package-read"}); err != nil {
		t.Fatal(err)
	}
	events.DefaultStore = mine
	defer func() { events.DefaultStore = nil }()
	if got, err := events.Read("package-read"); err != nil || !slices.Equal(idsOf(got), []string{"a"}) {
		t.Fatalf("Read via DefaultStore: %v %v", idsOf(got), err)
	}
}
