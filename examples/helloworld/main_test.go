package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// TestHelloworldBinary builds this program, runs it on a free loopback port and sends it
// the README's curl request with net/http.
func TestHelloworldBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "helloworld")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "MICRO_SERVER_ADDRESS="+addr)
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
	testutil.Eventually(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "the service listens")

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

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
}
