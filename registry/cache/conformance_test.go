package cache_test

import (
	"testing"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
	"github.com/seed-b3892490/micro/registry/registrytest"
)

func TestCacheConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		c := cache.New(registry.NewMemoryRegistry())
		t.Cleanup(c.Stop)
		return c
	})
}
