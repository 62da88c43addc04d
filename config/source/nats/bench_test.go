package nats_test

import (
	"testing"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/nats"
)

// BenchmarkRead reads a 1 KiB-ish JSON document from the shared NATS server: "dial"
// without a watcher, so each Read connects and closes its connection; "shared" while a
// watcher holds the source's connection, which the Reads use.
func BenchmarkRead(b *testing.B) {
	url := server(b)
	bucket := bucketName(b)
	doc := `{"database":{"host":"db1","port":5432,"user":"admin","pool":{"min":1,"max":20}},` +
		`"server":{"name":"svc","address":":8080","timeouts":{"read":"5s","write":"5s"}},` +
		`"features":["a","b","c","d"],"greeting":"hello"}`
	put(b, kvOf(b, bucket), nats.DefaultKey, doc)
	src := newSource(url, bucket)
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
