package store

import "sync"

// NewNoopStore returns a store that stores nothing: Write, Create and Delete succeed and do
// nothing, Read of a key returns ErrNotFound, reads with a pattern and List return
// nothing. Safe for concurrent use.
func NewNoopStore(opts ...Option) Store {
	s := &noopStore{}
	_ = s.Init(opts...)
	return s
}

type noopStore struct {
	mu   sync.Mutex
	opts Options
}

func (n *noopStore) Init(opts ...Option) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range opts {
		f(&n.opts)
	}
	n.opts = n.opts.withDefaults()
	return nil
}

func (n *noopStore) Options() Options {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opts
}

func (n *noopStore) Read(key string, opts ...ReadOption) ([]*Record, error) {
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	if o.Prefix || o.Suffix {
		return []*Record{}, nil
	}
	return nil, ErrNotFound
}

func (n *noopStore) Write(r *Record, opts ...WriteOption) error { return checkRecord(r) }

// Create succeeds and stores nothing: no key ever has a record.
func (n *noopStore) Create(r *Record, opts ...WriteOption) error { return checkRecord(r) }

func (n *noopStore) Delete(key string, opts ...DeleteOption) error { return nil }

func (n *noopStore) List(opts ...ListOption) ([]string, error) { return []string{}, nil }

func (n *noopStore) Close() error { return nil }

func (n *noopStore) String() string { return "noop" }
