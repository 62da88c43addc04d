package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/reader"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/env"
	"github.com/seed-b3892490/micro/config/source/file"
	"github.com/seed-b3892490/micro/config/source/memory"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
)

func newConfig(t *testing.T, opts ...config.Option) config.Config {
	t.Helper()
	c, err := config.NewConfig(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func str(t *testing.T, c config.Config, path ...string) string {
	t.Helper()
	v, err := c.Get(path...)
	if err != nil {
		t.Fatal(err)
	}
	return v.String("<default>")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// next waits for w's next value or error, failing the test after timeout.
func next(t *testing.T, w config.Watcher, timeout time.Duration) (reader.Value, error) {
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
		return r.v, r.err
	case <-time.After(timeout):
		_ = w.Stop()
		<-ch
		t.Fatalf("watcher gave nothing within %s", timeout)
		return nil, nil
	}
}

func TestPrecedenceDefaultsAndDeepMerge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "greeting: from-file\ndb:\n  host: file-host\n  port: 5432\n  pool:\n    max: 10\nonly_file: yes\n")
	t.Setenv("MICROTESTPREC_GREETING", "from-env")
	t.Setenv("MICROTESTPREC_DB_PORT", "6543")
	t.Setenv("MICROTESTPREC_DB_POOL_MIN", "2")
	c := newConfig(t)
	err := c.Load(
		memory.NewSource(memory.WithJSON([]byte(`{"greeting":"from-memory","db":{"user":"mem-user"}}`))),
		file.NewSource(file.WithPath(path)),
		env.NewSource(env.WithStrippedPrefix("MICROTESTPREC")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(t, c, "greeting"); got != "from-env" {
		t.Errorf("greeting = %q, want the last source's", got)
	}
	if got := str(t, c, "db", "host"); got != "file-host" {
		t.Errorf("db.host = %q", got)
	}
	if got := str(t, c, "db", "user"); got != "mem-user" {
		t.Errorf("db.user = %q (nested maps must merge)", got)
	}
	if v, _ := c.Get("db", "port"); v.Int(0) != 6543 {
		t.Errorf("db.port = %d", v.Int(0))
	}
	if v, _ := c.Get("db", "pool", "max"); v.Int(0) != 10 {
		t.Errorf("db.pool.max = %d", v.Int(0))
	}
	if v, _ := c.Get("db", "pool", "min"); v.Int(0) != 2 {
		t.Errorf("db.pool.min = %d", v.Int(0))
	}
	if v, _ := c.Get("missing", "key"); v.String("fallback") != "fallback" || v.Int(7) != 7 {
		t.Errorf("defaults not applied")
	}
	type DB struct {
		Host    string `json:"host"`
		Port    int    `json:"port"`
		User    string `json:"user"`
		Timeout string `json:"timeout"`
	}
	db := DB{Timeout: "5s", Host: "x"}
	v, _ := c.Get("db")
	if err := v.Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != (DB{Host: "file-host", Port: 6543, User: "mem-user", Timeout: "5s"}) {
		t.Errorf("scan = %+v", db)
	}
}

func TestLoadFailingSourceIsWatchedUntilReadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "late.json")
	c := newConfig(t)
	err := c.Load(memory.NewSource(memory.WithJSON([]byte(`{"a":"mem"}`))), file.NewSource(file.WithPath(path)))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if got := str(t, c, "a"); got != "mem" {
		t.Fatalf("a = %q: the readable source must still load", got)
	}
	w, err := c.Watch("a")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writeFile(t, path, `{"a":"file"}`)
	v, err := next(t, w, 5*time.Second)
	if err != nil || v.String("") != "file" {
		t.Fatalf("late file: %v %v", v, err)
	}
}

func TestWatcherOnlyFiresForItsPath(t *testing.T) {
	src := memory.NewSource(memory.WithJSON([]byte(`{"a":1,"b":1}`)))
	c := newConfig(t, config.WithSource(src))
	w, err := c.Watch("b")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	up := src.(memory.Updater)
	up.Update(&source.ChangeSet{Data: []byte(`{"a":2,"b":1}`)})
	up.Update(&source.ChangeSet{Data: []byte(`{"a":3,"b":1}`)})
	up.Update(&source.ChangeSet{Data: []byte(`{"a":3,"b":2}`)})
	v, err := next(t, w, 5*time.Second)
	if err != nil || v.Int(0) != 2 {
		t.Fatalf("b watcher: %v %v", v, err)
	}
	// After Next returned, Get gives that value or a newer one, never an older.
	if v, _ := c.Get("a"); v.Int(0) != 3 {
		t.Fatalf("Get after Next: a = %d", v.Int(0))
	}
}

