// Package memory is micro's configuration loader: it keeps the last good document of each
// source in memory, merges them in the order the sources were loaded (a later source
// overrides an earlier one key by key), and rebuilds the merged snapshot whenever a
// source's watcher yields a change.
//
// A change the reader cannot decode (malformed JSON, YAML or TOML, an empty document) is
// refused: that source keeps its last good document, the merged snapshot does not move,
// and every watcher's Next returns the error once. A source whose watcher fails is
// watched again with a growing delay (50 ms doubling to 5 s) until the loader is closed.
//
// Each source being watched costs one goroutine, owned by the loader and stopped by
// Close; a loader with no sources starts none.
package memory

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/config/loader"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/reader/json"
	"github.com/seed-b3892490/micro/config/source"
)

// ErrClosed is returned by Load and Sync on a closed loader.
var ErrClosed = errors.New("config: loader closed")

const (
	minRewatch = 50 * time.Millisecond
	maxRewatch = 5 * time.Second
	// maxQueuedErrors bounds the errors a watcher holds for a reader that does not call
	// Next; the oldest are dropped first.
	maxQueuedErrors = 16
)

type memoryLoader struct {
	opts loader.Options
	exit chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sources  []*loaded
	snap     *loader.Snapshot
	vals     reader.Values
	version  uint64
	watchers map[*watcher]struct{}
}

// loaded is one source with its last good document.
type loaded struct {
	src source.Source
	set *source.ChangeSet // nil until the source has produced a readable document
	w   source.Watcher    // its current watcher, stopped by Close
}

// NewLoader returns a memory loader. Sources given with WithSource are loaded at once;
// errors reading them are not returned here: call Sync to see them.
func NewLoader(opts ...loader.Option) loader.Loader {
	o := loader.Options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Reader == nil {
		o.Reader = json.NewReader()
	}
	m := &memoryLoader{opts: o, exit: make(chan struct{}), watchers: map[*watcher]struct{}{}}
	if len(o.Source) > 0 {
		_ = m.Load(o.Source...)
	}
	return m
}

// WithSource adds a source the loader loads when it is made.
func WithSource(s source.Source) loader.Option {
	return func(o *loader.Options) { o.Source = append(o.Source, s) }
}

// WithReader sets the reader that merges and reads documents (default: reader/json).
func WithReader(r reader.Reader) loader.Option {
	return func(o *loader.Options) { o.Reader = r }
}

// WithWatcherDisabled stops the loader from watching sources.
func WithWatcherDisabled() loader.Option {
	return func(o *loader.Options) { o.WithWatcherDisabled = true }
}

func (m *memoryLoader) String() string { return "memory" }

// read reads one source and checks that the reader can decode what it gave.
func (m *memoryLoader) read(s source.Source) (*source.ChangeSet, error) {
	cs, err := s.Read()
	if err != nil {
		return nil, fmt.Errorf("config: read source %q: %w", s.String(), err)
	}
	if err := m.check(s, cs); err != nil {
		return nil, err
	}
	return cs, nil
}

func (m *memoryLoader) check(s source.Source, cs *source.ChangeSet) error {
	if cs == nil {
		return fmt.Errorf("config: source %q gave no change set", s.String())
	}
	if cs.Source == "" {
		cs.Source = s.String()
	}
	if _, err := m.opts.Reader.Merge(cs); err != nil {
		return err
	}
	return nil
}

