package nats_test

import (
	"context"
	"crypto/tls"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
	"go.uber.org/goleak"
)

// checkChangeSet fails the test unless cs is a complete change set of the source.
func checkChangeSet(t *testing.T, cs *source.ChangeSet, format string) {
	t.Helper()
	if cs.Format != format || cs.Source != "nats" || cs.Checksum != cs.Sum() || cs.Timestamp.IsZero() {
		t.Fatalf("change set %+v", cs)
	}
}

// TestReadMissing: a bucket that does not exist is created and reads as {}; so does a
// key that does not exist, or was deleted.
func TestReadMissing(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket)
	if got := src.String(); got != "nats" {
		t.Fatalf("String() = %q", got)
	}
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	checkChangeSet(t, cs, "json")
	if string(cs.Data) != "{}" {
		t.Fatalf("missing bucket: %s", cs.Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := admin(t).KeyValue(ctx, bucket); err != nil {
		t.Fatalf("the bucket was not created: %v", err)
	}

	// A key that was deleted, and one that never existed, in an existing bucket.
	kv := kvOf(t, bucket)
	put(t, kv, "gone", `{"a":1}`)
	del(t, kv, "gone")
	for _, key := range []string{"gone", "never"} {
		cs, err := newSource(url, bucket, nats.WithKey(key)).Read()
		if err != nil {
			t.Fatal(err)
		}
		checkChangeSet(t, cs, "json")
		if string(cs.Data) != "{}" {
			t.Fatalf("key %s: %s", key, cs.Data)
		}
	}
}

// TestWriteRead: a written document reads back byte for byte, at the default key unless
// WithKey; another client's value at the key is what Read returns.
func TestWriteRead(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket)
	doc := `{"database":{"host":"db1","port":5432},"name":"svc"}`
	if err := src.Write(&source.ChangeSet{Format: "json", Data: []byte(doc)}); err != nil {
		t.Fatal(err)
	}
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	checkChangeSet(t, cs, "json")
	if string(cs.Data) != doc {
		t.Fatalf("read back %s, want %s", cs.Data, doc)
	}
	kv := kvOf(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, nats.DefaultKey)
	if err != nil || string(e.Value()) != doc {
		t.Fatalf("value at %s: %v", nats.DefaultKey, err)
	}

	// Another client's value.
	put(t, kv, nats.DefaultKey, `{"name":"other"}`)
	if cs, err = src.Read(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"name":"other"}`)

	// Another key of the same bucket.
	other := newSource(url, bucket, nats.WithKey("svc.other"))
	if err := other.Write(&source.ChangeSet{Data: []byte(`{"x":true}`)}); err != nil {
		t.Fatal(err)
	}
	if cs, err = other.Read(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"x":true}`)
	if cs, err = src.Read(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"name":"other"}`)

	// An empty value is the empty document.
	put(t, kv, "empty", "")
	if cs, err = newSource(url, bucket, nats.WithKey("empty")).Read(); err != nil {
		t.Fatal(err)
	}
	if string(cs.Data) != "{}" || cs.Format != "json" {
		t.Fatalf("empty value: %+v", cs)
	}

	// Change sets that cannot be written.
	if err := src.Write(nil); err == nil {
		t.Error("Write(nil) succeeded")
	}
	if err := src.Write(&source.ChangeSet{Format: "yaml", Data: []byte("a: 1")}); err == nil {
		t.Error("Write of yaml to a json source succeeded")
	}
	bad := newSource(url, bucket, nats.WithKey("bad key*"))
	if err := bad.Write(&source.ChangeSet{Data: []byte(`{}`)}); err == nil || !strings.Contains(err.Error(), "bad key*") {
		t.Errorf("Write to an invalid key: %v", err)
	}
}

// TestYAML: WithFormat sets the format of the change sets; the value is kept as it is.
func TestYAML(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	src := newSource(url, bucket, nats.WithFormat("yaml"), nats.WithKey("app.yaml"))
	doc := "server:\n  name: svc\n  port: 8080\n"
	if err := src.Write(&source.ChangeSet{Format: "yaml", Data: []byte(doc)}); err != nil {
		t.Fatal(err)
	}
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	checkChangeSet(t, cs, "yaml")
	if string(cs.Data) != doc {
		t.Fatalf("read back %q, want %q", cs.Data, doc)
	}
	// A format-less change set is taken as the source's format.
	if err := src.Write(&source.ChangeSet{Data: []byte("a: 1\n")}); err != nil {
		t.Fatal(err)
	}
	if err := src.Write(&source.ChangeSet{Format: "json", Data: []byte(`{}`)}); err == nil {
		t.Error("Write of json to a yaml source succeeded")
	}
}

// TestUnreachable: with nobody listening, Read, Write and Watch fail within the timeout,
// naming the server, and leave nothing running.
func TestUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	url := "nats://" + testutil.FreeAddr(t)
	const timeout = 300 * time.Millisecond
	src := nats.NewSource(nats.WithUrl(url), nats.WithTimeout(timeout), nats.WithBucket("b"), nats.WithKey("k"))
	check := func(what string, err error, took time.Duration) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded against %s", what, url)
		}
		if !strings.Contains(err.Error(), url) {
			t.Errorf("%s error does not name %s: %v", what, url, err)
		}
		if took > timeout+700*time.Millisecond {
			t.Errorf("%s took %s, timeout %s", what, took, timeout)
		}
		t.Logf("%s after %s: %v", what, took.Round(time.Millisecond), err)
	}
	start := time.Now()
	cs, err := src.Read()
	check("Read", err, time.Since(start))
	if cs != nil {
		t.Errorf("Read returned %+v with its error", cs)
	}
	start = time.Now()
	err = src.Write(&source.ChangeSet{Data: []byte(`{"a":1}`)})
	check("Write", err, time.Since(start))
	start = time.Now()
	w, err := src.Watch()
	check("Watch", err, time.Since(start))
	if w != nil {
		t.Errorf("Watch returned a watcher with its error")
	}
}

// TestErrorsNameBucketAndKey: an error of a request names the bucket and the key.
func TestErrorsNameBucketAndKey(t *testing.T) {
	url := server(t)
	src := newSource(url, "bad.bucket", nats.WithKey("k1"))
	_, err := src.Read()
	if err == nil {
		t.Fatal("Read of an invalid bucket name succeeded")
	}
	if !errors.Is(err, jetstream.ErrInvalidBucketName) {
		t.Logf("error is not ErrInvalidBucketName: %v", err)
	}
	for _, want := range []string{"bad.bucket", "k1", url} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// TestNewSourceIsLazy: NewSource starts nothing and dials nothing.
func TestNewSourceIsLazy(t *testing.T) {
	before := runtime.NumGoroutine()
	src := nats.NewSource(nats.WithUrl("nats://"+testutil.FreeAddr(t)), nats.WithTimeout(time.Second))
	if src.String() != "nats" {
		t.Fatal(src.String())
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("NewSource started %d goroutines", after-before)
	}
}

// TestTLSConfig: WithTLSConfig requires TLS, which the plain test server does not offer:
// Read fails, naming the server.
func TestTLSConfig(t *testing.T) {
	url := server(t)
	src := nats.NewSource(nats.WithUrl(url), nats.WithTLSConfig(&tls.Config{ServerName: "localhost"}),
		nats.WithTimeout(time.Second))
	_, err := src.Read()
	if err == nil {
		t.Fatal("Read over TLS from a plain server succeeded")
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error does not name %s: %v", url, err)
	}
	t.Log(err)
}

// TestUrls: several servers, in one argument or several, of which one answers.
func TestUrls(t *testing.T) {
	url := server(t)
	dead := "nats://" + testutil.FreeAddr(t)
	for _, opt := range []source.Option{
		nats.WithUrl(dead + ", " + url),
		nats.WithUrl(dead, url),
	} {
		src := nats.NewSource(opt, nats.WithBucket(bucketName(t)), nats.WithTimeout(time.Second))
		if _, err := src.Read(); err != nil {
			t.Fatal(err)
		}
	}
}