func TestWatcherStopAndClose(t *testing.T) {
	src := memory.NewSource()
	c, err := config.NewConfig(config.WithSource(src))
	if err != nil {
		t.Fatal(err)
	}
	w1, _ := c.Watch()
	w2, _ := c.Watch("x")
	done := make(chan error, 2)
	go func() { _, err := w1.Next(); done <- err }()
	go func() { _, err := w2.Next(); done <- err }()
	if err := w1.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Watch(); err == nil {
		t.Fatal("Watch after Close: no error")
	}
	if err := c.Load(memory.NewSource()); err == nil {
		t.Fatal("Load after Close: no error")
	}
	if c.Map() == nil {
		t.Fatal("values must stay readable after Close")
	}
}

func TestWatcherDisabledChangesOnlyOnSync(t *testing.T) {
	src := memory.NewSource(memory.WithJSON([]byte(`{"v":1}`)))
	c := newConfig(t, config.WithWatcherDisabled(), config.WithSource(src))
	src.(memory.Updater).Update(&source.ChangeSet{Data: []byte(`{"v":2}`)})
	if v, _ := c.Get("v"); v.Int(0) != 1 {
		t.Fatalf("v = %d before Sync", v.Int(0))
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("v"); v.Int(0) != 2 {
		t.Fatalf("v = %d after Sync", v.Int(0))
	}
}

func TestSetAndDelLastUntilTheNextChange(t *testing.T) {
	src := memory.NewSource(memory.WithJSON([]byte(`{"a":1,"b":1}`)))
	c := newConfig(t, config.WithSource(src))
	c.Set("set", "a")
	c.Del("b")
	if str(t, c, "a") != "set" || str(t, c, "b") != "<default>" {
		t.Fatalf("Set/Del: %s", c.Bytes())
	}
	w, _ := c.Watch()
	defer w.Stop()
	src.(memory.Updater).Update(&source.ChangeSet{Data: []byte(`{"a":2,"b":2}`)})
	if _, err := next(t, w, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("a"); v.Int(0) != 2 {
		t.Fatalf("a = %s after a source change", c.Bytes())
	}
}

func TestPackageFunctionsUseDefaultConfig(t *testing.T) {
	c := newConfig(t, config.WithWatcherDisabled())
	old := config.DefaultConfig
	config.DefaultConfig = c
	defer func() { config.DefaultConfig = old }()
	path := filepath.Join(t.TempDir(), "c.toml")
	writeFile(t, path, "name = \"toml\"\n[srv]\nport = 9\n")
	if err := config.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if v, _ := config.Get("srv", "port"); v.Int(0) != 9 {
		t.Fatalf("Get = %s", config.Bytes())
	}
	var s struct{ Name string }
	if err := config.Scan(&s); err != nil || s.Name != "toml" {
		t.Fatalf("Scan: %v %+v", err, s)
	}
	if config.Map()["name"] != "toml" {
		t.Fatal("Map")
	}
	if err := config.Load(memory.NewSource(memory.WithJSON([]byte(`{"name":"mem"}`)))); err != nil {
		t.Fatal(err)
	}
	if err := config.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, _ := config.Get("name"); v.String("") != "mem" {
		t.Fatal("later source must win")
	}
	if _, err := config.Watch("name"); err != nil {
		t.Fatal(err)
	}
}

func TestNewConfigStartsNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := config.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get("x"); v.String("d") != "d" {
		t.Fatal("empty config")
	}
	if string(c.Bytes()) != "{}" {
		t.Fatalf("empty config bytes %q", c.Bytes())
	}
	_ = c.Close()
}

// TestHotReloadEverySaveStyle is acceptance 2 through the whole config: a file changed in
// place, replaced by rename, and rewritten by truncation, each seen by a config watcher
// 100 times out of 100, each within 1 s. It runs once per test binary
// (config/source/file's TestH1SaveStyles does the same at the source, with delete and
// recreate as well).
func TestHotReloadEverySaveStyle(t *testing.T) {
	testutil.Scenario(t)
	const n = 100
	styles := map[string]func(t *testing.T, path, data string){
		"in-place": func(t *testing.T, path, data string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Same length every time, so writing over the old bytes is the whole change.
			if _, err := f.WriteAt([]byte(data), 0); err != nil {
				t.Fatal(err)
			}
		},
		"rename": func(t *testing.T, path, data string) {
			tmp := path + ".tmp"
			writeFile(t, tmp, data)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		},
		"truncate": func(t *testing.T, path, data string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			half := len(data) / 2
			if _, err := f.Write([]byte(data[:half])); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(data[half:])); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, save := range styles {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			doc := func(i int) string { return fmt.Sprintf(`{"greeting":"hello %06d"}`, i) }
			writeFile(t, path, doc(0))
			c := newConfig(t, config.WithSource(file.NewSource(file.WithPath(path))))
			w, err := c.Watch("greeting")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			var lat []time.Duration
			for i := 1; i <= n; i++ {
				start := time.Now()
				save(t, path, doc(i))
				want := fmt.Sprintf("hello %06d", i)
				for {
					v, err := next(t, w, 5*time.Second)
					if err != nil {
						t.Logf("edit %d: transient error %v", i, err)
						continue
					}
					if v.String("") == want {
						break
					}
				}
				lat = append(lat, time.Since(start))
				if got := str(t, c, "greeting"); got != want {
					t.Fatalf("edit %d: Get = %q after the watcher saw %q", i, got, want)
				}
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			t.Logf("%s: %d/%d edits seen; p50 %v, p99 %v, max %v", name, len(lat), n, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
			if lat[len(lat)-1] > time.Second {
				t.Fatalf("slowest edit took %v (limit 1 s)", lat[len(lat)-1])
			}
		})
	}
}

// TestH2BadConfig: a malformed JSON or YAML file keeps the last good configuration, the
// error reaches the watcher and the log within 1 s, and the fixed file is taken.
func TestH2BadConfig(t *testing.T) {
	cases := []struct{ ext, good, bad, fixed string }{
		{"json", `{"greeting":"good"}`, `{"greeting": "bro`, `{"greeting":"fixed"}`},
		{"yaml", "greeting: good\n", "greeting: [unclosed\n", "greeting: fixed\n"},
	}
	for _, tc := range cases {
		t.Run(tc.ext, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config."+tc.ext)
			writeFile(t, path, tc.good)
			var logs testutil.SyncBuffer
			log := logger.NewLogger(logger.WithOutput(&logs))
			c := newConfig(t, config.WithLogger(log), config.WithSource(file.NewSource(file.WithPath(path))))
			w, err := c.Watch("greeting")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			start := time.Now()
			writeFile(t, path, tc.bad)
			_, err = next(t, w, 5*time.Second)
			took := time.Since(start)
			if err == nil {
				t.Fatal("the watcher did not report the malformed file")
			}
			if !strings.Contains(err.Error(), "malformed "+tc.ext) || !strings.Contains(err.Error(), "file") {
				t.Fatalf("error %q does not say what is wrong and where", err)
			}
			t.Logf("error after %v: %v", took, err)
			if took > time.Second {
				t.Fatalf("error reported after %v (limit 1 s)", took)
			}
			if got := str(t, c, "greeting"); got != "good" {
				t.Fatalf("greeting = %q: the last good config must be kept", got)
			}
			testutil.Eventually(t, 5*time.Second, func() bool {
				return strings.Contains(logs.String(), "keeping the last good configuration")
			}, "the error is logged")
			writeFile(t, path, tc.fixed)
			for {
				v, err := next(t, w, 5*time.Second)
				if err != nil {
					continue // a second error for the same bad file is allowed
				}
				if v.String("") != "fixed" {
					t.Fatalf("after the fix: %q", v.String(""))
				}
				break
			}
			if got := str(t, c, "greeting"); got != "fixed" {
				t.Fatalf("greeting = %q after the fix", got)
			}
		})
	}
}

// payload is one version of H3's document: every field derives from N, and Sum checks
// them all.
type payload struct {
	N    int                `json:"n"`
	Name string             `json:"name"`
	List []int              `json:"list"`
	Sub  struct{ A, B int } `json:"sub"`
	Sum  string             `json:"sum"`
}

func makePayload(n int) payload {
	p := payload{N: n, Name: fmt.Sprintf("v%d", n), List: []int{n, n + 1, n + 2}}
	p.Sub.A, p.Sub.B = n*2, n*3
	p.Sum = p.checksum()
	return p
}

func (p payload) checksum() string {
	return fmt.Sprintf("%d/%s/%v/%d/%d", p.N, p.Name, p.List, p.Sub.A, p.Sub.B)
}

// TestH3ConcurrentReadsDuringReload: 50 readers while a writer reloads every 10 ms for
// 10 s: every read sees one whole version (checksummed), under -race.
func TestH3ConcurrentReadsDuringReload(t *testing.T) {
	testutil.Scenario(t)
	src := memory.NewSource(memory.WithJSON(mustJSON(t, map[string]interface{}{"payload": makePayload(0)})))
	c := newConfig(t, config.WithSource(src))
	var stop atomic.Bool
	var reads, torn, seenMax, changes atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 50; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			last := -1
			for !stop.Load() {
				var p payload
				var err error
				if r%2 == 0 {
					var v reader.Value
					v, err = c.Get("payload")
					if err == nil {
						err = v.Scan(&p)
					}
				} else {
					var all struct{ Payload payload }
					err = c.Scan(&all)
					p = all.Payload
				}
				if err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
				if p.Sum != p.checksum() {
					torn.Add(1)
					t.Errorf("torn read: %+v", p)
					return
				}
				if p.N < last {
					t.Errorf("reader %d went back from version %d to %d", r, last, p.N)
					return
				}
				if p.N != last {
					changes.Add(1)
				}
				last = p.N
				if int64(p.N) > seenMax.Load() {
					seenMax.Store(int64(p.N))
				}
				// Pace the readers (a reader of config does work between reads), so that
				// on two cores the writer still gets to reload every 10 ms.
				time.Sleep(time.Millisecond)
			}
		}(r)
	}
	up := src.(memory.Updater)
	d := 10 * time.Second
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		<-tick.C
		n++
		up.Update(&source.ChangeSet{Data: mustJSON(t, map[string]interface{}{"payload": makePayload(n)})})
	}
	tick.Stop()
	testutil.Eventually(t, 5*time.Second, func() bool {
		v, _ := c.Get("payload", "n")
		return v.Int(-1) == n
	}, "the last version becomes current")
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reloads, %d reads, %d torn, %d version changes seen by readers, newest version a reader saw %d",
		n, reads.Load(), torn.Load(), changes.Load(), seenMax.Load())
	if changes.Load() < int64(n) {
		t.Fatalf("readers saw %d changes of version across %d reloads: the readers did not read during the reloads", changes.Load(), n)
	}
}

func mustJSON(t *testing.T, v interface{}) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// TestH4CloseReturnsGoroutinesAndFDs: closing watchers and the config returns goroutines
// and file descriptors to their baseline.
func TestH4CloseReturnsGoroutinesAndFDs(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	baseFDs := openFDs(t)
	var configs []config.Config
	for i := 0; i < 5; i++ {
		path := filepath.Join(dir, fmt.Sprintf("c%d.json", i))
		writeFile(t, path, `{"a":1}`)
		c, err := config.NewConfig(config.WithSource(file.NewSource(file.WithPath(path))),
			config.WithSource(memory.NewSource()), config.WithSource(env.NewSource(env.WithPrefix("MICRO_TEST_H4"))))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 4; j++ {
			w, err := c.Watch("a")
			if err != nil {
				t.Fatal(err)
			}
			if j%2 == 0 {
				defer w.Stop()
			}
		}
		configs = append(configs, c)
	}
	if openFDs(t) <= baseFDs {
		t.Fatal("watching files opened no descriptor: the test measures nothing")
	}
	for _, c := range configs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := openFDs(t); got > baseFDs {
		t.Fatalf("%d file descriptors open after Close, %d before", got, baseFDs)
	}
}
