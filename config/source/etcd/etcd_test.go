package etcd_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/etcd"
	"github.com/seed-b3892490/micro/internal/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// TestRead reads trees of one etcd, each under its own prefix.
func TestRead(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	cli := rawClient(t, ep)
	read := func(t *testing.T, opts ...source.Option) *source.ChangeSet {
		t.Helper()
		src := etcd.NewSource(append([]source.Option{etcd.WithAddress(ep)}, opts...)...)
		if got := src.String(); got != "etcd" {
			t.Fatalf("String() = %q", got)
		}
		cs, err := src.Read()
		if err != nil {
			t.Fatal(err)
		}
		if cs.Format != "json" || cs.Source != "etcd" || cs.Checksum != cs.Sum() || cs.Timestamp.IsZero() {
			t.Fatalf("change set %+v", cs)
		}
		return cs
	}

	t.Run("nested", func(t *testing.T) {
		put(t, cli,
			"/t/nested/database/host", "db1",
			"/t/nested/database/port", "5432",
			"/t/nested//database//user/", "admin", // empty segments are ignored
			"/t/nested/name", "svc",
			"/t/nestedsibling/x", "not under the prefix",
		)
		cs := read(t, etcd.WithPrefix("/t/nested"))
		sameJSON(t, cs.Data, `{"database":{"host":"db1","port":5432,"user":"admin"},"name":"svc"}`)
		// A trailing slash names the same tree.
		if cs2 := read(t, etcd.WithPrefix("/t/nested/")); cs2.Checksum != cs.Checksum {
			t.Fatalf("prefix with a trailing slash: %s, want %s", cs2.Data, cs.Data)
		}
	})

	t.Run("json values", func(t *testing.T) {
		put(t, cli,
			"/t/json/obj", `{"a":{"b":[1,2]},"c":"d"}`,
			"/t/json/int", "42",
			"/t/json/big", "12345678901234567890",
			"/t/json/float", "1.50",
			"/t/json/bool", "true",
			"/t/json/null", "null",
			"/t/json/quoted", `"7"`,
			"/t/json/arr", `[1,"x",{"y":false}]`,
		)
		cs := read(t, etcd.WithPrefix("/t/json"))
		doc := decode(t, cs)
		if n, ok := field(doc, "int").(json.Number); !ok || n != "42" {
			t.Fatalf("int = %#v", field(doc, "int"))
		}
		if n, ok := field(doc, "big").(json.Number); !ok || n != "12345678901234567890" {
			t.Fatalf("big number not kept exact: %#v", field(doc, "big"))
		}
		if n, ok := field(doc, "float").(json.Number); !ok || n != "1.50" {
			t.Fatalf("float = %#v", field(doc, "float"))
		}
		if b, ok := field(doc, "bool").(bool); !ok || !b {
			t.Fatalf("bool = %#v", field(doc, "bool"))
		}
		if s, ok := field(doc, "quoted").(string); !ok || s != "7" {
			t.Fatalf("quoted = %#v", field(doc, "quoted"))
		}
		sameJSON(t, cs.Data, `{"obj":{"a":{"b":[1,2]},"c":"d"},"int":42,"big":12345678901234567890,
			"float":1.50,"bool":true,"null":null,"quoted":"7","arr":[1,"x",{"y":false}]}`)
	})

	t.Run("plain strings", func(t *testing.T) {
		put(t, cli,
			"/t/str/a", "hello world",
			"/t/str/b", "007",
			"/t/str/c", "{not json",
			"/t/str/d", "",
			"/t/str/e", "12abc",
			"/t/str/f", "<b>&</b>",
		)
		cs := read(t, etcd.WithPrefix("/t/str"))
		sameJSON(t, cs.Data, `{"a":"hello world","b":"007","c":"{not json","d":"","e":"12abc","f":"<b>&</b>"}`)
		if strings.Contains(string(cs.Data), `\u003c`) {
			t.Fatalf("HTML escaped: %s", cs.Data)
		}
	})

	t.Run("strip prefix false", func(t *testing.T) {
		put(t, cli, "/t/keep/db/host", "db1", "/t/keep/port", "80")
		cs := read(t, etcd.WithPrefix("/t/keep"), etcd.StripPrefix(false))
		sameJSON(t, cs.Data, `{"t":{"keep":{"db":{"host":"db1"},"port":80}}}`)
	})

	t.Run("empty prefix", func(t *testing.T) {
		cs := read(t, etcd.WithPrefix("/t/nothing/here"))
		if string(cs.Data) != "{}" {
			t.Fatalf("empty tree: %s", cs.Data)
		}
	})

	t.Run("root", func(t *testing.T) {
		put(t, cli, "/t/root", `{"a":1,"b":{"c":2}}`, "/t/root/b/d", "3")
		sameJSON(t, read(t, etcd.WithPrefix("/t/root")).Data, `{"a":1,"b":{"c":2,"d":3}}`)
		// A root value that is not an object is ignored.
		put(t, cli, "/t/rootleaf", "x", "/t/rootleaf/a", "1")
		sameJSON(t, read(t, etcd.WithPrefix("/t/rootleaf")).Data, `{"a":1}`)
	})

	t.Run("conflicts", func(t *testing.T) {
		put(t, cli,
			// a leaf and a subtree at one path: the deeper key wins
			"/t/conf/a/b", "2",
			"/t/conf/a", "1",
			// an object and a deeper key: they merge, the deeper key winning
			"/t/conf/o", `{"b":1,"c":2}`,
			"/t/conf/o/b", "3",
			// an object under a deeper leaf's parent: the leaf is kept
			"/t/conf/p/q/r", "deep",
			"/t/conf/p", `{"q":"shallow","s":true}`,
			// the same path twice (empty segments): the later key in byte order wins
			"/t/conf/x/y", "first",
			"/t/conf/x//y", "second",
		)
		cs := read(t, etcd.WithPrefix("/t/conf"))
		// "/t/conf/x//y" < "/t/conf/x/y" in byte order, so "/t/conf/x/y" is applied last.
		sameJSON(t, cs.Data, `{"a":{"b":2},"o":{"b":3,"c":2},"p":{"q":{"r":"deep"},"s":true},"x":{"y":"first"}}`)
		for i := 0; i < 3; i++ {
			if again := read(t, etcd.WithPrefix("/t/conf")); again.Checksum != cs.Checksum {
				t.Fatalf("not deterministic: %s then %s", cs.Data, again.Data)
			}
		}
	})
}

