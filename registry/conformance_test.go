package registry_test

import (
	"testing"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/registrytest"
)

func TestMemoryConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return registry.NewMemoryRegistry() })
}
