// Package nats is a configuration source that keeps the document as the value of one
// key of a NATS JetStream key-value bucket, and watches the key for changes.
//
// # Document
//
// The document is the value of the key (DefaultKey, "micro_config", unless WithKey) in
// the bucket (DefaultBucket, "default", unless WithBucket), as it is: its Format is the
// source's format (DefaultFormat, "json", unless WithFormat: "yaml", "toml", ...). A
// key that does not exist, whose last operation was a delete or a purge, or whose value
// is empty, is the empty document {}, with Format "json" (which every reader
// understands).
//
// # Read and Write
//
// Read gets the key and returns it (Source "nats", Checksum set). A bucket that does not
// exist is created with the server's default settings, so a first Read of a new bucket
// returns {} instead of an error.
//
// Write puts the change set's Data at the key, as it is. It fails if the change set's
// Format is set and is not the source's format.
//
// # Watch
//
// Watch starts a JetStream key-value watch of the key, and waits (within the timeout)
// for its current value, the baseline, which Next does not return. On each update that
// changes the document's checksum, Next returns the new document; a delete or a purge
// is {}. Changes that come faster than Next is called merge: Next returns the newest
// document. When the connection loses the server, Next returns an error naming the
// server, the bucket and the key; when the connection is back, the watcher watches the
// key again, and returns the document it finds if it changed meanwhile. A watch that
// ends by itself is reported and started again the same way, with a back-off while it
// fails. Next returns source.ErrWatcherStopped after Stop; other errors are transient.
//
// # Connections
//
// NewSource does no I/O and starts no goroutine. The source connects to NATS when it
// first needs to and shares the connection between its Reads, Writes and watchers while
// any is running: a Read or Write without a watcher connects, does its request and
// closes the connection; a watcher holds the connection until Stop, which also waits
// for the watcher's goroutine. Connecting, and each request, is bounded by WithTimeout.
// A connection held by a watcher tries to reconnect every 250 ms for as long as it
// lives; a Read or Write while it is reconnecting fails once the timeout has passed.
//
// # Errors
//
// Errors of Read, Write, Watch and Next say what was done (read, write, watch), the
// bucket and key, and the servers: "config/source/nats: read default/micro_config at
// nats://127.0.0.1:4222: connect: ...". They wrap the error of the NATS client, so
// errors.Is works with the errors of nats.go and its jetstream package.
package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/pending"
)

// reconnectWait is the wait between attempts to reconnect to a server.
const reconnectWait = 250 * time.Millisecond

// emptyDocument is the document of a key that does not exist.
const emptyDocument = "{}"

var (
	// errDisconnected is the error of a watcher whose connection lost the server.
	errDisconnected = errors.New("disconnected")
	// errWildcard is the error of a watch of a key that holds a wildcard, which would
	// watch several keys.
	errWildcard = fmt.Errorf("%w: a wildcard (* or >) names several keys", jetstream.ErrInvalidKey)
)

type natsSource struct {
	set settings
	url string // the servers, comma-separated, for nats.Connect and error messages

	mu   sync.Mutex // guards conn and refs
	conn *connection
	refs int
}

// connection is a NATS connection and its JetStream context. It tells watchers when it
// loses the server and when it is back.
type connection struct {
	nc *natsgo.Conn
	js jetstream.JetStream

	mu      sync.Mutex
	st      connState
	changed chan struct{} // closed, and replaced, when the connection goes down or up
}

// connState is the state of a connection.
type connState struct {
	down    error  // why the connection is down; nil while it is up
	returns uint64 // how often it came back after losing the server
}

// state returns the connection's state, and a channel closed at its next change.
func (c *connection) state() (connState, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st, c.changed
}

// set records that the connection went down (err set) or came back (err nil).
func (c *connection) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.down = err
	if err == nil {
		c.st.returns++
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// NewSource returns a source whose document is the value of one key of a NATS JetStream
// key-value bucket; see the package documentation. Its options are WithUrl, WithBucket,
// WithKey, WithFormat, WithTimeout and WithTLSConfig. It does no I/O: the connection is
// made on first use.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &natsSource{set: settingsOf(o)}
	var urls []string
	for _, arg := range s.set.urls {
		for _, u := range strings.Split(arg, ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
	}
	if len(urls) == 0 {
		urls = []string{DefaultUrl}
	}
	s.url = strings.Join(urls, ",")
	return s
}

func (s *natsSource) String() string { return "nats" }

// acquire returns the source's connection, connecting if there is none; release must
// follow. Its error is for errorf.
func (s *natsSource) acquire() (*connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		d := &dialer{timeout: s.set.timeout}
		c := &connection{changed: make(chan struct{})}
		opts := []natsgo.Option{
			natsgo.Name("micro config/source/nats"),
			natsgo.Timeout(s.set.timeout),
			natsgo.MaxReconnects(-1),
			natsgo.ReconnectWait(reconnectWait),
			natsgo.SetCustomDialer(d),
			natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
				if err == nil {
					err = errDisconnected
				} else {
					err = fmt.Errorf("%w: %w", errDisconnected, err)
				}
				c.set(err)
			}),
			natsgo.ReconnectHandler(func(*natsgo.Conn) { c.set(nil) }),
		}
		if s.set.tls != nil {
			opts = append(opts, natsgo.Secure(s.set.tls))
		}
		nc, err := natsgo.Connect(s.url, opts...)
		if err != nil {
			if last := d.failure(); last != nil && errors.Is(err, natsgo.ErrNoServers) {
				err = fmt.Errorf("%w (%w)", err, last)
			}
			return nil, fmt.Errorf("connect: %w", err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		c.nc, c.js = nc, js
		s.conn = c
	}
	s.refs++
	return s.conn, nil
}

