package memory

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/loader"
	"github.com/seed-b3892490/micro/config/source"
	msource "github.com/seed-b3892490/micro/config/source/memory"
)

func nextSnap(t *testing.T, w loader.Watcher) (*loader.Snapshot, error) {
	t.Helper()
	type res struct {
		s   *loader.Snapshot
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := w.Next(); ch <- res{s, err} }()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(5 * time.Second):
		_ = w.Stop()
		<-ch
		t.Fatal("no snapshot within 5 s")
		return nil, nil
	}
}

func update(src source.Source, data string) {
	src.(msource.Updater).Update(&source.ChangeSet{Data: []byte(data)})
}

func TestVersionsIncrease(t *testing.T) {
	src := msource.NewSource(msource.WithJSON([]byte(`{"v":0}`)))
	l := NewLoader(WithSource(src))
	defer l.Close()
	w, _ := l.Watch()
	defer w.Stop()
	last := uint64(0)
	for i := 1; i <= 50; i++ {
		update(src, `{"v":`+strconv.Itoa(i)+`}`)
		s, err := nextSnap(t, w)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(s.Version, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("version %q after %d", s.Version, last)
		}
		last = n
	}
}

func TestMalformedUpdateKeepsTheSourcesLastGood(t *testing.T) {
	a := msource.NewSource(msource.WithJSON([]byte(`{"a":1}`)))
	b := msource.NewSource(msource.WithJSON([]byte(`{"b":1}`)))
	l := NewLoader()
	defer l.Close()
	if err := l.Load(a, b); err != nil {
		t.Fatal(err)
	}
	w, _ := l.Watch()
	defer w.Stop()
	update(a, `{"a":`)
	if _, err := nextSnap(t, w); err == nil || !strings.Contains(err.Error(), `source "memory"`) {
		t.Fatalf("malformed update: %v", err)
	}
	// Another source's good change still applies, over a's last good document.
	update(b, `{"b":2}`)
	s, err := nextSnap(t, w)
	if err != nil || string(s.ChangeSet.Data) != `{"a":1,"b":2}` {
		t.Fatalf("%v %v", s, err)
	}
}

func TestWatcherErrorsAreBounded(t *testing.T) {
	src := msource.NewSource()
	l := NewLoader(WithSource(src))
	defer l.Close()
	w, _ := l.Watch()
	defer w.Stop()
	// The memory source hands its watchers only the newest document, so report the
	// errors straight to the loader, as a failing source would one after another.
	for i := 0; i < 3*maxQueuedErrors; i++ {
		l.(*memoryLoader).report(errors.New("bad update " + strconv.Itoa(i)))
	}
	update(src, `{"ok":true}`)
	var errs int
	for {
		s, err := nextSnap(t, w)
		if err != nil {
			errs++
			continue
		}
		if string(s.ChangeSet.Data) != `{"ok":true}` {
			t.Fatalf("snapshot %s", s.ChangeSet.Data)
		}
		break
	}
	if errs == 0 || errs > maxQueuedErrors {
		t.Fatalf("%d errors queued (bound %d)", errs, maxQueuedErrors)
	}
}

// flaky is a source whose watchers fail on demand: the fault (a watch that breaks or
// cannot be made) cannot be caused for real with the memory source.
type flaky struct {
	source.Source
	mu        sync.Mutex
	failWatch int // Watch calls left to fail
	watches   int
	current   source.Watcher
}

func (f *flaky) Watch() (source.Watcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches++
	if f.failWatch > 0 {
		f.failWatch--
		return nil, errors.New("cannot watch now")
	}
	w, err := f.Source.Watch()
	f.current = w
	return w, err
}

func (f *flaky) breakWatcher() {
	f.mu.Lock()
	w := f.current
	f.mu.Unlock()
	_ = w.Stop()
}

func TestSourceWatchIsMadeAgain(t *testing.T) {
	inner := msource.NewSource(msource.WithJSON([]byte(`{"v":0}`)))
	f := &flaky{Source: inner}
	l := NewLoader()
	defer l.Close()
	_ = l.Load(f)
	w, _ := l.Watch()
	defer w.Stop()

	// The source's watcher ends on its own, and the next two Watch calls fail: the
	// loader reports the failures and watches again.
	f.mu.Lock()
	f.failWatch = 2
	f.mu.Unlock()
	f.breakWatcher()
	for i := 0; i < 2; i++ {
		if _, err := nextSnap(t, w); err == nil || !strings.Contains(err.Error(), "cannot watch now") {
			t.Fatalf("watch failure %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		ok := f.watches >= 4 && f.current != nil
		f.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loader did not watch the source again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	update(inner, `{"v":1}`)
	s, err := nextSnap(t, w)
	if err != nil || string(s.ChangeSet.Data) != `{"v":1}` {
		t.Fatalf("after re-watching: %v %v", s, err)
	}
}

func TestClosedLoader(t *testing.T) {
	l := NewLoader(WithSource(msource.NewSource()))
	w, _ := l.Watch()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := l.Load(msource.NewSource()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync: %v", err)
	}
	if _, err := l.Watch(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch: %v", err)
	}
	if s, err := l.Snapshot(); err != nil || string(s.ChangeSet.Data) != "{}" {
		t.Fatalf("Snapshot after Close: %v %v", s, err)
	}
	_ = l.Close()
}
