package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/internal/testutil"
)

const waitLimit = 5 * time.Second

type result struct {
	cs  *source.ChangeSet
	err error
	at  time.Time
}

// collector calls Next in a loop on its own goroutine and hands the results to the test,
// so that every wait in the tests can be bounded.
type collector struct {
	w    source.Watcher
	ch   chan result
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func collect(t *testing.T, w source.Watcher) *collector {
	t.Helper()
	c := &collector{w: w, ch: make(chan result, 16), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			cs, err := w.Next()
			if errors.Is(err, source.ErrWatcherStopped) {
				return
			}
			select {
			case c.ch <- result{cs, err, time.Now()}:
			case <-c.quit:
				return
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func watch(t *testing.T, src source.Source) *collector {
	t.Helper()
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, w)
}

func (c *collector) stop() {
	c.once.Do(func() {
		c.w.Stop()
		close(c.quit)
		<-c.done
	})
}

// waitFor waits for a change set holding want and returns it with the data of the change
// sets seen before it. It fails the test after waitLimit.
func (c *collector) waitFor(t *testing.T, want string) (result, []string) {
	t.Helper()
	var others []string
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case r := <-c.ch:
			if r.err != nil {
				t.Logf("transient error: %v", r.err)
				continue
			}
			if string(r.cs.Data) == want {
				return r, others
			}
			others = append(others, string(r.cs.Data))
		case <-deadline.C:
			t.Fatalf("no change set with %q within %v (saw %q)", want, waitLimit, others)
		}
	}
}

// quiet fails if a change set arrives within d: for checking that nothing is emitted.
func (c *collector) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-c.ch:
		if r.err != nil {
			t.Fatalf("unexpected error: %v", r.err)
		}
		t.Fatalf("unexpected change set %q", r.cs.Data)
	case <-time.After(d):
	}
}

func checkChangeSet(t *testing.T, cs *source.ChangeSet, format string) {
	t.Helper()
	if cs.Format != format || cs.Source != "file" || cs.Checksum != cs.Sum() || cs.Timestamp.IsZero() {
		t.Fatalf("bad change set: format %q source %q checksum %q (sum %q) time %v",
			cs.Format, cs.Source, cs.Checksum, cs.Sum(), cs.Timestamp)
	}
}

func percentiles(lat []time.Duration) (p50, p99, maxLat time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p int) time.Duration { return s[(len(s)*p+99)/100-1] }
	return at(50), at(99), s[len(s)-1]
}

// TestH1SaveStyles is reliability battery H1 and issue 8's acceptance 2: one watcher per
// save style must see each of 100 edits, each within a second. It runs at full size once
// per test binary (testutil.Scenario); the battery's CI size is 20 per style.
func TestH1SaveStyles(t *testing.T) {
	testutil.Scenario(t)
	const edits = 100
	styles := []struct {
		name string
		save func(t *testing.T, path, data string)
	}{
		{"in-place", func(t *testing.T, path, data string) {
			writeFile(t, path, data)
		}},
		{"temp-rename", func(t *testing.T, path, data string) {
			tmp := filepath.Join(filepath.Dir(path), "x.tmp")
			writeFile(t, tmp, data)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete-recreate", func(t *testing.T, path, data string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data)
		}},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			writeFile(t, path, `{"n": -1}`)
			src := NewSource(WithPath(path))
			if _, err := src.Read(); err != nil {
				t.Fatal(err)
			}
			c := watch(t, src)

			lat := make([]time.Duration, 0, edits)
			empty, slow := 0, 0
			for i := range edits {
				want := fmt.Sprintf(`{"n": %d}`, i)
				start := time.Now()
				st.save(t, path, want)
				r, others := c.waitFor(t, want)
				checkChangeSet(t, r.cs, "json")
				d := r.at.Sub(start)
				lat = append(lat, d)
				if d > time.Second {
					slow++
				}
				for _, o := range others {
					if o != "" {
						t.Errorf("edit %d: unexpected change set %q before %q", i, o, want)
					}
					empty++
				}
			}
			p50, p99, mx := percentiles(lat)
			t.Logf("%s: %d/%d edits seen; latency p50 %v p99 %v max %v; empty intermediate change sets %d",
				st.name, len(lat), edits, p50, p99, mx, empty)
			if len(lat) != edits {
				t.Errorf("saw %d of %d edits", len(lat), edits)
			}
			if slow > 0 {
				t.Errorf("%d edits took more than 1s (max %v)", slow, mx)
			}
		})
	}

	// Truncate, write half, sync, write the rest: the watcher must end on the full
	// content; partial change sets are counted, not failed.
	t.Run("truncate-write", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, path, `{"n": -1}`)
		src := NewSource(WithPath(path))
		if _, err := src.Read(); err != nil {
			t.Fatal(err)
		}
		c := watch(t, src)

		const rounds = 50
		partial := 0
		lat := make([]time.Duration, 0, rounds)
		for i := range rounds {
			want := fmt.Sprintf(`{"n": %d, "pad": "%s"}`, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
			start := time.Now()
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			half := len(want) / 2
			if _, err := f.WriteString(want[:half]); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(want[half:]); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			r, others := c.waitFor(t, want)
			lat = append(lat, r.at.Sub(start))
			for _, o := range others {
				if o != "" && o != want[:half] {
					t.Errorf("round %d: change set %q is neither empty nor the first half", i, o)
				}
			}
			partial += len(others)
		}
		p50, p99, mx := percentiles(lat)
		t.Logf("truncate-write: %d/%d final contents seen; latency p50 %v p99 %v max %v; partial change sets %d",
			len(lat), rounds, p50, p99, mx, partial)
	})
}

