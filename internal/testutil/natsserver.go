//go:build linux

package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The NATS helpers need Linux for the same reason as the etcd ones: the server is tied to
// the test process with a parent-death signal.

// NATSServerEnv names the environment variable that may hold the path of the
// nats-server binary; otherwise "nats-server" is looked up in PATH, then
// /usr/sbin/nats-server.
const NATSServerEnv = "MICRO_TEST_NATS_SERVER"

// natsStartTimeout bounds how long a start waits for the server's JetStream to answer.
const natsStartTimeout = 15 * time.Second

// NATSConfig configures a private nats-server.
type NATSConfig struct {
	// SyncAlways sets jetstream { sync_interval: always }: the server flushes and
	// fsyncs every write before acknowledging it. nats-server before 2.10 does not know
	// the setting; the server then runs without it and NATSServer.SyncAlways reports
	// false (such servers still write each message to the operating system before
	// acknowledging it, so a SIGKILL of the server loses nothing it acknowledged).
	SyncAlways bool
}

// NATSServer is a private nats-server with JetStream started by StartNATS for one test:
// it listens on a free 127.0.0.1 port and keeps its store in the test's temporary
// directory, where a restart finds it again. Its methods are safe for concurrent use.
type NATSServer struct {
	bin        string
	addr       string
	dir        string
	conf       string
	logPath    string
	syncAlways bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	starts int
}

// StartNATS starts a private nats-server with JetStream and returns once JetStream
// answers. The server is killed when the test ends. When no nats-server binary is found,
// or it does not start, the test is skipped with a message saying what to install (it
// fails instead when MICRO_TEST_REQUIRE=1).
func StartNATS(t testing.TB, cfg NATSConfig) *NATSServer {
	t.Helper()
	bin, err := natsServerBinary()
	if err != nil {
		SkipOrFail(t, "nats-server is not installed (%v): install it to run the tests that need a private NATS server, e.g. apt-get install -y nats-server", err)
		return nil
	}
	dir := t.TempDir()
	s := &NATSServer{bin: bin, addr: FreeAddr(t), dir: dir, conf: filepath.Join(dir, "nats.conf"), logPath: filepath.Join(dir, "nats.log")}
	if cfg.SyncAlways {
		s.syncAlways = true
		if err := s.writeConfig(); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "-c", s.conf).CombinedOutput(); err != nil {
			t.Logf("%s does not accept jetstream { sync_interval: always } (%v: %s); running without it", bin, err, strings.TrimSpace(string(out)))
			s.syncAlways = false
		}
	}
	if err := s.writeConfig(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	if err := s.start(); err != nil {
		SkipOrFail(t, "could not start nats-server (%s): %v", bin, err)
		return nil
	}
	return s
}

func natsServerBinary() (string, error) {
	if p := os.Getenv(NATSServerEnv); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	const fallback = "/usr/sbin/nats-server"
	if _, err := os.Stat(fallback); err != nil {
		return "", fmt.Errorf("not in PATH, nor at %s", fallback)
	}
	return fallback, nil
}

// writeConfig writes the server's configuration file.
func (s *NATSServer) writeConfig() error {
	host, port, _ := strings.Cut(s.addr, ":")
	js := fmt.Sprintf("store_dir: %q", filepath.Join(s.dir, "store"))
	if s.syncAlways {
		js += ", sync_interval: always"
	}
	conf := fmt.Sprintf("host: %q\nport: %s\njetstream { %s }\n", host, port, js)
	return os.WriteFile(s.conf, []byte(conf), 0o600)
}

// start starts the process and waits for JetStream to answer.
func (s *NATSServer) start() error {
	s.mu.Lock()
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	logFile.Close() // the child holds its own descriptor
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.starts++
	s.mu.Unlock()
	if err := s.waitReady(exited); err != nil {
		s.Kill()
		return fmt.Errorf("%w; log:\n%s", err, s.logTail())
	}
	return nil
}

// waitReady polls JetStream's account info until it answers, the process exits, or
// natsStartTimeout passes.
func (s *NATSServer) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(natsStartTimeout)
	var last error
	for {
		nc, err := nats.Connect(s.URL(), nats.Timeout(500*time.Millisecond), nats.NoReconnect())
		if err == nil {
			var msg *nats.Msg
			msg, err = nc.Request("$JS.API.INFO", nil, 500*time.Millisecond)
			nc.Close()
			if err == nil && !strings.Contains(string(msg.Data), `"error"`) {
				return nil
			}
			if err == nil {
				err = errors.New(string(msg.Data))
			}
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("nats-server exited before JetStream answered on %s", s.addr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server's JetStream did not answer on %s within %s (last error: %v)", s.addr, natsStartTimeout, last)
		}
	}
}

// logTail returns the end of the server's log, for failure messages.
func (s *NATSServer) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// URL returns the server's client URL, nats://127.0.0.1:<port>.
func (s *NATSServer) URL() string { return "nats://" + s.addr }

// SyncAlways reports whether the server runs with sync_interval: always.
func (s *NATSServer) SyncAlways() bool { return s.syncAlways }

// Pid returns the process id of the server's current process.
func (s *NATSServer) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Stop freezes the server with SIGSTOP until Cont.
func (s *NATSServer) Stop() { s.signal(syscall.SIGSTOP) }

// Cont resumes a server frozen by Stop.
func (s *NATSServer) Cont() { s.signal(syscall.SIGCONT) }

func (s *NATSServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Kill ends the server with SIGKILL and waits until it is reaped. It is idempotent; the
// store stays for Restart.
func (s *NATSServer) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL) // os.ErrProcessDone once reaped
	<-exited
}

// Restart kills the server if it runs and starts it again on the same port and store,
// returning once JetStream answers (it has recovered its streams by then).
func (s *NATSServer) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	// The port was free a moment ago and is ours: try a few times in case the old
	// listener is not gone yet.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
	}
	t.Fatalf("restart nats-server: %v", err)
}
