package nats_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/nats"
)

// TestWatchWithinOneSecond: 30 sequential changes by another client, then a delete, each
// reach Next within a second; the delete is {}.
func TestWatchWithinOneSecond(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	kv := kvOf(t, bucket)
	put(t, kv, nats.DefaultKey, `{"counter":-1}`)
	src := newSource(url, bucket)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)

	const changes = 30
	lat := make([]time.Duration, 0, changes+1)
	for i := 0; i < changes; i++ {
		want := fmt.Sprintf(`{"counter":%d}`, i)
		start := time.Now()
		put(t, kv, nats.DefaultKey, want)
		cs, at := waitFor(t, ch, time.Second, func(data string) bool { return data == want })
		if cs.Format != "json" || cs.Source != "nats" || cs.Checksum != cs.Sum() {
			t.Fatalf("change set %+v", cs)
		}
		lat = append(lat, at.Sub(start))
	}
	start := time.Now()
	del(t, kv, nats.DefaultKey)
	cs, at := waitFor(t, ch, time.Second, func(data string) bool { return data == "{}" })
	if cs.Format != "json" {
		t.Fatalf("deleted document's format %q", cs.Format)
	}
	lat = append(lat, at.Sub(start))
	// A put, then a purge, which is {} too.
	put(t, kv, nats.DefaultKey, `{"back":true}`)
	waitFor(t, ch, time.Second, func(data string) bool { return data == `{"back":true}` })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	if err := kv.Purge(ctx, nats.DefaultKey); err != nil {
		t.Fatal(err)
	}
	_, at = waitFor(t, ch, time.Second, func(data string) bool { return data == "{}" })
	lat = append(lat, at.Sub(start))
	slices.Sort(lat)
	t.Logf("put→Next latency over %d changes: p50 %s, max %s", len(lat), lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)-1] > time.Second {
		t.Fatalf("a change took %s to reach Next", lat[len(lat)-1])
	}
}

// TestWatchBaselineAndMerge: the value at Watch is not returned; changes made while
// nobody calls Next merge into the newest document; a put of the same document is not
// reported; a write through the source itself is.
func TestWatchBaselineAndMerge(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	kv := kvOf(t, bucket)
	put(t, kv, nats.DefaultKey, `{"n":"base"}`)
	src := newSource(url, bucket)
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 0; i < 20; i++ {
		put(t, kv, nats.DefaultKey, fmt.Sprintf(`{"n":%d}`, i))
	}
	time.Sleep(200 * time.Millisecond)
	cs, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(cs.Data) != `{"n":19}` {
		t.Fatalf("merged changes: %s", cs.Data)
	}

	// The same document again, then a new one: Next returns only the new one.
	put(t, kv, nats.DefaultKey, `{"n":19}`)
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"n":"mine"}`)}); err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)
	cs, _ = waitFor(t, ch, time.Second, func(string) bool { return true })
	if string(cs.Data) != `{"n":"mine"}` {
		t.Fatalf("after a put of the same document: %s", cs.Data)
	}
}

// TestWatchMissingKey: a watch of a key that does not exist (in a bucket that does not
// exist) starts from {}, and sees the key when it is made.
func TestWatchMissingKey(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket, nats.WithKey("later"))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)
	put(t, kvOf(t, bucket), "later", `{"made":true}`)
	waitFor(t, ch, time.Second, func(data string) bool { return data == `{"made":true}` })
	// Other keys of the bucket are not watched.
	put(t, kvOf(t, bucket), "other", `{"other":true}`)
	select {
	case r := <-ch:
		t.Fatalf("a change of another key reached Next: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStopUnblocksNext: Stop returns a pending Next with source.ErrWatcherStopped, later
// Nexts too, and may be called again.
func TestStopUnblocksNext(t *testing.T) {
	url := server(t)
	src := newSource(url, bucketName(t))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatalf("pending Next after Stop: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Stop did not unblock Next")
	}
	t.Logf("Stop took %s", time.Since(start))
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
}

// TestWatchersShareConnection: Reads and Writes use the connection watchers hold, and
// it stays usable until the last watcher stops.
func TestWatchersShareConnection(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket)
	w1, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	w2, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch2 := collect(t, w2)
	if err := w1.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch2, time.Second, func(data string) bool { return data == `{"a":1}` })
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"a":1}`)
	if err := w2.Stop(); err != nil {
		t.Fatal(err)
	}
	// After the last watcher, Reads connect again.
	if cs, err = src.Read(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"a":1}`)
}

// TestWatchWildcardKey: a key with a wildcard would watch several keys; Watch refuses it.
func TestWatchWildcardKey(t *testing.T) {
	url := server(t)
	for _, key := range []string{"app.*", "app.>"} {
		w, err := newSource(url, bucketName(t), nats.WithKey(key)).Watch()
		if err == nil {
			_ = w.Stop()
			t.Fatalf("Watch of %q succeeded", key)
		}
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %q: %v", key, err)
		}
	}
}

// TestConcurrentUse: Reads, Writes and watchers of one source, from several goroutines,
// share and release the connection without races; every watcher sees the last write.
func TestConcurrentUse(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := src.Write(&source.ChangeSet{Data: []byte(fmt.Sprintf(`{"g%d":%d}`, g, i))}); err != nil {
					errs <- err
					return
				}
				if _, err := src.Read(); err != nil {
					errs <- err
					return
				}
			}
		}(g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				w, err := src.Watch()
				if err != nil {
					errs <- err
					return
				}
				_ = w.Stop()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"last":true}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, time.Second, func(data string) bool { return data == `{"last":true}` })
}