// TestSymlinkSwap swaps a ConfigMap-style volume: config.yaml -> ..data/config.yaml, with
// ..data a symlink to a timestamped directory that is replaced by a rename.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	publish := func(gen int, data string) {
		t.Helper()
		ts := filepath.Join(dir, fmt.Sprintf("..2026_01_01_00_00_%02d", gen))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(ts, "config.yaml"), data)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if gen > 0 {
			if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..2026_01_01_00_00_%02d", gen-1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, "gen: 0\n")
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}

	src := NewSource(WithPath(path))
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	if string(cs.Data) != "gen: 0\n" || cs.Format != "yaml" {
		t.Fatalf("initial read %q %q", cs.Format, cs.Data)
	}
	c := watch(t, src)
	for gen := 1; gen <= 10; gen++ {
		want := fmt.Sprintf("gen: %d\n", gen)
		start := time.Now()
		publish(gen, want)
		r, _ := c.waitFor(t, want)
		checkChangeSet(t, r.cs, "yaml")
		if d := r.at.Sub(start); d > time.Second {
			t.Errorf("swap %d seen after %v", gen, d)
		}
	}
}

// TestSymlinkTargetEdit edits, in place, the file a symlink points to in another directory.
func TestSymlinkTargetEdit(t *testing.T) {
	target := filepath.Join(t.TempDir(), "real.json")
	writeFile(t, target, `{"v": 0}`)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	c := watch(t, src)
	for i := 1; i <= 5; i++ {
		want := fmt.Sprintf(`{"v": %d}`, i)
		writeFile(t, target, want)
		c.waitFor(t, want)
	}
}

func TestWatchBaseline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 1}`)

	t.Run("unchanged after Read", func(t *testing.T) {
		src := NewSource(WithPath(path))
		if _, err := src.Read(); err != nil {
			t.Fatal(err)
		}
		c := watch(t, src)
		c.quiet(t, 200*time.Millisecond)
	})
	t.Run("unchanged without Read", func(t *testing.T) {
		c := watch(t, NewSource(WithPath(path)))
		c.quiet(t, 200*time.Millisecond)
	})
	t.Run("changed between Read and Watch", func(t *testing.T) {
		src := NewSource(WithPath(path))
		if _, err := src.Read(); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, `{"v": 2}`)
		c := watch(t, src)
		c.waitFor(t, `{"v": 2}`)
	})
	t.Run("same content rewritten", func(t *testing.T) {
		src := NewSource(WithPath(path))
		if _, err := src.Read(); err != nil {
			t.Fatal(err)
		}
		c := watch(t, src)
		writeFile(t, path, `{"v": 2}`) // what Read returned
		c.quiet(t, 200*time.Millisecond)
		writeFile(t, path, `{"v": 3}`)
		c.waitFor(t, `{"v": 3}`)
	})
}

func TestWatchMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.toml")
	src := NewSource(WithPath(path))
	c := watch(t, src)

	writeFile(t, path, "a = 1\n")
	r, _ := c.waitFor(t, "a = 1\n")
	checkChangeSet(t, r.cs, "toml")

	// Deleted: nothing is emitted. Recreated unchanged: still nothing. Changed: emitted.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	c.quiet(t, 150*time.Millisecond)
	writeFile(t, path, "a = 1\n")
	c.quiet(t, 150*time.Millisecond)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "a = 2\n")
	c.waitFor(t, "a = 2\n")
}

// TestWatchEmptyFile: a file still empty after the quiet window is emitted as it is.
func TestWatchEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 1}`)
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	c := watch(t, src)
	writeFile(t, path, "")
	c.waitFor(t, "")
	writeFile(t, path, `{"v": 2}`)
	c.waitFor(t, `{"v": 2}`)
}

