package file

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/seed-b3892490/micro/config/source"
)

// Tunables and test hooks. They are read when a watcher is created.
var (
	// newFSWatcher makes the fsnotify watcher; tests replace it to force the polling fallback.
	newFSWatcher = fsnotify.NewWatcher
	// debounceWindow is how long a watched directory must stay quiet before the file is read.
	debounceWindow = 15 * time.Millisecond
	// maxDelay bounds the debounce: a file that keeps changing is still read this often.
	maxDelay = 150 * time.Millisecond
	// pollInterval is how often the polling fallback reads the file.
	pollInterval = 250 * time.Millisecond
)

// watcher watches one file. A single goroutine (run or poll) owns the fields marked
// "loop": it reads the file, decides what to emit and hands change sets to Next.
type watcher struct {
	f    *file
	path string // absolute path of the file

	fw      *fsnotify.Watcher // nil when polling
	watched map[string]bool   // loop: directories added to fw

	debounce, maxDelay, pollEvery time.Duration

	lastSent string            // loop: checksum of the last change set emitted (or the baseline)
	pending  *source.ChangeSet // loop: a change not yet taken by Next

	out  chan *source.ChangeSet
	errs chan error // transient errors, at most one kept
	done chan struct{}

	stopOnce sync.Once
	stopErr  error
	wg       sync.WaitGroup
}

func newWatcher(f *file) (*watcher, error) {
	abs, err := filepath.Abs(f.path)
	if err != nil {
		return nil, fmt.Errorf("file source: watching %s: %w", f.path, err)
	}
	w := &watcher{
		f:         f,
		path:      abs,
		watched:   make(map[string]bool),
		debounce:  debounceWindow,
		maxDelay:  maxDelay,
		pollEvery: pollInterval,
		out:       make(chan *source.ChangeSet),
		errs:      make(chan error, 1),
		done:      make(chan struct{}),
	}

	// Watch before taking the baseline, so that no change made after it is missed.
	if fw, err := newFSWatcher(); err == nil {
		dir := filepath.Dir(abs)
		if err := fw.Add(dir); err == nil {
			w.fw = fw
			w.watched[dir] = true
			w.syncWatches()
		} else {
			fw.Close()
		}
	}

	f.mu.Lock()
	base := f.lastRead
	f.mu.Unlock()
	if base == "" {
		if cs, err := f.load(abs); err == nil {
			base = cs.Checksum
		}
	}
	w.lastSent = base

	w.wg.Add(1)
	if w.fw != nil {
		go w.run()
	} else {
		go w.poll()
	}
	return w, nil
}

// syncWatches keeps fw watching the file's directory and, when the path is a symlink, the
// directory of the file it resolves to (dropping target directories it no longer uses).
func (w *watcher) syncWatches() {
	want := map[string]bool{filepath.Dir(w.path): true}
	if target, err := filepath.EvalSymlinks(w.path); err == nil {
		want[filepath.Dir(target)] = true
	}
	for dir := range want {
		if !w.watched[dir] && w.fw.Add(dir) == nil {
			w.watched[dir] = true
		}
	}
	for dir := range w.watched {
		if !want[dir] {
			w.fw.Remove(dir) // it may be gone already (a replaced ConfigMap data dir)
			delete(w.watched, dir)
		}
	}
}

// run is the loop of an fsnotify watcher: every event (re)starts the debounce timer; when
// it fires the file is read.
func (w *watcher) run() {
	defer w.wg.Done()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		timerC <-chan time.Time // nil while no read is scheduled
		since  time.Time        // when the scheduled read was first asked for
	)
	schedule := func() {
		now := time.Now()
		if timerC == nil {
			since = now
		}
		d := w.debounce
		if rest := since.Add(w.maxDelay).Sub(now); rest < d {
			d = max(rest, 0)
		}
		timer.Reset(d)
		timerC = timer.C
	}

	// A first read catches changes made between the source's Read and this Watch.
	schedule()
	for {
		var out chan<- *source.ChangeSet
		if w.pending != nil {
			out = w.out
		}
		select {
		case <-w.done:
			return
		case _, ok := <-w.fw.Events:
			if !ok {
				return
			}
			schedule()
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			// An overflow means events were lost: read again to be sure.
			w.report(err)
			schedule()
		case <-timerC:
			timerC = nil
			w.check()
			w.syncWatches()
		case out <- w.pending:
			w.sent()
		}
	}
}

// poll is the loop of the fallback watcher: the file is read every pollEvery.
func (w *watcher) poll() {
	defer w.wg.Done()

	ticker := time.NewTicker(w.pollEvery)
	defer ticker.Stop()
	w.check()
	for {
		var out chan<- *source.ChangeSet
		if w.pending != nil {
			out = w.out
		}
		select {
		case <-w.done:
			return
		case <-ticker.C:
			w.check()
		case out <- w.pending:
			w.sent()
		}
	}
}

// check reads the file and makes it the pending change if it differs from what was last
// emitted. A missing file is not a change; other read errors are reported to Next.
func (w *watcher) check() {
	cs, err := w.f.load(w.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.report(err)
		}
		return
	}
	switch {
	case cs.Checksum == w.lastSent:
		w.pending = nil // changed back before Next took the change
	case w.pending != nil && w.pending.Checksum == cs.Checksum:
		// already pending
	default:
		w.pending = cs
	}
}

func (w *watcher) sent() {
	w.lastSent = w.pending.Checksum
	w.pending = nil
}

// report hands a transient error to Next, dropping it if one is already waiting.
func (w *watcher) report(err error) {
	err = fmt.Errorf("file source: watching %s: %w", w.f.path, err)
	select {
	case w.errs <- err:
	default:
	}
}

func (w *watcher) Next() (*source.ChangeSet, error) {
	select {
	case <-w.done:
		return nil, source.ErrWatcherStopped
	default:
	}
	select {
	case cs := <-w.out:
		return cs, nil
	case err := <-w.errs:
		return nil, err
	case <-w.done:
		return nil, source.ErrWatcherStopped
	}
}

func (w *watcher) Stop() error {
	w.stopOnce.Do(func() {
		close(w.done)
		w.wg.Wait()
		if w.fw != nil {
			w.stopErr = w.fw.Close()
		}
	})
	return w.stopErr
}