func (m *memoryLoader) Load(sources ...source.Source) error {
	var errs []error
	added := make([]*loaded, 0, len(sources))
	for _, s := range sources {
		l := &loaded{src: s}
		// Watch before reading, so that no change between the two is missed: one that
		// lands in between is read now and then seen again, unchanged, by the watcher.
		if !m.opts.WithWatcherDisabled {
			if w, err := s.Watch(); err == nil {
				l.w = w
			}
		}
		cs, err := m.read(s)
		if err != nil {
			errs = append(errs, err)
		}
		l.set = cs
		added = append(added, l)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		for _, l := range added {
			if l.w != nil {
				_ = l.w.Stop()
			}
		}
		return ErrClosed
	}
	m.sources = append(m.sources, added...)
	if err := m.rebuildLocked(); err != nil {
		errs = append(errs, err)
	}
	if !m.opts.WithWatcherDisabled {
		for _, l := range added {
			m.wg.Add(1)
			go m.watch(l)
		}
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

func (m *memoryLoader) Sync() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	sources := append([]*loaded(nil), m.sources...)
	m.mu.Unlock()

	var errs []error
	sets := make([]*source.ChangeSet, len(sources))
	for i, l := range sources {
		cs, err := m.read(l.src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sets[i] = cs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for i, cs := range sets {
		if cs != nil {
			sources[i].set = cs
		}
	}
	if err := m.rebuildLocked(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rebuildLocked merges the sources' documents into a new snapshot and tells the watchers
// whose values changed. It keeps the old snapshot when the merge fails.
func (m *memoryLoader) rebuildLocked() error {
	sets := make([]*source.ChangeSet, 0, len(m.sources))
	for _, l := range m.sources {
		if l.set != nil {
			sets = append(sets, l.set)
		}
	}
	merged, err := m.opts.Reader.Merge(sets...)
	if err != nil {
		m.reportLocked(err)
		return err
	}
	if m.snap != nil && merged.Checksum != "" && merged.Checksum == m.snap.ChangeSet.Checksum {
		return nil // nothing changed
	}
	vals, err := m.opts.Reader.Values(merged)
	if err != nil {
		m.reportLocked(err)
		return err
	}
	v := uint64(time.Now().UnixNano())
	if v <= m.version {
		v = m.version + 1
	}
	m.version = v
	m.snap = &loader.Snapshot{ChangeSet: merged, Version: strconv.FormatUint(v, 10)}
	m.vals = vals
	for w := range m.watchers {
		w.offer(m.snap, vals)
	}
	return nil
}

func (m *memoryLoader) reportLocked(err error) {
	for w := range m.watchers {
		w.fail(err)
	}
}

func (m *memoryLoader) report(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reportLocked(err)
}

// apply takes a new document from l's watcher.
func (m *memoryLoader) apply(l *loaded, cs *source.ChangeSet) {
	if err := m.check(l.src, cs); err != nil {
		m.report(err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	l.set = cs
	_ = m.rebuildLocked()
}

// watch follows one source until the loader closes.
func (m *memoryLoader) watch(l *loaded) {
	defer m.wg.Done()
	delay := minRewatch
	m.mu.Lock()
	first := l.w // made by Load
	m.mu.Unlock()
	for {
		w := first
		first = nil
		if w == nil {
			var err error
			w, err = l.src.Watch()
			if err != nil {
				m.report(fmt.Errorf("config: watch source %q: %w", l.src.String(), err))
				if !m.pause(&delay) {
					return
				}
				continue
			}
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			_ = w.Stop()
			return
		}
		l.w = w
		m.mu.Unlock()
		for {
			cs, err := w.Next()
			if err == nil {
				delay = minRewatch
				m.apply(l, cs)
				continue
			}
			if m.isClosed() {
				return
			}
			if errors.Is(err, source.ErrWatcherStopped) {
				break
			}
			m.report(fmt.Errorf("config: source %q: %w", l.src.String(), err))
			if !m.pause(&delay) {
				_ = w.Stop()
				return
			}
		}
		_ = w.Stop()
		if !m.pause(&delay) {
			return
		}
	}
}

// pause waits delay, doubling it for next time; false means the loader closed.
func (m *memoryLoader) pause(delay *time.Duration) bool {
	t := time.NewTimer(*delay)
	defer t.Stop()
	*delay = min(*delay*2, maxRewatch)
	select {
	case <-m.exit:
		return false
	case <-t.C:
		return true
	}
}

func (m *memoryLoader) isClosed() bool {
	select {
	case <-m.exit:
		return true
	default:
		return false
	}
}

func (m *memoryLoader) Snapshot() (*loader.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snap == nil {
		if err := m.rebuildLocked(); err != nil {
			return nil, err
		}
	}
	return loader.Copy(m.snap), nil
}

func (m *memoryLoader) Watch(path ...string) (loader.Watcher, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.snap == nil {
		if err := m.rebuildLocked(); err != nil {
			return nil, err
		}
	}
	w := &watcher{m: m, path: append([]string(nil), path...), signal: make(chan struct{}, 1), done: make(chan struct{})}
	w.last = valueBytes(m.vals, w.path)
	m.watchers[w] = struct{}{}
	return w, nil
}

func (m *memoryLoader) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.exit)
	var ws []source.Watcher
	for _, l := range m.sources {
		if l.w != nil {
			ws = append(ws, l.w)
		}
	}
	watchers := m.watchers
	m.watchers = map[*watcher]struct{}{}
	m.mu.Unlock()
	for _, w := range ws {
		_ = w.Stop()
	}
	for w := range watchers {
		w.stop()
	}
	m.wg.Wait()
	return nil
}

func valueBytes(vals reader.Values, path []string) []byte {
	if vals == nil {
		return nil
	}
	if len(path) == 0 {
		return vals.Bytes()
	}
	v, err := vals.Get(path...)
	if err != nil || v == nil {
		return nil
	}
	return v.Bytes()
}

// watcher queues, in order, the errors and the newest snapshot for one reader. Snapshots
// that arrive while an earlier one is still queued replace it.
type watcher struct {
	m      *memoryLoader
	path   []string
	signal chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	queue   []event
	last    []byte
	stopped bool
}

type event struct {
	snap *loader.Snapshot
	err  error
}

func (w *watcher) offer(s *loader.Snapshot, vals reader.Values) {
	b := valueBytes(vals, w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || bytes.Equal(b, w.last) {
		return
	}
	w.last = b
	if n := len(w.queue); n > 0 && w.queue[n-1].snap != nil {
		w.queue[n-1].snap = s
	} else {
		w.queue = append(w.queue, event{snap: s})
	}
	w.wake()
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	errs := 0
	for _, e := range w.queue {
		if e.err != nil {
			errs++
		}
	}
	if errs >= maxQueuedErrors {
		for i, e := range w.queue {
			if e.err != nil {
				w.queue = append(w.queue[:i], w.queue[i+1:]...)
				break
			}
		}
	}
	w.queue = append(w.queue, event{err: err})
	w.wake()
}

func (w *watcher) wake() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watcher) Next() (*loader.Snapshot, error) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, source.ErrWatcherStopped
		}
		if len(w.queue) > 0 {
			e := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			if e.err != nil {
				return nil, e.err
			}
			return loader.Copy(e.snap), nil
		}
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-w.done:
		}
	}
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped = true
		w.queue = nil
		close(w.done)
	}
}

func (w *watcher) Stop() error {
	w.m.mu.Lock()
	delete(w.m.watchers, w)
	w.m.mu.Unlock()
	w.stop()
	return nil
}
