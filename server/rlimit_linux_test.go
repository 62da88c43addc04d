//go:build linux

package server_test

import (
	"syscall"
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to need file descriptors, skipping the
// test (or failing it, with MICRO_TEST_REQUIRE=1) when the hard limit is lower.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		testutil.SkipOrFail(t, "cannot read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		testutil.SkipOrFail(t, "the test needs %d file descriptors; the RLIMIT_NOFILE hard limit is %d", need, lim.Max)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		testutil.SkipOrFail(t, "cannot raise RLIMIT_NOFILE to %d: %v", need, err)
	}
}
