package etcd_test

import (
	"fmt"
	"testing"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/etcd"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// BenchmarkRead reads a tree of 20 keys from a real etcd: "dial" without a watcher, so
// each Read connects and closes its client; "shared" while a watcher holds the source's
// client, which the Reads use.
func BenchmarkRead(b *testing.B) {
	ep := testutil.EtcdEndpoint(b)
	cli := rawClient(b, ep)
	for i := 0; i < 20; i++ {
		put(b, cli, fmt.Sprintf("/bench/read/group%d/key%d", i%4, i), fmt.Sprint(i*7))
	}
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/bench/read"))
	read := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.Read(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("dial", read)
	b.Run("shared", func(b *testing.B) {
		w, err := src.Watch()
		if err != nil {
			b.Fatal(err)
		}
		defer func(w source.Watcher) { _ = w.Stop() }(w)
		read(b)
	})
}
