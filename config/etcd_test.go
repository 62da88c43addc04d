//go:build linux

package config_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/seed-b3892490/micro/config/source/env"
	"github.com/seed-b3892490/micro/config/source/etcd"
	"github.com/seed-b3892490/micro/config/source/file"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// TestEnvFileEtcdMerged is issue 8's acceptance 1 and the etcd half of 2: env, a file and
// a real etcd merged in that order. A key set in all three comes from etcd, nested maps
// merge key by key, defaults apply where no source has the key, and a change of an etcd
// key reaches a watcher within 1 s.
func TestEnvFileEtcdMerged(t *testing.T) {
	endpoint := testutil.StartEtcd(t).Endpoint()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(k, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, "/micro/config/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	put("greeting", "from-etcd")
	put("db/opts/c", "etcd")
	put("db/replicas", `["r1","r2"]`)

	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, `{"greeting":"from-file","db":{"host":"file-host","port":1,"opts":{"a":"file","b":"file"}},"only_file":"f"}`)
	t.Setenv("MICROTESTACC_GREETING", "from-env")
	t.Setenv("MICROTESTACC_DB_PORT", "2")
	t.Setenv("MICROTESTACC_DB_OPTS_B", "env")
	t.Setenv("MICROTESTACC_ENVONLY", "e")

	c := newConfig(t)
	if err := c.Load(
		env.NewSource(env.WithStrippedPrefix("MICROTESTACC")),
		file.NewSource(file.WithPath(path)),
		etcd.NewSource(etcd.WithAddress(endpoint)),
	); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"greeting"}, "from-etcd"}, // set in all three: the last wins
		{[]string{"db", "host"}, "file-host"},
		{[]string{"db", "port"}, "1"},         // the file comes after env
		{[]string{"db", "opts", "a"}, "file"}, // nested maps merge key by key
		{[]string{"db", "opts", "b"}, "file"},
		{[]string{"db", "opts", "c"}, "etcd"},
		{[]string{"envonly"}, "e"},
		{[]string{"only_file"}, "f"},
		{[]string{"db", "user"}, "<default>"}, // no source has it
	} {
		if got := str(t, c, tc.path...); got != tc.want {
			t.Errorf("%v = %q, want %q", tc.path, got, tc.want)
		}
	}
	if v, _ := c.Get("db", "replicas"); fmt.Sprint(v.StringSlice(nil)) != "[r1 r2]" {
		t.Errorf("db.replicas = %q", v.StringSlice(nil))
	}
	if v, _ := c.Get("db", "timeout"); v.Duration(3*time.Second) != 3*time.Second {
		t.Error("default duration not applied")
	}

	w, err := c.Watch("greeting")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var lat []time.Duration
	for i := 1; i <= 20; i++ {
		want := fmt.Sprintf("etcd-%d", i)
		start := time.Now()
		put("greeting", want)
		for {
			v, err := next(t, w, 5*time.Second)
			if err != nil {
				t.Logf("change %d: transient error %v", i, err)
				continue
			}
			if v.String("") == want {
				break
			}
		}
		lat = append(lat, time.Since(start))
		if got := str(t, c, "greeting"); got != want {
			t.Fatalf("Get = %q after the watcher saw %q", got, want)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("etcd key changes seen by the config watcher: p50 %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)-1] > time.Second {
		t.Fatalf("slowest change took %v (limit 1 s)", lat[len(lat)-1])
	}
	// An etcd key over a file key, changed at run time, still merges with the file's map.
	put("db/opts/a", "etcd-now")
	testutil.Eventually(t, 5*time.Second, func() bool { return str(t, c, "db", "opts", "a") == "etcd-now" }, "db.opts.a from etcd")
	if got := str(t, c, "db", "opts", "b"); got != "file" {
		t.Fatalf("db.opts.b = %q after the etcd change", got)
	}
}
