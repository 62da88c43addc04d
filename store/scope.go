package store

import (
	"errors"
	"fmt"
)

// Scope returns a store that reads, writes, deletes and lists in table of database of s
// when a call names no other (a call's ReadFrom, WriteTo, DeleteFrom or ListFrom still
// wins). An empty database or table keeps s's. Init, Close and String are s's, and
// Options are s's with the scope's database and table. Safe for concurrent use when s is.
func Scope(s Store, database, table string) Store {
	return &scoped{s: s, database: database, table: table}
}

type scoped struct {
	s               Store
	database, table string
}

// at returns the database and table of a call that names database and table.
func (c *scoped) at(database, table string) (string, string) {
	if database == "" {
		database = c.database
	}
	if table == "" {
		table = c.table
	}
	return database, table
}

func (c *scoped) Init(opts ...Option) error { return c.s.Init(opts...) }

func (c *scoped) Options() Options {
	o := c.s.Options()
	o.Database, o.Table = scopeOf(o, c.database, c.table)
	return o
}

func (c *scoped) Read(key string, opts ...ReadOption) ([]*Record, error) {
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	db, table := c.at(o.Database, o.Table)
	return c.s.Read(key, append(opts[:len(opts):len(opts)], ReadFrom(db, table))...)
}

func (c *scoped) Write(r *Record, opts ...WriteOption) error {
	var o WriteOptions
	for _, f := range opts {
		f(&o)
	}
	db, table := c.at(o.Database, o.Table)
	return c.s.Write(r, append(opts[:len(opts):len(opts)], WriteTo(db, table))...)
}

// Create is s's Create in the scope; an error wrapping errors.ErrUnsupported when s is
// not a Creator.
func (c *scoped) Create(r *Record, opts ...WriteOption) error {
	cr, ok := c.s.(Creator)
	if !ok {
		return fmt.Errorf("store: the %s store cannot create a record only where none is: %w", c.s.String(), errors.ErrUnsupported)
	}
	var o WriteOptions
	for _, f := range opts {
		f(&o)
	}
	db, table := c.at(o.Database, o.Table)
	return cr.Create(r, append(opts[:len(opts):len(opts)], WriteTo(db, table))...)
}

func (c *scoped) Delete(key string, opts ...DeleteOption) error {
	var o DeleteOptions
	for _, f := range opts {
		f(&o)
	}
	db, table := c.at(o.Database, o.Table)
	return c.s.Delete(key, append(opts[:len(opts):len(opts)], DeleteFrom(db, table))...)
}

func (c *scoped) List(opts ...ListOption) ([]string, error) {
	var o ListOptions
	for _, f := range opts {
		f(&o)
	}
	db, table := c.at(o.Database, o.Table)
	return c.s.List(append(opts[:len(opts):len(opts)], ListFrom(db, table))...)
}

func (c *scoped) Close() error { return c.s.Close() }

func (c *scoped) String() string { return c.s.String() }
