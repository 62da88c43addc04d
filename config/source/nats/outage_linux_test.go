//go:build linux

package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// privateKV returns the bucket of a private server through a connection of its own that
// reconnects, closed when the test ends.
func privateKV(t *testing.T, url, bucket string) jetstream.KeyValue {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(5*time.Second), natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// putEventually puts value at key, trying again while the server is coming back.
func putEventually(t *testing.T, kv jetstream.KeyValue, key, value string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := kv.PutString(ctx, key, value)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWatchSurvivesRestart: a watcher goes on across a restart of the server: Next
// reports the lost connection, and a change made once the server is back reaches it
// within a second of the put.
func TestWatchSurvivesRestart(t *testing.T) {
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	kv := privateKV(t, srv.URL(), "restart")
	putEventually(t, kv, nats.DefaultKey, `{"n":0}`)
	src := nats.NewSource(nats.WithUrl(srv.URL()), nats.WithBucket("restart"), nats.WithTimeout(time.Second))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)
	putEventually(t, kv, nats.DefaultKey, `{"n":1}`)
	waitForTolerant(t, ch, time.Second, `{"n":1}`)

	srv.Restart(t)
	start := time.Now()
	putEventually(t, kv, nats.DefaultKey, `{"n":2}`)
	put := time.Now()
	waitForTolerant(t, ch, 5*time.Second, `{"n":2}`)
	t.Logf("change after a restart: put %s after the server was back, seen %s after the put",
		put.Sub(start).Round(time.Millisecond), time.Since(put).Round(time.Millisecond))
	if took := time.Since(put); took > time.Second {
		t.Errorf("the change after the restart took %s to reach Next", took)
	}
	putEventually(t, kv, nats.DefaultKey, `{"n":3}`)
	waitForTolerant(t, ch, time.Second, `{"n":3}`)
}

// waitForTolerant waits for the document want, logging the errors Next returns meanwhile.
func waitForTolerant(t *testing.T, ch <-chan result, timeout time.Duration, want string) {
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
				t.Logf("Next (tolerated): %v", r.err)
				continue
			}
			if string(r.cs.Data) == want {
				return
			}
		case <-deadline.C:
			t.Fatalf("%s not seen within %s", want, timeout)
		}
	}
}

// TestFrozenServer: against a server that accepts connections but does not answer,
// Read, Write and Watch fail within the timeout, naming the server.
func TestFrozenServer(t *testing.T) {
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	srv.Stop()
	defer srv.Cont()
	const timeout = 300 * time.Millisecond
	src := nats.NewSource(nats.WithUrl(srv.URL()), nats.WithTimeout(timeout))
	check := func(what string, err error, took time.Duration) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded against a frozen server", what)
		}
		if !strings.Contains(err.Error(), srv.URL()) {
			t.Errorf("%s error does not name %s: %v", what, srv.URL(), err)
		}
		if took > timeout+700*time.Millisecond {
			t.Errorf("%s took %s, timeout %s", what, took, timeout)
		}
		t.Logf("%s after %s: %v", what, took.Round(time.Millisecond), err)
	}
	start := time.Now()
	_, err := src.Read()
	check("Read", err, time.Since(start))
	start = time.Now()
	check("Write", src.Write(&source.ChangeSet{Data: []byte(`{}`)}), time.Since(start))
	start = time.Now()
	w, err := src.Watch()
	check("Watch", err, time.Since(start))
	if w != nil {
		t.Error("Watch returned a watcher with its error")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Logf("error is not a timeout: %v", err)
	}
}
