//go:build !linux

package nats_test

import (
	"errors"
	"testing"
)

// startServer is not available off Linux, where the server cannot be tied to the test
// process.
func startServer(t *testing.T, maxPayload int) (string, error) {
	return "", errors.New("private nats-servers are started on Linux only")
}
