// Package etcd is a configuration source that reads a key prefix of etcd as one JSON
// document, and watches it for changes.
//
// # Key layout
//
// Every key under the prefix (DefaultPrefix, "/micro/config", unless WithPrefix) is a
// leaf or a subtree of the document, at the path its key names below the prefix: the key
// is split on "/" and empty segments are ignored, so
//
//	/micro/config/database/host = db1
//	/micro/config/database/port = 5432
//
// is {"database":{"host":"db1","port":5432}}. With StripPrefix(false) the prefix's own
// segments are kept: {"micro":{"config":{"database":{...}}}}. Only the prefix itself and
// the keys below it count: /micro/configuration is not under /micro/config.
//
// # Values
//
// A value that is one valid JSON value is decoded: an object merges in as a subtree at
// its key's path, numbers keep their exact text (5432, 1.50), booleans, null and arrays
// stay what they are, and a JSON string ("\"db1\"") is that string. Any other value is
// taken as a string as it is (db1, or 007, which is not JSON). A key that is exactly the
// prefix is the root: its value is merged in when it is a JSON object and ignored
// otherwise.
//
// # Conflicts
//
// Keys are applied from the shallowest to the deepest, keys of the same depth in byte
// order (of /a//b and /a/b, which name one path, /a/b comes last and wins), each at its
// path: an object merges into an object already there, its entries
// winning; anything else replaces what is there. So deeper keys win, whatever order etcd
// or a JSON object gives them: /a = 1 with /a/b = 2 is {"a":{"b":2}}, and /a =
// {"b":1,"c":2} with /a/b = 3 is {"a":{"b":3,"c":2}}. The same keys and values always
// give the same document, byte for byte.
//
// # Read and Write
//
// Read gets the whole prefix in one range request, so at one etcd revision, and returns
// it as JSON with sorted keys (Format "json", Source "etcd", Checksum set); a prefix with
// no keys is {}. The source's Encoder option is not used: the document is always JSON.
//
// Write replaces the document under the prefix with a JSON change set, in one
// transaction: one key per leaf (strings as they are, unless they would read back as
// another JSON value, as "true" or "12" would, when they are stored quoted; other
// values as JSON; an empty object as {}), keys of the old document that are not in the
// new one deleted, unchanged keys left alone; the transaction holds only if no key under
// the prefix changed since Write read them, and Write tries again if one did. It fails if the document's object keys
// are empty or hold a "/", or, with StripPrefix(false), if the document has keys outside
// the prefix's path. etcd bounds the operations of one transaction (--max-txn-ops, 128
// by default), and so the keys one Write may change.
//
// # Watch
//
// Watch reads the document once, as the baseline, and watches the prefix from the
// revision after it, so no change is missed. On each change etcd reports, the watcher
// reads the whole prefix again at that revision, and Next returns the new document if
// its checksum differs from the last one (changes that come faster than Next is called
// merge: Next returns the newest document). A watch that etcd ends (compaction, a lost
// leader) is followed by a new read and a new watch after it. When the watch has been
// quiet for the dial timeout (at least a second), the watcher checks that etcd answers;
// while it cannot reach or read etcd, Next returns errors naming the address, and the
// watcher keeps trying with a back-off, re-reading the document once etcd answers
// again. Next returns source.ErrWatcherStopped after Stop; other errors are transient.
//
// # Connections
//
// NewSource does no I/O and starts no goroutine. The source dials etcd when it first
// needs it and shares the client between its Reads, Writes and watchers while any is
// running: a Read or Write without a watcher dials, does its request and closes the
// client; a watcher holds the client until Stop, which also waits for the watcher's
// goroutine. Connecting, and each request, is bounded by WithDialTimeout.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/config/encoder/json"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/internal/pending"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	defaultPort = "2379"
	// keepAliveTime is how often an idle connection is probed.
	keepAliveTime = 10 * time.Second
	// writeAttempts bounds how often Write retries when the prefix changes under it.
	writeAttempts = 5
)

type etcdSource struct {
	set     settings
	lay     layout
	cfg     clientv3.Config
	at      string // the endpoints, for error messages
	timeout time.Duration

	mu   sync.Mutex // guards cli and refs
	cli  *clientv3.Client
	refs int
}

// NewSource returns a source that reads the keys under a prefix of etcd; see the package
// documentation. Its options are WithAddress, WithPrefix, StripPrefix, Auth,
// WithDialTimeout and TLSConfig. It does no I/O: the client is made on first use.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	s := &etcdSource{set: settingsOf(o)}
	s.lay = newLayout(s.set.prefix, s.set.strip)
	s.timeout = s.set.timeout
	s.cfg = clientConfig(s.set)
	s.at = strings.Join(s.cfg.Endpoints, ",")
	return s
}

// clientConfig turns the settings into an etcd client configuration.
func clientConfig(s settings) clientv3.Config {
	cfg := clientv3.Config{
		DialTimeout:          s.timeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: s.timeout,
		Logger:               zap.NewNop(),
		TLS:                  s.tls,
		Username:             s.auth.username,
		Password:             s.auth.password,
	}
	for _, arg := range s.addrs {
		for _, a := range strings.Split(arg, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if !strings.Contains(a, "://") {
				if _, _, err := net.SplitHostPort(a); err != nil {
					a = net.JoinHostPort(strings.Trim(a, "[]"), defaultPort)
				}
			}
			cfg.Endpoints = append(cfg.Endpoints, a)
		}
	}
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = []string{DefaultAddress}
	}
	return cfg
}

func (s *etcdSource) String() string { return "etcd" }

