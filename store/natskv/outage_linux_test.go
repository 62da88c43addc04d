//go:build linux

package natskv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

// TestI3Outage is battery row I3 for this store, on a private nats-server: frozen
// (SIGSTOP), then killed and restarted. During each outage every call fails within its
// time bound with an error matching ErrUnavailable; once the server is back, calls work
// again within 1 s. CI: 1 s outages; long tier (MICRO_TEST_LONG=1): 5 s.
func TestI3Outage(t *testing.T) {
	testutil.Scenario(t)
	outage := time.Second
	if testutil.Long() {
		outage = 5 * time.Second
	}
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	const timeout = 500 * time.Millisecond
	// the slack of a call's bound: scheduling under -race on a busy box
	const slack = 250 * time.Millisecond
	s := NewStore(store.Nodes(srv.URL()), Timeout(timeout), store.Database("outage"))
	defer s.Close()
	write(t, s, "before", "v")

	ops := []struct {
		name string
		call func(i int) error
	}{
		{"Write", func(i int) error { return s.Write(&store.Record{Key: fmt.Sprintf("during/%d", i), Value: []byte("v")}) }},
		{"Read", func(int) error { _, err := s.Read("before"); return err }},
		{"List", func(int) error { _, err := s.List(); return err }},
		{"Read prefix", func(int) error { _, err := s.Read("b", store.ReadPrefix()); return err }},
		{"Delete", func(int) error { return s.Delete("before/none") }},
	}
	// during calls the store for the length of the outage: each must fail, in time
	during := func(phase string) {
		t.Helper()
		end := time.Now().Add(outage)
		var worst time.Duration
		n := 0
		for i := 0; i < 1000 && (time.Now().Before(end) || n < len(ops)); i++ {
			op := ops[i%len(ops)]
			start := time.Now()
			err := op.call(i)
			took := time.Since(start)
			n++
			switch {
			case err == nil:
				t.Fatalf("%s: %s succeeded during the outage", phase, op.name)
			case !errors.Is(err, ErrUnavailable):
				t.Fatalf("%s: %s: %v, want an error matching ErrUnavailable", phase, op.name, err)
			case took > timeout+slack:
				t.Fatalf("%s: %s failed after %s, past its bound of %s: %v", phase, op.name, took, timeout, err)
			}
			if n == 1 || (n == 3 && testing.Verbose()) {
				t.Logf("%s: %s: %v", phase, op.name, err)
			}
			worst = max(worst, took)
			<-time.After(20 * time.Millisecond) // pace the calls that fail at once
		}
		t.Logf("%s: %d calls in %s failed, the slowest after %s", phase, n, outage, worst)
	}
	// recovered waits for the calls to work again after the server came back
	recovered := func(phase string, back time.Time) {
		t.Helper()
		for i := 0; ; i++ {
			err := s.Write(&store.Record{Key: "after", Value: []byte(phase)})
			if err == nil {
				break
			}
			if time.Since(back) > 5*time.Second || i > 500 {
				t.Fatalf("%s: no call works %s after the server came back: %v", phase, time.Since(back), err)
			}
			<-time.After(10 * time.Millisecond)
		}
		took := time.Since(back)
		for _, op := range ops {
			if err := op.call(0); err != nil {
				t.Fatalf("%s: %s after the recovery: %v", phase, op.name, err)
			}
		}
		if got := readValue(t, s, "before"); got != "v" {
			t.Fatalf("%s: the record written before the outage: %q", phase, got)
		}
		t.Logf("%s: calls work again %s after the server came back", phase, took)
		if took > time.Second {
			t.Fatalf("%s: recovery took %s, more than 1 s", phase, took)
		}
	}

	srv.Stop()
	testutil.Eventually(t, 2*time.Second, func() bool { return stopped(srv.Pid()) }, "every thread of the server is stopped")
	during("frozen")
	srv.Cont()
	recovered("frozen", time.Now())

	srv.Kill()
	during("killed")
	srv.Restart(t)
	recovered("restarted", time.Now())
}

// stopped reports whether every thread of process pid is stopped by a signal (SIGSTOP
// takes effect a moment after kill returns).
func stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// pid (comm) state ...: comm may hold spaces and parentheses, the state follows
		// the last ')'
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
			return false
		}
	}
	return true
}

// TestInitReconnects: Init with other nodes moves the store to them.
func TestInitReconnects(t *testing.T) {
	s, db := newStore(t)
	write(t, s, "k", "shared")
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	if err := s.Init(store.Nodes(srv.URL())); err != nil {
		t.Fatal(err)
	}
	write(t, s, "k", "private")
	kv, err := admin(t, srv.URL()).KeyValue(ctxT(t, 5*time.Second), bucketName(db))
	if err != nil {
		t.Fatalf("the bucket on the private server: %v", err)
	}
	if _, err := kv.Status(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(store.Nodes(natsURL())); err != nil {
		t.Fatal(err)
	}
	if got := readValue(t, s, "k"); got != "shared" {
		t.Fatalf("back on the shared server: %q", got)
	}
}

// TestNatsOptionsNoReconnect: with NatsOptions that do not reconnect, a connection the
// server closed is replaced by a new one on a later call.
func TestNatsOptionsNoReconnect(t *testing.T) {
	srv := testutil.StartNATS(t, testutil.NATSConfig{})
	nopts := nats.GetDefaultOptions()
	nopts.Servers = []string{srv.URL()}
	nopts.AllowReconnect = false
	s := NewStore(NatsOptions(nopts), Timeout(time.Second), store.Database("noreconnect"))
	defer s.Close()
	write(t, s, "k", "v")
	srv.Restart(t)
	var err error
	for i := 0; i < 100; i++ {
		if _, err = s.Read("k"); err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Read after the server restarted: %v", err)
		}
		<-time.After(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Read never worked again: %v", err)
	}
	if got := readValue(t, s, "k"); got != "v" {
		t.Fatal(got)
	}
}
