// Package testutil holds helpers shared by micro's tests: waiting on conditions with a
// bound, free loopback ports, and backend requirements.
package testutil

import (
	"net"
	"os"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it is true or timeout passes, and
// fails the test with msg in the latter case.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %s: %s", timeout, msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Long reports whether the long tier of the reliability battery is asked for
// (MICRO_TEST_LONG=1).
func Long() bool { return os.Getenv("MICRO_TEST_LONG") == "1" }

// Required reports whether unreachable backends must fail tests instead of skipping them
// (MICRO_TEST_REQUIRE=1, set by .ci/run).
func Required() bool { return os.Getenv("MICRO_TEST_REQUIRE") == "1" }

// SkipOrFail skips the test with a clear message, or fails it when backends are required.
func SkipOrFail(t testing.TB, format string, args ...interface{}) {
	t.Helper()
	if Required() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
