package metadata_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/seed-b3892490/micro/metadata"
)

func TestGetIsCaseTolerant(t *testing.T) {
	md := metadata.Metadata{"Micro-Id": "1", "x-lower": "2"}
	for _, k := range []string{"Micro-Id", "Micro-ID", "micro-id", "MICRO-ID"} {
		if v, ok := md.Get(k); !ok || v != "1" {
			t.Fatalf("Get(%q) = %q, %v", k, v, ok)
		}
	}
	if v, ok := md.Get("X-Lower"); !ok || v != "2" {
		t.Fatal("canonical form of a lower-case key")
	}
	if _, ok := md.Get("nope"); ok {
		t.Fatal("found a missing key")
	}
	md.Set("micro-id", "3")
	if len(md) != 2 || md["micro-id"] != "3" {
		t.Fatalf("Set kept a case variant: %v", md)
	}
	md.Delete("MICRO-ID")
	if _, ok := md.Get("Micro-Id"); ok {
		t.Fatal("Delete left a case variant")
	}
}

func TestContextFunctionsCopy(t *testing.T) {
	md := metadata.Metadata{"A": "1"}
	ctx := metadata.NewContext(context.Background(), md)
	md["A"] = "changed"
	if v, _ := metadata.Get(ctx, "A"); v != "1" {
		t.Fatal("NewContext did not copy")
	}
	got, _ := metadata.FromContext(ctx)
	got["A"] = "changed"
	if v, _ := metadata.Get(ctx, "A"); v != "1" {
		t.Fatal("FromContext did not copy")
	}
	ctx2 := metadata.Set(ctx, "B", "2")
	if _, ok := metadata.Get(ctx, "B"); ok {
		t.Fatal("Set changed the parent context")
	}
	if v, _ := metadata.Get(ctx2, "B"); v != "2" {
		t.Fatal("Set")
	}
	ctx3 := metadata.Delete(ctx2, "A")
	if _, ok := metadata.Get(ctx3, "A"); ok {
		t.Fatal("Delete")
	}
	if _, ok := metadata.FromContext(context.Background()); ok {
		t.Fatal("metadata in an empty context")
	}
}

func TestMergeContext(t *testing.T) {
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{"A": "1", "B": "2"})
	kept := metadata.MergeContext(ctx, metadata.Metadata{"A": "x", "C": "3"}, false)
	md, _ := metadata.FromContext(kept)
	if md["A"] != "1" || md["C"] != "3" {
		t.Fatalf("no overwrite: %v", md)
	}
	over := metadata.MergeContext(ctx, metadata.Metadata{"a": "x", "B": ""}, true)
	md, _ = metadata.FromContext(over)
	if v, _ := md.Get("A"); v != "x" || len(md) != 1 {
		t.Fatalf("overwrite: %v", md)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{"A": "1"})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				c := metadata.Set(ctx, fmt.Sprint("K", i), "v")
				_, _ = metadata.Get(c, "A")
				metadata.Range(c, func(k, v string) bool { return true })
			}
		}(i)
	}
	wg.Wait()
}

func BenchmarkGet(b *testing.B) {
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{"Authorization": "Bearer x", "Micro-Id": "1"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = metadata.Get(ctx, "Authorization")
	}
}

func ExampleSet() {
	ctx := metadata.Set(context.Background(), "Micro-Id", "42")
	id, _ := metadata.Get(ctx, "micro-id")
	fmt.Println(id)
	// Output: 42
}
