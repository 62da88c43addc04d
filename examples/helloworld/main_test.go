package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// The service registers over mDNS, so the tests run in a network namespace of their own
// (a multicast test must not reach this machine's network).
func TestMain(m *testing.M) { testutil.MainInNetns(m) }

// build compiles the package in dir into a temporary binary.
func build(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Base(dir)
	if name == "." {
		name = "helloworld"
	}
	return testutil.BuildBinary(t, dir, name)
}

// TestHelloworldBinary builds this program, runs it on a free loopback port and sends it
// the README's curl request with net/http.
func TestHelloworldBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := build(t, ".")
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "MICRO_SERVER_ADDRESS="+addr)
	if !testutil.InNetns() {
		cmd.Env = append(cmd.Env, "MICRO_REGISTRY=memory") // no multicast outside a namespace
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	testutil.WaitListening(t, addr, 10*time.Second)

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr, bytes.NewReader([]byte(`{"name": "alice"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Micro-Endpoint", "Helloworld.Greeting")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if rsp.StatusCode != 200 {
		t.Fatalf("status %d: %s", rsp.StatusCode, body)
	}
	if string(body) != "{\"message\":\"Hello alice\"}\n" {
		t.Fatalf("body %q", body)
	}
	if ct := rsp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if rsp.Header.Get("Micro-Error") != "" {
		t.Fatal("a Micro-Error header on success")
	}

	testutil.TerminateAndWait(t, cmd, exited, 15*time.Second, logs.String)
}

// lines sends each line a process writes to its stdout.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// waitLine waits for a line equal to want, returning the lines seen before it.
func waitLine(t *testing.T, ch <-chan string, want string, within time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("the client exited before printing %q; it printed %q", want, seen)
			}
			if l == want {
				return seen
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("no %q within %s; the client printed %q", want, within, seen)
		}
	}
}

// TestFoundOverMDNS is issue 4's acceptance 2: the helloworld service and the client
// program, two processes with default options, find each other over mDNS with no
// configuration and the call succeeds; after the service stops, its node is gone from
// the client's lookups within 2 s (its goodbye packet).
func TestFoundOverMDNS(t *testing.T) {
	testutil.NeedNetns(t)
	if testing.Short() {
		t.Skip("builds binaries")
	}
	svcBin, cliBin := build(t, "."), build(t, "./client")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	svc := exec.CommandContext(ctx, svcBin)
	var logs bytes.Buffer
	svc.Stdout, svc.Stderr = &logs, &logs
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	svcExited := make(chan error, 1)
	go func() { svcExited <- svc.Wait() }()
	defer func() { _ = svc.Process.Kill() }()

	cli := exec.CommandContext(ctx, cliBin, "--every", "50ms")
	cli.Stderr = os.Stderr
	out := lines(t, cli)
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cli.Process.Kill()
		_ = cli.Wait()
	}()
	waitLine(t, out, "Hello alice", 10*time.Second)

	if err := svc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	before := waitLine(t, out, "no node of helloworld", 2*time.Second)
	t.Logf("gone from the client's lookups %s after SIGTERM; calls meanwhile: %q", time.Since(stopped).Round(time.Millisecond), before)
	select {
	case err := <-svcExited:
		if err != nil {
			t.Fatalf("service exit: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the service did not exit\n%s", logs.String())
	}
}