// acquire returns the source's client, dialing it if there is none; release must follow.
func (s *etcdSource) acquire() (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cli == nil {
		// Without Auth, New does not block; with it, it authenticates within DialTimeout.
		cli, err := clientv3.New(s.cfg)
		if err != nil {
			return nil, fmt.Errorf("config/source/etcd: connect to %s: %w", s.at, err)
		}
		s.cli = cli
	}
	s.refs++
	return s.cli, nil
}

// release gives back a client from acquire, closing it when nobody else holds it.
func (s *etcdSource) release() {
	s.mu.Lock()
	s.refs--
	var cli *clientv3.Client
	if s.refs == 0 {
		cli, s.cli = s.cli, nil
	}
	s.mu.Unlock()
	if cli != nil {
		_ = cli.Close()
	}
}

// errorf returns an error of a request to etcd: what was done, where etcd was, and err.
func (s *etcdSource) errorf(err error, format string, args ...interface{}) error {
	return fmt.Errorf("config/source/etcd: %s at %s: %w", fmt.Sprintf(format, args...), s.at, err)
}

// Read returns the document under the prefix, read at one revision.
func (s *etcdSource) Read() (*source.ChangeSet, error) {
	cli, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	cs, _, err := s.read(context.Background(), cli, 0)
	return cs, err
}

// read gets the prefix at revision rev (the newest when 0), within the timeout, and
// returns the document and the revision it was read at.
func (s *etcdSource) read(parent context.Context, cli *clientv3.Client, rev int64) (*source.ChangeSet, int64, error) {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := cli.Get(ctx, s.lay.rangeKey(), opts...)
	if err != nil {
		return nil, 0, s.errorf(err, "read %q", s.lay.prefix)
	}
	pairs := make([]pair, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		pairs[i] = pair{key: string(kv.Key), value: kv.Value}
	}
	data, err := encodeTree(buildTree(s.lay, pairs))
	if err != nil {
		return nil, 0, fmt.Errorf("config/source/etcd: encode %q: %w", s.lay.prefix, err)
	}
	cs := &source.ChangeSet{Timestamp: time.Now(), Format: "json", Source: s.String(), Data: data}
	cs.Checksum = cs.Sum()
	return cs, resp.Header.Revision, nil
}

// Write replaces the document under the prefix with cs, a JSON object, in one
// transaction; see the package documentation.
func (s *etcdSource) Write(cs *source.ChangeSet) error {
	if cs == nil {
		return errors.New("config/source/etcd: write: nil change set")
	}
	if cs.Format != "" && cs.Format != "json" {
		return fmt.Errorf("config/source/etcd: write: format %q is not supported, only json", cs.Format)
	}
	var v interface{}
	if err := json.NewEncoder().Decode(cs.Data, &v); err != nil {
		return fmt.Errorf("config/source/etcd: write: %w", err)
	}
	doc, ok := v.(map[string]interface{})
	if !ok {
		return fmt.Errorf("config/source/etcd: write: %w", errNotObject)
	}
	want, err := flatten(s.lay, doc)
	if err != nil {
		return fmt.Errorf("config/source/etcd: write: %w", err)
	}
	cli, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	for attempt := 0; attempt < writeAttempts; attempt++ {
		done, err := s.writeOnce(ctx, cli, want)
		if err != nil {
			return s.errorf(err, "write %q", s.lay.prefix)
		}
		if done {
			return nil
		}
	}
	return s.errorf(errors.New("the keys kept changing"), "write %q", s.lay.prefix)
}

// writeOnce reads the keys under the prefix and changes them into want in a transaction
// that holds only if none of them changed meanwhile. It reports whether it held.
func (s *etcdSource) writeOnce(ctx context.Context, cli *clientv3.Client, want map[string][]byte) (bool, error) {
	resp, err := cli.Get(ctx, s.lay.rangeKey(), clientv3.WithPrefix())
	if err != nil {
		return false, err
	}
	var ops []clientv3.Op
	have := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if !s.lay.belongs(k) {
			continue
		}
		have[k] = true
		if w, ok := want[k]; !ok {
			ops = append(ops, clientv3.OpDelete(k))
		} else if string(w) != string(kv.Value) {
			ops = append(ops, clientv3.OpPut(k, string(w)))
		}
	}
	for k, w := range want {
		if !have[k] {
			ops = append(ops, clientv3.OpPut(k, string(w)))
		}
	}
	if len(ops) == 0 {
		return true, nil
	}
	next := resp.Header.Revision + 1
	var cmps []clientv3.Cmp
	switch key := s.lay.rangeKey(); key {
	case "":
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision("\x00").WithRange("\x00"), "<", next))
	case "/":
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key).WithPrefix(), "<", next))
	default:
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(key), "<", next),
			clientv3.Compare(clientv3.ModRevision(key+"/").WithPrefix(), "<", next))
	}
	tr, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, err
	}
	return tr.Succeeded, nil
}

// Watch reads the document as the baseline and returns a watcher of its changes; see the
// package documentation. It fails if the baseline cannot be read.
func (s *etcdSource) Watch() (source.Watcher, error) {
	cli, err := s.acquire()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	base, rev, err := s.read(ctx, cli, 0)
	if err != nil {
		cancel()
		s.release()
		return nil, err
	}
	w := &watcher{
		src:    s,
		cli:    cli,
		ew:     clientv3.NewWatcher(cli),
		ctx:    ctx,
		cancel: cancel,
		sum:    base.Checksum,
		box:    pending.New(),
	}
	w.wg.Add(1)
	go w.run(rev)
	return w, nil
}
