//go:build linux

package redis

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// redisServer is a private redis-server started by a test, on a free loopback port,
// without persistence, tied to the test process by a parent-death signal and killed by
// PID at the end of the test. It can be frozen (SIGSTOP), resumed, killed and started
// again on the same port.
type redisServer struct {
	t    testing.TB
	bin  string
	addr string
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// serverStartTimeout bounds how long a start waits for the server to answer PING.
const serverStartTimeout = 10 * time.Second

// startRedisServer starts a private server, or skips the test (fails it with
// MICRO_TEST_REQUIRE=1) when redis-server is missing or does not start.
func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testutil.SkipOrFail(t, "redis-server is not installed (%v): apt-get install -y redis-server", err)
		return nil
	}
	var errs []string
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken before the server binds it
		s := &redisServer{t: t, bin: bin, addr: testutil.FreeAddr(t), dir: t.TempDir()}
		t.Cleanup(s.kill)
		if err := s.start(); err == nil {
			return s
		} else {
			errs = append(errs, err.Error())
		}
		s.kill()
	}
	testutil.SkipOrFail(t, "could not start %s:\n%s", bin, strings.Join(errs, "\n"))
	return nil
}

// URL returns the server's address as a store node.
func (s *redisServer) URL() string { return "redis://" + s.addr + "/0" }

// start starts the server on its address and waits until it answers PING.
func (s *redisServer) start() error {
	_, port, _ := net.SplitHostPort(s.addr)
	s.mu.Lock()
	s.starts++
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.starts))
	s.mu.Unlock()
	cmd := exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", logPath, "--daemonize", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(serverStartTimeout)
	for {
		if ping(s.addr, 200*time.Millisecond) == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited before answering on %s; log:\n%s", s.addr, tail(logPath))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer on %s within %s; log:\n%s", s.addr, serverStartTimeout, tail(logPath))
		}
	}
}

// ping sends PING on a new connection and waits for PONG.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(bytes.TrimSpace(b))
}

func (s *redisServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// freeze stops the server with SIGSTOP: its port still accepts connections, and nothing
// answers.
func (s *redisServer) freeze() { s.signal(syscall.SIGSTOP) }

// thaw resumes a frozen server with SIGCONT.
func (s *redisServer) thaw() { s.signal(syscall.SIGCONT) }

// kill kills the server with SIGKILL and waits until it is reaped. Idempotent.
func (s *redisServer) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart kills the server and starts a new one on the same port (its data is gone).
func (s *redisServer) restart() error {
	s.kill()
	return s.start()
}
