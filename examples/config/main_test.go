package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hello(t *testing.T, client *http.Client, addr string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr, bytes.NewReader([]byte(`{"name": "alice"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Micro-Endpoint", "Greeter.Hello")
	rsp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	body, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != 200 {
		t.Fatalf("status %d: %s", rsp.StatusCode, body)
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return r.Message
}

// TestGreetingFollowsTheFile is issue 8's acceptance 6: the service answers with the
// greeting of its config file, and with the new one after the file is edited in place or
// replaced by rename, without a restart.
func TestGreetingFollowsTheFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := testutil.BuildBinary(t, ".", "config-example")
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("greeting: Hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config_file", path)
	cmd.Env = append(os.Environ(), "MICRO_SERVER_ADDRESS="+addr, "MICRO_REGISTRY=memory", "MICRO_STORE=memory")
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	testutil.WaitListening(t, addr, 10*time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	if got := hello(t, client, addr); got != "Hello alice" {
		t.Fatalf("first call: %q", got)
	}
	edits := []struct {
		name, greeting string
		save           func(data []byte) error
	}{
		{"in place", "Howdy", func(d []byte) error { return os.WriteFile(path, d, 0o644) }},
		{"rename", "Bonjour", func(d []byte) error {
			tmp := filepath.Join(dir, ".config.yaml.swp")
			if err := os.WriteFile(tmp, d, 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}},
	}
	for _, e := range edits {
		start := time.Now()
		if err := e.save([]byte("greeting: " + e.greeting + "\n")); err != nil {
			t.Fatal(err)
		}
		want := e.greeting + " alice"
		testutil.Eventually(t, 5*time.Second, func() bool { return hello(t, client, addr) == want }, e.name+": the new greeting")
		t.Logf("%s: %q answered %v after the edit", e.name, want, time.Since(start).Round(time.Millisecond))
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return bytes.Contains([]byte(logs.String()), []byte(`greeting is now "Bonjour"`))
	}, "the watcher logs the change")

	client.CloseIdleConnections()
	testutil.TerminateAndWait(t, cmd, exited, 15*time.Second, logs.String)
}
