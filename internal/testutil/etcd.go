//go:build linux

package testutil

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The etcd helpers need Linux: the server is tied to the test process with a parent-death
// signal, so a test binary killed by its timeout leaves no etcd behind.

// EtcdEnv names the environment variable holding the address (host:port) of an
// already-running etcd that EtcdEndpoint hands out instead of starting one.
const EtcdEnv = "MICRO_TEST_ETCD"

// etcdStartTimeout bounds how long StartEtcd waits for a new server to answer.
const etcdStartTimeout = 15 * time.Second

// Etcd is a private etcd server started by StartEtcd for one test: one member listening
// on free 127.0.0.1 ports, with its data in the test's temporary directory. Its methods
// are safe for concurrent use.
type Etcd struct {
	cmd      *exec.Cmd
	endpoint string
	logPath  string
	exited   chan struct{} // closed when the process has been reaped
}

// StartEtcd starts a private etcd server and returns once it answers its health check. The
// server is killed, and its data removed, when the test ends.
//
// Its raft heartbeat is 10 ms and its election timeout 100 ms, so the shortest lease etcd
// grants is 1 s (etcd rounds every TTL up to 1.5 election timeouts, in whole seconds) and
// leases of 1 s or 2 s expire on time, within etcd's 0.5 s expiry sweep.
//
// When the etcd binary is missing, or the server does not start, the test is skipped with
// a message saying what to install (it fails instead when MICRO_TEST_REQUIRE=1).
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		SkipOrFail(t, "etcd is not installed (%v): install it to run the tests that need a real etcd, e.g. apt-get install -y etcd-server", err)
		return nil
	}
	var errs []string
	// A free port may be taken between FreeAddr and etcd binding it: try again.
	for attempt := 0; attempt < 3; attempt++ {
		e, err := startEtcd(t, bin, attempt)
		if err == nil {
			return e
		}
		errs = append(errs, err.Error())
	}
	SkipOrFail(t, "could not start etcd (%s):\n%s", bin, strings.Join(errs, "\n"))
	return nil
}

// EtcdEndpoint returns the address of an etcd for tests that never stop the server: the
// one named by MICRO_TEST_ETCD when it is set, otherwise a private one from StartEtcd.
func EtcdEndpoint(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(EtcdEnv); addr != "" {
		return addr
	}
	return StartEtcd(t).Endpoint()
}

func startEtcd(t testing.TB, bin string, attempt int) (*Etcd, error) {
	client, peer := FreeAddr(t), FreeAddr(t)
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("etcd-%d", attempt))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "etcd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	name := "micro-test"
	cmd := exec.Command(bin,
		"--name", name,
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client,
		"--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer,
		"--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", name+"=http://"+peer,
		"--initial-cluster-state", "new",
		"--heartbeat-interval", "10",
		"--election-timeout", "100",
		"--logger", "zap",
		"--log-level", "warn",
		"--log-outputs", "stderr",
	)
	cmd.Env = etcdEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e := &Etcd{cmd: cmd, endpoint: client, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(e.kill)
	if err := e.waitHealthy(etcdStartTimeout); err != nil {
		e.kill()
		return nil, fmt.Errorf("%w; log:\n%s", err, e.logTail())
	}
	return e, nil
}

// etcdEnv is the test's environment without etcd's own variables, which would override
// the flags.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitHealthy polls the server's /health until it reports a leader, the process exits, or
// timeout passes.
func (e *Etcd) waitHealthy(timeout time.Duration) error {
	hc := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	url := "http://" + e.endpoint + "/health"
	for {
		resp, err := hc.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"health":"true"`)) {
				return nil
			}
		}
		select {
		case <-e.exited:
			return fmt.Errorf("etcd exited before answering on %s", e.endpoint)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd did not answer on %s within %s (last error: %v)", e.endpoint, timeout, err)
		}
	}
}

// logTail returns the end of the server's log, for failure messages.
func (e *Etcd) logTail() string {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Endpoint returns the client address of the server, as host:port.
func (e *Etcd) Endpoint() string { return e.endpoint }

// Pid returns the process id of the server.
func (e *Etcd) Pid() int { return e.cmd.Process.Pid }

// Stop freezes the server with SIGSTOP: it keeps its connections open but answers
// nothing until Cont. A frozen server is still killed at the end of the test.
func (e *Etcd) Stop() { _ = e.cmd.Process.Signal(syscall.SIGSTOP) }

// Cont resumes a server frozen by Stop, with SIGCONT.
func (e *Etcd) Cont() { _ = e.cmd.Process.Signal(syscall.SIGCONT) }

// kill ends the server with SIGKILL and waits until it is reaped. It is idempotent.
func (e *Etcd) kill() {
	_ = e.cmd.Process.Signal(syscall.SIGKILL) // os.ErrProcessDone once reaped
	<-e.exited
}
