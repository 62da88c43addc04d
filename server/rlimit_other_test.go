//go:build !linux

package server_test

import (
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// raiseNoFile skips: the tests that need many file descriptors also read /proc.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	testutil.SkipOrFail(t, "the test needs %d file descriptors and /proc: Linux only", need)
}
