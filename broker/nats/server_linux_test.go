//go:build linux

package nats_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// serverStartTimeout bounds the wait for a private server to accept connections.
const serverStartTimeout = 10 * time.Second

// startServer starts a private nats-server on a free 127.0.0.1 port with the given
// max_payload and returns its URL. The server is tied to the test process by a
// parent-death signal and killed, by PID, when the test ends.
func startServer(t *testing.T, maxPayload int) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			return "", fmt.Errorf("nats-server is not installed (apt-get install -y nats-server): %w", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	var errs []error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken before the server binds it
		url, err := startServerOnce(t, bin, maxPayload, attempt)
		if err == nil {
			return url, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func startServerOnce(t *testing.T, bin string, maxPayload, attempt int) (string, error) {
	addr := testutil.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, fmt.Sprintf("nats-%d.conf", attempt))
	body := fmt.Sprintf("host: %q\nport: %s\nmax_payload: %d\n", host, port, maxPayload)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("nats-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile // files: no copying goroutines
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(serverStartTimeout)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("nats-server exited at start: %s", strings.TrimSpace(string(log)))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			t.Cleanup(stop)
			return "nats://" + addr, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("nats-server did not accept connections on %s within %s", addr, serverStartTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the port with a deadline
	}
}
