// Package memory is a configuration source held in memory: a document given when it is
// made, replaced with Update. Each Update reaches every watcher.
package memory

import (
	"sync"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

// Updater is implemented by the memory source: NewSource(...).(memory.Updater).Update(cs)
// replaces its document.
type Updater interface {
	Update(*source.ChangeSet)
}

type changeSetKey struct{}

// WithChangeSet sets the source's initial document.
func WithChangeSet(cs *source.ChangeSet) source.Option {
	return source.ContextOption(changeSetKey{}, cs)
}

// WithJSON sets the source's initial document to JSON data.
func WithJSON(d []byte) source.Option {
	return WithChangeSet(&source.ChangeSet{Data: d, Format: "json"})
}

// WithYAML sets the source's initial document to YAML data.
func WithYAML(d []byte) source.Option {
	return WithChangeSet(&source.ChangeSet{Data: d, Format: "yaml"})
}

type memorySource struct {
	mu       sync.Mutex
	cs       *source.ChangeSet
	watchers map[*watcher]struct{}
}

// NewSource returns a memory source. Without a document it reads as an empty one ({}).
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &memorySource{watchers: map[*watcher]struct{}{}}
	cs, _ := o.Context.Value(changeSetKey{}).(*source.ChangeSet)
	if cs == nil {
		cs = &source.ChangeSet{Data: []byte("{}"), Format: "json"}
	}
	s.cs = stamp(cs)
	return s
}

// stamp copies cs and fills in what the caller left out.
func stamp(cs *source.ChangeSet) *source.ChangeSet {
	out := *cs
	out.Data = append([]byte(nil), cs.Data...)
	if out.Format == "" {
		out.Format = "json"
	}
	if out.Timestamp.IsZero() {
		out.Timestamp = time.Now()
	}
	out.Source = "memory"
	out.Checksum = out.Sum()
	return &out
}

func copyOf(cs *source.ChangeSet) *source.ChangeSet {
	out := *cs
	out.Data = append([]byte(nil), cs.Data...)
	return &out
}

func (s *memorySource) Read() (*source.ChangeSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyOf(s.cs), nil
}

// Write replaces the document, like Update.
func (s *memorySource) Write(cs *source.ChangeSet) error {
	s.Update(cs)
	return nil
}

// Update replaces the document and hands it to every watcher. A watcher that has not
// taken the previous document yet gets only the newest.
func (s *memorySource) Update(cs *source.ChangeSet) {
	if cs == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cs = stamp(cs)
	for w := range s.watchers {
		w.offer(s.cs)
	}
}

func (s *memorySource) Watch() (source.Watcher, error) {
	w := &watcher{s: s, ch: make(chan *source.ChangeSet, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	return w, nil
}

func (s *memorySource) String() string { return "memory" }

type watcher struct {
	s    *memorySource
	ch   chan *source.ChangeSet
	done chan struct{}
	once sync.Once
}

// offer replaces what is waiting in the channel with cs; the source's lock is held, so
// offers never race each other.
func (w *watcher) offer(cs *source.ChangeSet) {
	select {
	case <-w.ch:
	default:
	}
	w.ch <- cs
}

func (w *watcher) Next() (*source.ChangeSet, error) {
	select {
	case <-w.done:
		return nil, source.ErrWatcherStopped
	default:
	}
	select {
	case cs := <-w.ch:
		return copyOf(cs), nil
	case <-w.done:
		return nil, source.ErrWatcherStopped
	}
}

func (w *watcher) Stop() error {
	w.once.Do(func() {
		w.s.mu.Lock()
		delete(w.s.watchers, w)
		w.s.mu.Unlock()
		close(w.done)
	})
	return nil
}
