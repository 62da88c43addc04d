package config

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/seed-b3892490/micro/config/loader"
	"github.com/seed-b3892490/micro/config/loader/memory"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/reader/json"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/logger"
)

// version is one set of values with the loader version it came from.
type version struct {
	vals reader.Values
	n    uint64
}

type config struct {
	mu      sync.Mutex // guards opts, started, closed and the run goroutine
	opts    Options
	started bool
	closed  bool
	exit    chan struct{}
	wg      sync.WaitGroup
	runW    loader.Watcher

	update sync.Mutex // serialises swaps of cur
	cur    atomic.Pointer[version]
}

// NewConfig returns a Config with the given options, loading the sources among them.
// Without options it reads nothing and starts no goroutine.
func NewConfig(opts ...Option) (Config, error) {
	c := &config{exit: make(chan struct{})}
	empty, _ := json.NewValues(nil)
	c.cur.Store(&version{vals: empty})
	c.opts = Options{Context: context.Background()}
	if err := c.Init(opts...); err != nil {
		return c, err
	}
	return c, nil
}

func (c *config) Init(opts ...Option) error {
	c.mu.Lock()
	before := len(c.opts.Source)
	for _, o := range opts {
		o(&c.opts)
	}
	if c.opts.Context == nil {
		c.opts.Context = context.Background()
	}
	if c.opts.Reader == nil {
		c.opts.Reader = json.NewReader()
	}
	if c.opts.Loader == nil {
		lopts := []loader.Option{memory.WithReader(c.opts.Reader)}
		if c.opts.WithWatcherDisabled {
			lopts = append(lopts, memory.WithWatcherDisabled())
		}
		c.opts.Loader = memory.NewLoader(lopts...)
	}
	added := append([]source.Source(nil), c.opts.Source[before:]...)
	c.mu.Unlock()
	if len(added) == 0 {
		return nil
	}
	return c.load(added)
}

func (c *config) Options() Options {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts
}

func (c *config) logger() logger.Logger {
	c.mu.Lock()
	l := c.opts.Logger
	c.mu.Unlock()
	if l == nil {
		return logger.DefaultLogger
	}
	return l
}

func (c *config) loader() loader.Loader {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.Loader
}

func (c *config) Load(sources ...source.Source) error {
	c.mu.Lock()
	c.opts.Source = append(c.opts.Source, sources...)
	c.mu.Unlock()
	return c.load(sources)
}

func (c *config) load(sources []source.Source) error {
	l := c.loader()
	err := l.Load(sources...)
	if snap, serr := l.Snapshot(); serr == nil {
		c.take(snap)
	}
	c.start()
	return err
}

func (c *config) Sync() error {
	l := c.loader()
	err := l.Sync()
	if snap, serr := l.Snapshot(); serr == nil {
		c.take(snap)
	}
	return err
}

// start begins following the loader's changes, once.
func (c *config) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed || c.opts.WithWatcherDisabled {
		return
	}
	w, err := c.opts.Loader.Watch()
	if err != nil {
		return
	}
	c.started = true
	c.runW = w
	c.wg.Add(1)
	go c.run(w)
}

func (c *config) run(w loader.Watcher) {
	defer c.wg.Done()
	for {
		snap, err := w.Next()
		if err != nil {
			if errors.Is(err, source.ErrWatcherStopped) {
				return
			}
			select {
			case <-c.exit:
				return
			default:
			}
			c.logger().Logf(logger.ErrorLevel, "config: keeping the last good configuration: %v", err)
			continue
		}
		c.take(snap)
	}
}

// take makes snap the current version unless a newer one is already current.
func (c *config) take(snap *loader.Snapshot) {
	if snap == nil || snap.ChangeSet == nil {
		return
	}
	n, _ := strconv.ParseUint(snap.Version, 10, 64)
	c.update.Lock()
	defer c.update.Unlock()
	if cur := c.cur.Load(); cur.n != 0 && n <= cur.n {
		return
	}
	vals, err := c.Options().Reader.Values(snap.ChangeSet)
	if err != nil {
		return
	}
	c.cur.Store(&version{vals: vals, n: n})
}

func (c *config) values() reader.Values { return c.cur.Load().vals }

func (c *config) Bytes() []byte                            { return c.values().Bytes() }
func (c *config) Get(path ...string) (reader.Value, error) { return c.values().Get(path...) }
func (c *config) Set(val interface{}, path ...string)      { c.values().Set(val, path...) }
func (c *config) Del(path ...string)                       { c.values().Del(path...) }
func (c *config) Map() map[string]interface{}              { return c.values().Map() }
func (c *config) Scan(v interface{}) error                 { return c.values().Scan(v) }

func (c *config) String() string { return "config" }

func (c *config) Watch(path ...string) (Watcher, error) {
	lw, err := c.loader().Watch(path...)
	if err != nil {
		return nil, err
	}
	w := &watcher{c: c, lw: lw, path: append([]string(nil), path...)}
	if v, err := c.Get(path...); err == nil {
		w.last = v.Bytes()
	}
	return w, nil
}

func (c *config) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.exit)
	l, w := c.opts.Loader, c.runW
	c.mu.Unlock()
	if w != nil {
		_ = w.Stop()
	}
	err := l.Close()
	c.wg.Wait()
	return err
}

type watcher struct {
	c    *config
	lw   loader.Watcher
	path []string
	last []byte
}

func (w *watcher) Next() (reader.Value, error) {
	for {
		snap, err := w.lw.Next()
		if err != nil {
			return nil, err
		}
		// Make the new version current before handing it out, so that a Get after Next
		// never returns an older value than Next did.
		w.c.take(snap)
		vals, err := w.c.Options().Reader.Values(snap.ChangeSet)
		if err != nil {
			return nil, err
		}
		v, err := vals.Get(w.path...)
		if err != nil {
			return nil, err
		}
		b := v.Bytes()
		if w.last != nil && bytes.Equal(b, w.last) {
			continue
		}
		w.last = b
		return v, nil
	}
}

func (w *watcher) Stop() error { return w.lw.Stop() }
