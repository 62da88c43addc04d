//go:build !linux

package testutil

import (
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// MainInNetns runs the tests here: network namespaces are Linux only, so NeedNetns skips
// the multicast tests (fails them under MICRO_TEST_REQUIRE=1).
func MainInNetns(m *testing.M) { goleak.VerifyTestMain(m) }

// InNetns reports false: network namespaces are Linux only.
func InNetns() bool { return false }

// NeedNetns skips the test (or fails it under MICRO_TEST_REQUIRE=1).
func NeedNetns(t testing.TB) {
	t.Helper()
	SkipOrFail(t, "multicast test skipped: network namespaces are Linux only")
}

// Host is a network namespace made by LinkedHosts (Linux only).
type Host struct {
	Netns string
	Addr  string
}

// Command returns a command that runs name (in the host's namespace on Linux).
func (h Host) Command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// LinkedHosts skips the test: network namespaces are Linux only.
func LinkedHosts(t testing.TB, n int) []Host {
	t.Helper()
	NeedNetns(t)
	return nil
}
