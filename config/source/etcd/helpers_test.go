package etcd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// rawClient returns a plain etcd client of endpoint, to set up keys; it is closed when the
// test ends.
func rawClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func put(t testing.TB, cli *clientv3.Client, kv ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := cli.Put(ctx, kv[i], kv[i+1]); err != nil {
			t.Fatalf("put %s: %v", kv[i], err)
		}
	}
}

func del(t testing.TB, cli *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// decode returns the document of a change set, numbers as json.Number.
func decode(t testing.TB, cs *source.ChangeSet) map[string]interface{} {
	t.Helper()
	var v map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(cs.Data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("change set is not a JSON object: %v: %s", err, cs.Data)
	}
	return v
}

// sameJSON fails the test unless got holds the same JSON document as want.
func sameJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w interface{}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("invalid expected JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("document\n got %s\nwant %s", got, want)
	}
}

// result is one return of a watcher's Next.
type result struct {
	cs  *source.ChangeSet
	err error
	at  time.Time
}

// collect calls Next in a goroutine until the watcher stops, and hands out what it
// returns. The watcher is stopped, and the goroutine waited for, when the test ends.
func collect(t testing.TB, w source.Watcher) <-chan result {
	t.Helper()
	ch := make(chan result, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			cs, err := w.Next()
			if errors.Is(err, source.ErrWatcherStopped) {
				return
			}
			select {
			case ch <- result{cs: cs, err: err, at: time.Now()}:
			default: // the test stopped listening
			}
		}
	}()
	t.Cleanup(func() {
		_ = w.Stop()
		<-done
	})
	return ch
}

// waitFor returns the first document from ch that ok accepts, failing the test if none
// comes within timeout. Errors fail the test unless tolerate is set, when they are
// counted in *errs.
func waitFor(t testing.TB, ch <-chan result, timeout time.Duration, errs *int, ok func(map[string]interface{}) bool) (map[string]interface{}, time.Time) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case r, open := <-ch:
			if !open {
				t.Fatal("watcher stopped")
			}
			if r.err != nil {
				if errs == nil {
					t.Fatalf("Next: %v", r.err)
				}
				*errs++
				t.Logf("Next (tolerated): %v", r.err)
				continue
			}
			if doc := decode(t, r.cs); ok(doc) {
				return doc, r.at
			}
		case <-deadline.C:
			t.Fatalf("no matching document within %s", timeout)
		}
	}
}

// field returns the value at path in doc, or nil.
func field(doc map[string]interface{}, path ...string) interface{} {
	var v interface{} = doc
	for _, p := range path {
		m, ok := v.(map[string]interface{})
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
