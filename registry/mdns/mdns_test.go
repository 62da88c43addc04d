package mdns_test

import (
	"io"
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/mdns"
	"github.com/seed-b3892490/micro/registry/registrytest"
)

// The tests multicast, so they run in a network namespace of their own.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }

func newRegistry(t *testing.T, opts ...registry.Option) registry.Registry {
	t.Helper()
	r := mdns.NewRegistry(opts...)
	t.Cleanup(func() { _ = r.(io.Closer).Close() })
	return r
}

func TestConformance(t *testing.T) {
	testutil.NeedNetns(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry { return newRegistry(t) })
}
