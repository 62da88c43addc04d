package memory

import (
	"errors"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

func TestReadWithoutDataIsEmpty(t *testing.T) {
	cs, err := NewSource().Read()
	if err != nil || string(cs.Data) != "{}" || cs.Format != "json" || cs.Source != "memory" || cs.Checksum != cs.Sum() {
		t.Fatalf("%+v %v", cs, err)
	}
}

func TestYAMLAndChangeSet(t *testing.T) {
	cs, _ := NewSource(WithYAML([]byte("a: 1\n"))).Read()
	if cs.Format != "yaml" || string(cs.Data) != "a: 1\n" {
		t.Fatalf("%+v", cs)
	}
	in := &source.ChangeSet{Data: []byte(`{"x":1}`)}
	s := NewSource(WithChangeSet(in))
	in.Data[2] = 'y' // the source keeps its own copy
	cs, _ = s.Read()
	if string(cs.Data) != `{"x":1}` {
		t.Fatalf("source shares the caller's bytes: %s", cs.Data)
	}
	cs.Data[2] = 'z'
	again, _ := s.Read()
	if string(again.Data) != `{"x":1}` {
		t.Fatal("Read shares the source's bytes")
	}
}

func TestUpdateReachesEveryWatcherNewestFirst(t *testing.T) {
	s := NewSource()
	w1, _ := s.Watch()
	w2, _ := s.Watch()
	defer w1.Stop()
	defer w2.Stop()
	u := s.(Updater)
	u.Update(&source.ChangeSet{Data: []byte(`{"v":1}`)})
	u.Update(&source.ChangeSet{Data: []byte(`{"v":2}`)})
	for _, w := range []source.Watcher{w1, w2} {
		cs, err := w.Next()
		if err != nil || string(cs.Data) != `{"v":2}` {
			t.Fatalf("%s %v", cs.Data, err)
		}
	}
	if err := s.Write(&source.ChangeSet{Data: []byte(`{"v":3}`)}); err != nil {
		t.Fatal(err)
	}
	if cs, _ := w1.Next(); string(cs.Data) != `{"v":3}` {
		t.Fatalf("Write: %s", cs.Data)
	}
	u.Update(nil) // ignored
	if cs, _ := s.Read(); string(cs.Data) != `{"v":3}` {
		t.Fatal("nil update changed the source")
	}
}

func TestStopUnblocksNext(t *testing.T) {
	w, _ := NewSource().Watch()
	done := make(chan error, 1)
	go func() { _, err := w.Next(); done <- err }()
	_ = w.Stop()
	_ = w.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after Stop")
	}
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatal("Next after Stop must not block")
	}
}
