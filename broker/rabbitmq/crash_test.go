package rabbitmq_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
	"github.com/seed-b3892490/micro/internal/testutil"
)

const consumerEnv = "MICRO_TEST_RABBITMQ_CONSUMER" // "<topic> <queue> <prefetch>"

// TestHelperConsumer is a queue-group subscriber in a process of its own, for the tests
// that kill one: run with MICRO_TEST_RABBITMQ_CONSUMER="<topic> <queue> <prefetch>", it
// subscribes to topic in the durable queue group, says "ready", and for each message
// writes "got <id>" to stdout before its handler returns (so before the message is
// acknowledged). It stops on SIGTERM, or after a minute.
func TestHelperConsumer(t *testing.T) {
	spec := os.Getenv(consumerEnv)
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	if len(f) != 3 {
		t.Fatalf("%s=%q: want <topic> <queue> <prefetch>", consumerEnv, spec)
	}
	prefetch, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	defer signal.Stop(sig)
	b := rabbitmq.NewBroker(broker.Addrs(rabbitURL()), rabbitmq.PrefetchCount(prefetch))
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	defer b.Disconnect()
	var mu sync.Mutex
	_, err = b.Subscribe(f[0], func(e broker.Event) error {
		h := e.Message().Header
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: once Fprintf returns, the line is in the pipe
		if h["marker"] != "" {
			_, err := fmt.Fprintf(os.Stdout, "marker %s\n", h["marker"])
			return err
		}
		_, err := fmt.Fprintf(os.Stdout, "got %s\n", h["id"])
		return err
	}, broker.Queue(f[1]), rabbitmq.DurableQueue())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	select {
	case <-sig:
	case <-time.After(time.Minute):
	}
}

// consumer is a TestHelperConsumer process and what it has printed.
type consumer struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	ids     map[string]int
	lines   int
	markers map[string]bool
	update  chan struct{} // signalled (without blocking) on each line
	done    chan struct{} // closed once stdout is drained and the process has exited
}

func startConsumer(t *testing.T, topic, queue string, prefetch int) *consumer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", consumerEnv, topic, queue, prefetch))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &consumer{cmd: cmd, ids: map[string]int{}, markers: map[string]bool{}, update: make(chan struct{}, 1), done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			switch {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "got "):
				c.ids[strings.TrimPrefix(line, "got ")]++
				c.lines++
			case strings.HasPrefix(line, "marker "):
				c.markers[strings.TrimPrefix(line, "marker ")] = true
			}
			c.mu.Unlock()
			select {
			case c.update <- struct{}{}:
			default:
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
		}
	})
	select {
	case <-ready:
	case <-c.done:
		t.Fatal("the consumer process exited before it was ready")
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer process was not ready within 20 s")
	}
	return c
}

// kill SIGKILLs the process and waits until all it printed has been read.
func (c *consumer) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed consumer's output did not end")
	}
}

func (c *consumer) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

func (c *consumer) sawMarker(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markers[m]
}

// TestE3SubscriberCrash is battery E3 for RabbitMQ, and the acceptance "a subscriber
// process killed mid-stream: no acknowledged message is lost and unacknowledged ones are
// redelivered after restart". A consumer process in a durable queue group records every
// message before acknowledging it; it is SIGKILLed once it has recorded about half of the
// messages, and started again. Every id is processed at least once, and the duplicates
// (messages recorded but not yet acknowledged at the kill) are at most the prefetch
// count. CI: 2,000 messages; long tier: 10,000.
func TestE3SubscriberCrash(t *testing.T) {
	testutil.Scenario(t)
	n := longOr(2000, 10000)
	const prefetch = 64
	a := newAdmin(t, "")
	tp, q := topicFor(t), "e3"+unique()
	a.deleteQueueLater(t, groupQueue(q, tp))
	pub := connected(t)

	first := startConsumer(t, tp, q, prefetch)
	killed := make(chan int, 1)
	go func() {
		// kill the consumer once it has recorded half of the messages (bounded by the
		// process's own deadline: done closes when it exits)
		for {
			select {
			case <-first.update:
				if d := first.distinct(); d >= n/2 {
					_ = first.cmd.Process.Signal(syscall.SIGKILL)
					killed <- d
					return
				}
			case <-first.done:
				killed <- -1
				return
			}
		}
	}()
	start := time.Now()
	publishAll(t, pub, tp, n, 16)
	published := time.Since(start)
	var atKill int
	select {
	case atKill = <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not get half of the messages within 60 s")
	}
	if atKill < 0 {
		t.Fatal("the consumer exited before it was killed")
	}
	first.kill(t)

	second := startConsumer(t, tp, q, prefetch)
	if err := pub.Publish(tp, &broker.Message{Header: map[string]string{"marker": "end"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the restarted consumer to reach the end marker", func() bool { return second.sawMarker("end") })
	second.kill(t)

	seen := map[string]int{}
	lines := 0
	for _, c := range []*consumer{first, second} {
		for id, k := range c.ids {
			seen[id] += k
		}
		lines += c.lines
	}
	missing := 0
	for i := range n {
		if seen[fmt.Sprintf("p%d-%d", i%16, i)] == 0 {
			missing++
		}
	}
	dups := lines - len(seen)
	if missing > 0 {
		t.Errorf("%d of %d messages never processed (lost)", missing, n)
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids processed, want %d", len(seen), n)
	}
	if dups > prefetch {
		t.Errorf("%d duplicates, want at most the prefetch count %d", dups, prefetch)
	}
	t.Logf("E3: %d messages published in %s (durable queue, persistent); consumer killed after %d distinct (%d lines); restarted one processed %d lines; %d/%d distinct, %d duplicates (prefetch %d)",
		n, published.Round(time.Millisecond), atKill, first.lines, second.lines, len(seen), n, dups, prefetch)
}
