package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/seed-b3892490/micro/logger"
)

// How the file store sweeps expired records: every sweepEvery each open file is swept,
// deleting at most sweepMax records per pass in transactions of at most sweepChunk, so
// that a sweep never holds the file's writer lock for long.
const (
	sweepEvery = time.Minute
	sweepMax   = 10000
	sweepChunk = 500
)

// lockWait bounds how long opening a file waits for another process to release it.
const lockWait = time.Second

// A process has each bbolt file open once (bbolt locks a file per open, so a second open in
// the same process would wait for the first to close): openFiles holds the open files by
// path, shared by every file store of the process, with a count of their users.
var openFiles = struct {
	mu sync.Mutex
	m  map[string]*sharedDB
}{m: map[string]*sharedDB{}}

// sharedDB is an open file, with its sweeper and its queue of writes.
type sharedDB struct {
	path string
	db   *bolt.DB
	refs int
	stop chan struct{}
	done chan struct{}

	qmu     sync.Mutex
	queue   []*writeOp
	leading bool // a goroutine is committing the queue
}

// writeOp is a write waiting in the queue of a file.
type writeOp struct {
	fn   func(*bolt.Tx) error
	done chan error // the result; or errLead: the waiter is to commit the queue
}

// errLead tells a queued writer that it is to commit the queue.
var errLead = errors.New("lead")

// update runs fn in a read-write transaction and returns once the transaction is
// committed to disk. Writers that arrive while a commit runs wait and are committed
// together in the next transaction (group commit): a lone writer is committed at once,
// concurrent writers share the cost of the disk sync. fn may be run more than once: when
// one fn of a group fails, each of the group runs again in a transaction of its own.
func (d *sharedDB) update(fn func(*bolt.Tx) error) error {
	op := &writeOp{fn: fn, done: make(chan error, 1)}
	d.qmu.Lock()
	d.queue = append(d.queue, op)
	if d.leading {
		d.qmu.Unlock()
		if err := <-op.done; err != errLead { // errLead is ours, never wrapped
			return err
		}
		d.qmu.Lock()
	}
	d.leading = true
	group := d.queue
	d.queue = nil
	d.qmu.Unlock()

	d.commit(group)

	// hand the queue that built up meanwhile to its first writer
	d.qmu.Lock()
	d.leading = false
	if len(d.queue) > 0 {
		d.leading = true
		d.queue[0].done <- errLead
	}
	d.qmu.Unlock()
	return <-op.done
}

// commit runs a group of writes in one transaction, or each in its own when one fails,
// and gives each its result.
func (d *sharedDB) commit(group []*writeOp) {
	if len(group) > 1 {
		err := d.db.Update(func(tx *bolt.Tx) error {
			for _, op := range group {
				if err := op.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, op := range group {
				op.done <- nil
			}
			return
		}
	}
	for _, op := range group {
		op.done <- d.db.Update(op.fn)
	}
}

// acquireDB returns the open file at path, opening it (and starting its sweeper) when it
// is not open yet. When create is false and the file does not exist, it returns nil.
func acquireDB(path string, create bool, log logger.Logger) (*sharedDB, error) {
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	if d := openFiles.m[path]; d != nil {
		d.refs++
		return d, nil
	}
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store: open %s: the file is in use by another process (a bbolt file is open in one process at a time)", path)
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	d := &sharedDB{path: path, db: db, refs: 1, stop: make(chan struct{}), done: make(chan struct{})}
	openFiles.m[path] = d
	go d.sweepLoop(log)
	return d, nil
}

// release drops a user of the file, and closes it after the last.
func (d *sharedDB) release() error {
	openFiles.mu.Lock()
	defer openFiles.mu.Unlock()
	d.refs--
	if d.refs > 0 {
		return nil
	}
	delete(openFiles.m, d.path)
	close(d.stop)
	<-d.done
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", d.path, err)
	}
	return nil
}

func (d *sharedDB) sweepLoop(log logger.Logger) {
	defer close(d.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			if _, err := sweep(d.db, now, sweepMax, d.stop); err != nil {
				log.Logf(logger.WarnLevel, "store: sweep of expired records in %s: %v", d.path, err)
			}
		}
	}
}

// The buckets of a table: its records by key, and an index of its expiring records by
// expiry time then key.
func dataBucket(table string) []byte  { return append([]byte("d/"), table...) }
func indexBucket(table string) []byte { return append([]byte("x/"), table...) }

// indexKey is the key in the expiry index of key expiring at at.
func indexKey(at int64, key []byte) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(at))
	return append(b, key...)
}

// sweep deletes the records of db that expired at now, looking at most at max entries of
// the expiry indexes, and returns how many records it deleted. It stops early when stop
// is closed.
func sweep(db *bolt.DB, now time.Time, max int, stop <-chan struct{}) (int, error) {
	var tables []string
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if bytes.HasPrefix(name, []byte("x/")) {
				tables = append(tables, string(name[2:]))
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	deleted, seen := 0, 0
	for _, table := range tables {
		for more := true; more && seen < max; {
			select {
			case <-stop:
				return deleted, nil
			default:
			}
			n := min(sweepChunk, max-seen)
			var d int
			d, more, err = sweepChunkOf(db, table, now, n)
			deleted += d
			seen += n
			if err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

// sweepChunkOf deletes the records of one table that expired at now, looking at most at n
// entries of its expiry index, in one transaction. It returns how many records it
// deleted, and whether there may be more to delete.
func sweepChunkOf(db *bolt.DB, table string, now time.Time, n int) (deleted int, more bool, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		idx, data := tx.Bucket(indexBucket(table)), tx.Bucket(dataBucket(table))
		if idx == nil {
			return nil
		}
		type entry struct {
			ikey, key []byte
			at        int64
		}
		var due []entry
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(due) < n; k, _ = c.Next() {
			if len(k) < 8 { // not an entry this store writes
				due = append(due, entry{ikey: bytes.Clone(k)})
				continue
			}
			at := int64(binary.BigEndian.Uint64(k))
			if !isExpired(at, now) {
				break
			}
			due = append(due, entry{ikey: bytes.Clone(k), key: bytes.Clone(k[8:]), at: at})
		}
		more = len(due) == n
		for _, e := range due {
			// the record may have been written again since: delete it only when this
			// entry is its expiry
			if data != nil && e.key != nil {
				if v := data.Get(e.key); v != nil {
					if at, err := decodeExpiry(v); err == nil && at == e.at {
						if err := data.Delete(e.key); err != nil {
							return err
						}
						deleted++
					}
				}
			}
			if err := idx.Delete(e.ikey); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return deleted, more, nil
}
