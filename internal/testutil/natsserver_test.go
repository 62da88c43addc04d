//go:build linux

package testutil_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed-b3892490/micro/internal/testutil"
)

// jsRequest sends a JetStream API request and decodes the answer into v.
func jsRequest(t *testing.T, nc *nats.Conn, subject string, req, v interface{}) {
	t.Helper()
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := nc.Request(subject, data, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, v); err != nil {
		t.Fatalf("%s: %v: %s", subject, err, msg.Data)
	}
}

// TestNATSServerKillRestart: a private server stores a message, is SIGKILLed (clients
// lose it), and after Restart on the same port and store still has the message.
func TestNATSServerKillRestart(t *testing.T) {
	s := testutil.StartNATS(t, testutil.NATSConfig{SyncAlways: true})
	t.Logf("nats-server pid %d at %s, sync_interval always: %v", s.Pid(), s.URL(), s.SyncAlways())
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var created struct {
		Error *struct{ Description string } `json:"error"`
	}
	jsRequest(t, nc, "$JS.API.STREAM.CREATE.T", map[string]interface{}{"name": "T", "subjects": []string{"t"}, "storage": "file"}, &created)
	if created.Error != nil {
		t.Fatalf("create stream: %s", created.Error.Description)
	}
	var ack struct {
		Seq uint64 `json:"seq"`
	}
	msg, err := nc.Request("t", []byte("kept"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(msg.Data, &ack); err != nil || ack.Seq != 1 {
		t.Fatalf("publish ack %s: %v", msg.Data, err)
	}

	pid := s.Pid()
	s.Kill()
	s.Kill() // idempotent
	if _, err := nats.Connect(s.URL(), nats.Timeout(time.Second), nats.NoReconnect()); err == nil {
		t.Fatal("connected to a killed server")
	}
	s.Restart(t)
	if s.Pid() == pid {
		t.Fatalf("same pid %d after Restart", pid)
	}
	var info struct {
		State struct {
			Msgs uint64 `json:"messages"`
		} `json:"state"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() { // the client reconnects by itself
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect within 10 s")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	jsRequest(t, nc, "$JS.API.STREAM.INFO.T", nil, &info)
	if info.State.Msgs != 1 {
		t.Fatalf("after the restart the stream holds %d messages, want 1", info.State.Msgs)
	}
}