// release gives back a connection from acquire, closing it when nobody else holds it.
func (s *natsSource) release() {
	s.mu.Lock()
	s.refs--
	var c *connection
	if s.refs == 0 {
		c, s.conn = s.conn, nil
	}
	s.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// errorf returns an error of a request to NATS: what was done, to which bucket and key,
// where the server was, and err.
func (s *natsSource) errorf(err error, what string) error {
	return fmt.Errorf("config/source/nats: %s %s/%s at %s: %w", what, s.set.bucket, s.set.key, s.url, err)
}

// bucket returns the source's bucket, creating it if it does not exist.
func (s *natsSource) bucket(ctx context.Context, c *connection) (jetstream.KeyValue, error) {
	kv, err := c.js.KeyValue(ctx, s.set.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = c.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: s.set.bucket})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Made by someone else meanwhile.
			kv, err = c.js.KeyValue(ctx, s.set.bucket)
		}
	}
	return kv, err
}

// changeSet returns the document of a key's value; a key that does not exist, or an
// empty value, is the empty document.
func (s *natsSource) changeSet(data []byte, exists bool) *source.ChangeSet {
	cs := &source.ChangeSet{Timestamp: time.Now(), Format: s.set.format, Source: s.String(), Data: data}
	if !exists || len(data) == 0 {
		cs.Format, cs.Data = "json", []byte(emptyDocument)
	}
	cs.Checksum = cs.Sum()
	return cs
}

// Read returns the document at the key; see the package documentation.
func (s *natsSource) Read() (*source.ChangeSet, error) {
	c, err := s.acquire()
	if err != nil {
		return nil, s.errorf(err, "read")
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(context.Background(), s.set.timeout)
	defer cancel()
	kv, err := s.bucket(ctx, c)
	if err != nil {
		return nil, s.errorf(err, "read")
	}
	e, err := kv.Get(ctx, s.set.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s.changeSet(nil, false), nil
	}
	if err != nil {
		return nil, s.errorf(err, "read")
	}
	return s.changeSet(e.Value(), true), nil
}

// Write puts cs.Data at the key; see the package documentation.
func (s *natsSource) Write(cs *source.ChangeSet) error {
	if cs == nil {
		return errors.New("config/source/nats: write: nil change set")
	}
	if cs.Format != "" && cs.Format != s.set.format {
		return fmt.Errorf("config/source/nats: write %s/%s: format %q, the source's is %q",
			s.set.bucket, s.set.key, cs.Format, s.set.format)
	}
	c, err := s.acquire()
	if err != nil {
		return s.errorf(err, "write")
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(context.Background(), s.set.timeout)
	defer cancel()
	kv, err := s.bucket(ctx, c)
	if err != nil {
		return s.errorf(err, "write")
	}
	if _, err := kv.Put(ctx, s.set.key, cs.Data); err != nil {
		return s.errorf(err, "write")
	}
	return nil
}

// Watch starts a watch of the key, takes its current value as the baseline and returns
// a watcher of its changes; see the package documentation. It fails if the watch cannot
// be started or its baseline does not come within the timeout.
func (s *natsSource) Watch() (source.Watcher, error) {
	if strings.ContainsAny(s.set.key, "*>") {
		return nil, s.errorf(errWildcard, "watch")
	}
	c, err := s.acquire()
	if err != nil {
		return nil, s.errorf(err, "watch")
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{
		src:    s,
		ctx:    ctx,
		cancel: cancel,
		box:    pending.New(),
	}
	wt, err := w.start(c)
	if err != nil {
		cancel()
		s.release()
		return nil, err
	}
	w.wg.Add(1)
	go w.run(c, wt)
	return w, nil
}

// dialer dials the servers for nats.Connect and keeps the last failure, which
// nats.ErrNoServers does not tell.
type dialer struct {
	timeout time.Duration

	mu   sync.Mutex
	last error
}

// Dial connects to address within the timeout.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.timeout}).Dial(network, address)
	if err != nil {
		d.mu.Lock()
		d.last = err
		d.mu.Unlock()
	}
	return c, err
}

func (d *dialer) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}