// TestWatchBusyFile: a file written without pause is still read (the debounce is bounded).
func TestWatchBusyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 0}`)
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	c := watch(t, src)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"v": %d}`, i)), 0o644); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond) // pacing, shorter than the debounce window
		}
	}()
	select {
	case r := <-c.ch:
		if r.err != nil {
			t.Errorf("error: %v", r.err)
		}
	case <-time.After(waitLimit):
		t.Error("no change set while the file was being written")
	}
	close(stop)
	wg.Wait()
}

func TestMultipleWatchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 0}`)
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	a, b := watch(t, src), watch(t, src)
	writeFile(t, path, `{"v": 1}`)
	a.waitFor(t, `{"v": 1}`)
	b.waitFor(t, `{"v": 1}`)

	a.stop()
	writeFile(t, path, `{"v": 2}`)
	b.waitFor(t, `{"v": 2}`)
}

func TestWriteIsWatched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 0}`)
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	c := watch(t, src)
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"v": 1}`)}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, `{"v": 1}`)
}

func TestStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{}`)
	w, err := NewSource(WithPath(path)).Watch()
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := w.Next()
		res <- err
	}()
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop() }()
	select {
	case err := <-res:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatalf("pending Next returned %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Stop did not unblock Next")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Stop did not return")
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

func TestStopReleasesFDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{}`)
	src := NewSource(WithPath(path))

	// A first watcher, so that what the runtime sets up once (the poller) is not counted.
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()

	before := countFDs(t)
	var ws []source.Watcher
	for range 20 {
		w, err := src.Watch()
		if err != nil {
			t.Fatal(err)
		}
		if w.(*watcher).fw == nil {
			t.Fatal("watcher fell back to polling; expected fsnotify")
		}
		ws = append(ws, w)
	}
	during := countFDs(t)
	for _, w := range ws {
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	after := countFDs(t)
	t.Logf("file descriptors: %d before, %d with 20 watchers, %d after Stop", before, during, after)
	if during <= before {
		t.Errorf("20 watchers hold no file descriptors (%d before, %d during): the count proves nothing", before, during)
	}
	if after > before {
		t.Errorf("file descriptors leaked: %d before, %d after", before, after)
	}
}

func setFSWatcher(t *testing.T, f func() (*fsnotify.Watcher, error)) {
	old := newFSWatcher
	newFSWatcher = f
	t.Cleanup(func() { newFSWatcher = old })
}

func TestPollingFallback(t *testing.T) {
	setFSWatcher(t, func() (*fsnotify.Watcher, error) {
		return nil, errors.New("too many open files (inotify instances)")
	})
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, "v: 0\n")
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	w, err := src.Watch()
	if err != nil {
		t.Fatalf("Watch failed instead of polling: %v", err)
	}
	if w.(*watcher).fw != nil {
		t.Fatal("watcher uses fsnotify despite the failing hook")
	}
	c := collect(t, w)

	c.quiet(t, 300*time.Millisecond) // more than one poll: the baseline holds
	saves := []func(data string){
		func(data string) { writeFile(t, path, data) },
		func(data string) {
			tmp := filepath.Join(filepath.Dir(path), "x.tmp")
			writeFile(t, tmp, data)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		},
		func(data string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data)
		},
	}
	for i, save := range saves {
		want := fmt.Sprintf("v: %d\n", i+1)
		start := time.Now()
		save(want)
		r, _ := c.waitFor(t, want)
		checkChangeSet(t, r.cs, "yaml")
		if d := r.at.Sub(start); d > time.Second {
			t.Errorf("poll %d seen after %v", i, d)
		}
	}
	c.stop()
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
}

// TestWatchErrorsAreTransient: an error on fsnotify's Errors channel comes out of Next, and
// the watcher goes on.
func TestWatchErrorsAreTransient(t *testing.T) {
	var fw *fsnotify.Watcher
	setFSWatcher(t, func() (*fsnotify.Watcher, error) {
		w, err := fsnotify.NewWatcher()
		fw = w
		return w, err
	})
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"v": 0}`)
	src := NewSource(WithPath(path))
	if _, err := src.Read(); err != nil {
		t.Fatal(err)
	}
	c := watch(t, src)

	boom := errors.New("boom")
	select {
	case fw.Errors <- boom:
	case <-time.After(waitLimit):
		t.Fatal("watcher does not read fsnotify errors")
	}
	select {
	case r := <-c.ch:
		if !errors.Is(r.err, boom) {
			t.Fatalf("Next returned %v, %v; want the fsnotify error", r.cs, r.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the fsnotify error did not come out of Next")
	}
	writeFile(t, path, `{"v": 1}`)
	c.waitFor(t, `{"v": 1}`)
}
