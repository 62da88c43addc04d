package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func build(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build %s: %v", dir, err)
	}
	return bin
}

// TestAuthExample runs the server and the client: the token the server prints opens
// Greeter.Hello, Greeter.Health needs none, and Greeter.Hello without a token is refused
// with 401.
func TestAuthExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	srvBin, cliBin := build(t, ".", "server"), build(t, "../client", "client")
	addr := testutil.FreeAddr(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "MICRO_REGISTRY=memory", "MICRO_SERVER_ADDRESS="+addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, srvBin)
	srv.Env = env
	var logs testutil.SyncBuffer
	srv.Stderr = &logs
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() { _ = srv.Process.Kill() }()
	tokens := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if tok, ok := strings.CutPrefix(sc.Text(), "TOKEN="); ok {
				tokens <- tok
			}
		}
		exited <- srv.Wait()
	}()
	var token string
	select {
	case token = <-tokens:
	case <-time.After(20 * time.Second):
		t.Fatalf("no token printed\n%s", logs.String())
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "the server listens")

	cli := exec.CommandContext(ctx, cliBin, "--address", addr)
	cli.Env = append(env, "TOKEN="+token)
	got, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, got)
	}
	text := string(got)
	for _, want := range []string{"with token: Hello John, you are alice", "public: ok", "without token: refused:"} {
		if !strings.Contains(text, want) {
			t.Fatalf("client output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(text, "401") && !strings.Contains(strings.ToLower(text), "unauthorized") {
		t.Fatalf("the refusal is not a 401:\n%s", text)
	}
	if strings.Contains(text, token) {
		t.Fatal("the token appears in an error")
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the server did not exit\n%s", logs.String())
	}
}
