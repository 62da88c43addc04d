// Package testutil holds helpers shared by micro's tests: waiting on conditions with a
// bound, free loopback ports, and backend requirements.
package testutil

import (
	"net"
	"os"
	"sync"
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

var scenariosRun sync.Map // test name → true, for Scenario

// Scenario marks t as a fault-injection scenario of the reliability battery: heavy
// (processes killed or frozen, seconds of load) and judged by what happens in it, not by
// how often it runs. It runs once per test binary: the repeats that -count and -cpu ask
// for skip it with a message, so that CI's -count=2 -cpu 1,2 pays for it once (under
// GOMAXPROCS=1, the first of the runs). MICRO_TEST_REPEAT_SCENARIOS=1 repeats them too.
func Scenario(t testing.TB) {
	t.Helper()
	if os.Getenv("MICRO_TEST_REPEAT_SCENARIOS") == "1" {
		return
	}
	if _, again := scenariosRun.LoadOrStore(t.Name(), true); again {
		t.Skip("battery scenario: run once per test binary (set MICRO_TEST_REPEAT_SCENARIOS=1 to repeat it)")
	}
}
