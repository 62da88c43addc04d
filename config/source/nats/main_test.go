package nats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the sources'
// connections and watchers must be gone once their Reads return and their watchers are
// stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
