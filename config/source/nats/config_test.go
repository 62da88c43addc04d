package nats_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source/nats"
)

// TestConfigIntegration: a config with the NATS source reads the key's document, and a
// config.Watcher on a path sees each value another client puts at the key within a
// second; a yaml key works the same way.
func TestConfigIntegration(t *testing.T) {
	url := server(t)
	bucket := bucketName(t)
	kv := kvOf(t, bucket)
	put(t, kv, nats.DefaultKey, `{"db":{"host":"db1","port":5432},"greeting":"hello"}`)
	put(t, kv, "app.yaml", "server:\n  name: from-yaml\n")

	c, err := config.NewConfig(
		config.WithSource(newSource(url, bucket)),
		config.WithSource(newSource(url, bucket, nats.WithKey("app.yaml"), nats.WithFormat("yaml"))),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := get(t, c, "db", "host"); got != "db1" {
		t.Fatalf("db.host = %q", got)
	}
	if got := get(t, c, "server", "name"); got != "from-yaml" {
		t.Fatalf("server.name = %q", got)
	}

	w, err := c.Watch("greeting")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var lat []time.Duration
	for i := 1; i <= 10; i++ {
		want := fmt.Sprintf("nats-%d", i)
		start := time.Now()
		put(t, kv, nats.DefaultKey, fmt.Sprintf(`{"db":{"host":"db1","port":5432},"greeting":%q}`, want))
		for {
			v := nextValue(t, w, time.Second)
			if v.String("") == want {
				break
			}
		}
		lat = append(lat, time.Since(start))
		if got := get(t, c, "greeting"); got != want {
			t.Fatalf("Get = %q after the watcher saw %q", got, want)
		}
	}
	slices.Sort(lat)
	t.Logf("key changes seen by the config watcher: p50 %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)-1] > time.Second {
		t.Fatalf("slowest change took %v (limit 1 s)", lat[len(lat)-1])
	}

	// The yaml key, changed at run time.
	ws, err := c.Watch("server", "name")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Stop()
	put(t, kv, "app.yaml", "server:\n  name: changed\n")
	if v := nextValue(t, ws, time.Second); v.String("") != "changed" {
		t.Fatalf("server.name = %q", v.String(""))
	}
}

func get(t *testing.T, c config.Config, path ...string) string {
	t.Helper()
	v, err := c.Get(path...)
	if err != nil {
		t.Fatal(err)
	}
	return v.String("<default>")
}

// nextValue returns the watcher's next value, failing the test if none comes within
// timeout or Next fails.
func nextValue(t *testing.T, w config.Watcher, timeout time.Duration) reader.Value {
	t.Helper()
	type res struct {
		v   reader.Value
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := w.Next()
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Next: %v", r.err)
		}
		return r.v
	case <-time.After(timeout):
		_ = w.Stop() // ends the pending Next
		<-ch
		t.Fatalf("no change within %s", timeout)
		return nil
	}
}
