package broker_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
)

const e2Env = "MICRO_TEST_E2_SUBSCRIBER"

// TestE2Subscriber is the subscriber process of TestE2SubscriberCrash: run with
// MICRO_TEST_E2_SUBSCRIBER=1, it subscribes to "e2" on an HTTP broker on loopback, says
// "ready <node id> <address>", and prints "got <id>" for each message before its handler
// returns (so before its publisher hears of it), until killed or a minute passes.
func TestE2Subscriber(t *testing.T) {
	if os.Getenv(e2Env) == "" {
		return
	}
	reg := registry.NewMemoryRegistry()
	b := broker.NewHttpBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	defer b.Disconnect()
	var mu sync.Mutex
	if _, err := b.Subscribe("e2", func(e broker.Event) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintln(os.Stdout, "got", e.Message().Header["Id"])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	svcs, err := reg.GetService(broker.HTTPBrokerService)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready", svcs[0].Nodes[0].Id, svcs[0].Nodes[0].Address)
	time.Sleep(time.Minute) // serves until killed; the parent kills it long before
}

// TestE2SubscriberCrash is battery row E2 (and issue 6's acceptance 3 for the HTTP
// broker): a subscriber process is SIGKILLed after 5,000 of 10,000 publishes. No silent
// loss: every Publish that returned nil was received by the subscriber, so received +
// publish errors ≥ published.
func TestE2SubscriberCrash(t *testing.T) {
	testutil.Scenario(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestE2Subscriber$", "-test.count=1")
	cmd.Env = append(os.Environ(), e2Env+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ready := make(chan []string, 1)
	var mu sync.Mutex
	received := map[string]bool{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "ready":
				ready <- f[1:]
			case len(f) == 2 && f[0] == "got":
				mu.Lock()
				received[f[1]] = true
				mu.Unlock()
			}
		}
	}()
	var node []string
	select {
	case node = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the subscriber process did not start")
	}
	// discovery is not what this tests: the subscriber's node goes into this process's
	// registry as it would arrive from a shared one
	reg := registry.NewMemoryRegistry()
	if err := reg.Register(&registry.Service{Name: broker.HTTPBrokerService, Version: broker.HTTPBroadcastVersion, Nodes: []*registry.Node{
		{Id: node[0], Address: node[1], Metadata: map[string]string{"broker": "http", "topic": "e2"}},
	}}); err != nil {
		t.Fatal(err)
	}
	pub := connectedHTTP(t, reg)
	// 8 publishers, so that deliveries are in flight when the subscriber dies
	const total, killAt, publishers = 10000, 5000, 8
	acked := make([]bool, total)
	var next atomic.Int64
	var failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < publishers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				if i == killAt {
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
				err := pub.Publish("e2", &broker.Message{Header: map[string]string{"Id": fmt.Sprint(i)}, Body: []byte("e2")})
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				acked[i] = true // each index is one goroutine's
			}
		}()
	}
	wg.Wait()
	_ = cmd.Wait()
	<-readDone // the pipe is drained: everything the subscriber printed is here
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for i, ok := range acked {
		if ok && !received[fmt.Sprint(i)] {
			lost++
		}
	}
	t.Logf("%d published, %d received, %d publish errors (first: %v), %d acknowledged but not received", total, len(received), failed.Load(), firstErr, lost)
	if lost > 0 {
		t.Fatalf("%d messages whose Publish returned nil never reached the subscriber", lost)
	}
	if len(received)+int(failed.Load()) < total {
		t.Fatalf("received %d + errors %d < published %d: silent loss", len(received), failed.Load(), total)
	}
	if int(failed.Load()) < total-killAt-publishers {
		t.Fatalf("only %d publishes failed after the subscriber died at %d of %d", failed.Load(), killAt, total)
	}
}
