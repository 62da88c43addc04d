package nats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// server skips t unless the shared NATS server with JetStream answers, and returns its
// URL.
func server(t testing.TB) string {
	t.Helper()
	testutil.RequireNATS(t, true)
	return testutil.SharedNATSURL()
}

// bucketName returns a bucket name of its own for t: its name, sanitised, and a random
// suffix. The bucket is deleted when the test ends.
func bucketName(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	name += "-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		js := admin(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, name); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// admin returns a JetStream context of its own connection to the shared server, closed
// when the test ends.
func admin(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(testutil.SharedNATSURL(), natsgo.Timeout(5*time.Second), natsgo.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// kvOf returns bucket, made if needed, through its own connection.
func kvOf(t testing.TB, bucket string) jetstream.KeyValue {
	t.Helper()
	js := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, bucket)
	}
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func put(t testing.TB, kv jetstream.KeyValue, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kv.PutString(ctx, key, value); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func del(t testing.TB, kv jetstream.KeyValue, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, key); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// newSource returns a source of the shared server's bucket.
func newSource(url, bucket string, opts ...source.Option) source.Source {
	return nats.NewSource(append([]source.Option{nats.WithUrl(url), nats.WithBucket(bucket)}, opts...)...)
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

// waitFor returns the first change set from ch whose data ok accepts, failing the test if
// none comes within timeout, or if Next returns an error.
func waitFor(t testing.TB, ch <-chan result, timeout time.Duration, ok func(data string) bool) (*source.ChangeSet, time.Time) {
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
				t.Fatalf("Next: %v", r.err)
			}
			if ok(string(r.cs.Data)) {
				return r.cs, r.at
			}
		case <-deadline.C:
			t.Fatalf("no matching change within %s", timeout)
		}
	}
}
