package config_test

import (
	"strconv"
	"testing"

	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/memory"
)

func benchConfig(b *testing.B) (config.Config, source.Source) {
	src := memory.NewSource(memory.WithJSON([]byte(`{"greeting":"Hello","db":{"host":"h","port":5432,"pool":{"max":10}}}`)))
	c, err := config.NewConfig(config.WithSource(src))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c, src
}

// BenchmarkConfigGet is a handler reading one value per call.
func BenchmarkConfigGet(b *testing.B) {
	c, _ := benchConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		v, _ := c.Get("greeting")
		if v.String("") != "Hello" {
			b.Fatal("wrong value")
		}
	}
}

// BenchmarkConfigGetParallel reads from every core at once.
func BenchmarkConfigGetParallel(b *testing.B) {
	c, _ := benchConfig(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v, _ := c.Get("db", "pool", "max")
			if v.Int(0) != 10 {
				b.Error("wrong value")
				return
			}
		}
	})
}

// BenchmarkConfigReload is one source change through to a watcher: merge, values,
// snapshot, Next.
func BenchmarkConfigReload(b *testing.B) {
	c, src := benchConfig(b)
	w, err := c.Watch("db", "port")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	up := src.(memory.Updater)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		up.Update(&source.ChangeSet{Data: []byte(`{"greeting":"Hello","db":{"host":"h","port":` + strconv.Itoa(i) + `,"pool":{"max":10}}}`)})
		v, err := w.Next()
		if err != nil || v.Int(0) != i {
			b.Fatalf("reload %d: %v", i, err)
		}
	}
}