// TestWrite writes documents and reads them back.
func TestWrite(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	cli := rawClient(t, ep)
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/write"))
	write := func(doc string) error {
		return src.Write(&source.ChangeSet{Format: "json", Data: []byte(doc)})
	}
	doc := `{"database":{"host":"db1","port":5432,"ratio":0.25},"flags":{"on":true,"off":false},
		"s":{"num":"12","bool":"true","quoted":"\"q\"","plain":"x y","empty":""},"list":[1,{"a":2}],"nil":null,"obj":{}}`
	if err := write(doc); err != nil {
		t.Fatal(err)
	}
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, doc)
	// Strings are stored as they are unless they would read back as something else.
	resp, err := cli.Get(t.Context(), "/t/write/s/plain")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "x y" {
		t.Fatalf("plain string stored as %v (%v)", resp.Kvs, err)
	}
	resp, err = cli.Get(t.Context(), "/t/write/s/num")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `"12"` {
		t.Fatalf("numeric string stored as %v (%v)", resp.Kvs, err)
	}

	// Writing the same document changes nothing.
	before, _ := cli.Get(t.Context(), "/t/write", clientv3.WithPrefix())
	if err := write(doc); err != nil {
		t.Fatal(err)
	}
	after, _ := cli.Get(t.Context(), "/t/write", clientv3.WithPrefix())
	for i := range before.Kvs {
		if before.Kvs[i].ModRevision != after.Kvs[i].ModRevision {
			t.Fatalf("unchanged key %s rewritten", before.Kvs[i].Key)
		}
	}

	// A new document replaces the old one: keys not in it are deleted, siblings are not.
	put(t, cli, "/t/writesibling", "kept")
	if err := write(`{"database":{"host":"db2"},"new":1}`); err != nil {
		t.Fatal(err)
	}
	cs, err = src.Read()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"database":{"host":"db2"},"new":1}`)
	if resp, err := cli.Get(t.Context(), "/t/writesibling"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("sibling of the prefix deleted: %v %v", resp, err)
	}

	// Documents that cannot be stored.
	for _, bad := range []string{`[1]`, `"x"`, `{"a/b":1}`, `{"":1}`, `{"a":`, `{} {}`} {
		if err := write(bad); err == nil {
			t.Errorf("Write(%s) succeeded", bad)
		}
	}
	if err := src.Write(&source.ChangeSet{Format: "yaml", Data: []byte("a: 1")}); err == nil {
		t.Error("Write of yaml succeeded")
	}
	if err := src.Write(nil); err == nil {
		t.Error("Write(nil) succeeded")
	}

	// Without stripping, the document holds the prefix's path.
	keep := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/write"), etcd.StripPrefix(false))
	if err := keep.Write(&source.ChangeSet{Data: []byte(`{"t":{"write":{"k":"v"}}}`)}); err != nil {
		t.Fatal(err)
	}
	if cs, err = src.Read(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"k":"v"}`)
	if err := keep.Write(&source.ChangeSet{Data: []byte(`{"t":{"write":{"k":"v"}},"other":1}`)}); err == nil {
		t.Error("Write of keys outside the prefix succeeded")
	}
}

// TestUnreachable: with nobody listening, Read, Write and Watch fail within the dial
// timeout, naming the address, and leave nothing running.
func TestUnreachable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr := testutil.FreeAddr(t)
	const timeout = 300 * time.Millisecond
	src := etcd.NewSource(etcd.WithAddress(addr), etcd.WithDialTimeout(timeout))
	check := func(what string, err error, took time.Duration) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded against %s", what, addr)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("%s error does not name %s: %v", what, addr, err)
		}
		if took > timeout+700*time.Millisecond {
			t.Errorf("%s took %s, dial timeout %s", what, took, timeout)
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

// TestNewSourceIsLazy: NewSource starts nothing and dials nothing.
func TestNewSourceIsLazy(t *testing.T) {
	before := runtime.NumGoroutine()
	src := etcd.NewSource(etcd.WithAddress(testutil.FreeAddr(t)), etcd.Auth("u", "p"))
	if src.String() != "etcd" {
		t.Fatal(src.String())
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("NewSource started %d goroutines", after-before)
	}
}
