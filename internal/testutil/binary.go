package testutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BuildBinary compiles the package in dir (a path go build accepts, such as "." or
// "./client") into a binary called name in a temporary directory, and returns its path.
func BuildBinary(t testing.TB, dir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v", dir, err)
	}
	return bin
}

// WaitListening waits until addr accepts TCP connections, failing the test after timeout.
func WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "something listens on "+addr)
}

// TerminateAndWait sends SIGTERM to a started process and waits up to timeout for exited
// (which receives the process's Wait result) to report a clean exit; logs are shown on
// failure.
func TerminateAndWait(t testing.TB, cmd *exec.Cmd, exited <-chan error, timeout time.Duration, logs func() string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs())
		}
	case <-time.After(timeout):
		t.Fatalf("no exit within %s of SIGTERM\n%s", timeout, logs())
	}
}
