package client_test

import (
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// TestMain runs the tests in a network namespace of their own when it can (as root, with
// iproute2): the partition test (B5) makes hosts on a bridge there and cuts their links.
// Inside, goleak.VerifyTestMain checks for leaked goroutines.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }
