package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAuthExample runs the server and the client: the token the server prints opens
// Greeter.Hello, Greeter.Health needs none, and Greeter.Hello without a token is refused
// with 401.
func TestAuthExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	srvBin, cliBin := testutil.BuildBinary(t, ".", "server"), testutil.BuildBinary(t, "../client", "client")
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
	testutil.WaitListening(t, addr, 10*time.Second)

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
	testutil.TerminateAndWait(t, srv, exited, 15*time.Second, logs.String)
}
