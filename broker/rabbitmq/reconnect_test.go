package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// awaitFlow publishes markers on topic until every counter has seen one more than it had,
// and returns how long that took; publish errors (while reconnecting) are expected.
func awaitFlow(t *testing.T, pub broker.Broker, topic string, timeout time.Duration, cs ...*counter) time.Duration {
	t.Helper()
	start := time.Now()
	before := make([]int, len(cs))
	for i, c := range cs {
		_, _, before[i] = c.counts()
	}
	deadline := start.Add(timeout)
	for k := 0; ; k++ {
		all := true
		for i, c := range cs {
			if _, _, m := c.counts(); m <= before[i] {
				all = false
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages did not flow again within %s", timeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_ = pub.Publish(topic, &broker.Message{Header: map[string]string{"marker": fmt.Sprint("flow", k)}}, broker.PublishContext(ctx))
		cancel()
		time.Sleep(20 * time.Millisecond) // the markers' pace
	}
}

// publishRange publishes ids "p0-<from>" … "p0-<to-1>".
func publishRange(t *testing.T, b broker.Broker, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("p0-%d", i)
		if err := b.Publish(topic, &broker.Message{Header: map[string]string{"id": id}}); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
}

// TestReconnectClosedConnections: the server closes every connection (rabbitmqctl
// close_all_connections, in a vhost of the test's own); the brokers reconnect, declare
// and consume their subscriptions again, and messages flow to the broadcast subscriber
// and the queue group as before.
func TestReconnectClosedConnections(t *testing.T) {
	u := privateVhost(t)
	vhost := u[len(u)-len("micro-test-")-12:]
	tp, q := topicFor(t), "g"+unique()
	pub := connected(t, broker.Addrs(u))
	sub := connected(t, broker.Addrs(u))
	bc, gc := newCounter(), newCounter()
	subscribe(t, sub, tp, bc.handler)
	subscribe(t, sub, tp, gc.handler, broker.Queue(q))
	publishRange(t, pub, tp, 0, 100)
	waitFor(t, 10*time.Second, "the first 100", func() bool {
		_, b, _ := bc.counts()
		_, g, _ := gc.counts()
		return b == 100 && g == 100
	})

	rabbitmqctl(t, "close_all_connections", "-p", vhost, "test")
	took := awaitFlow(t, pub, tp, 10*time.Second, bc, gc)

	publishRange(t, pub, tp, 100, 200)
	waitFor(t, 10*time.Second, "the next 100", func() bool {
		_, b, _ := bc.counts()
		_, g, _ := gc.counts()
		return b == 200 && g == 200
	})
	if bc.reorders+gc.reorders > 0 {
		t.Errorf("%d messages out of order", bc.reorders+gc.reorders)
	}
	t.Logf("reconnect after close_all_connections: messages flow again %s after the command returned", took.Round(time.Millisecond))
}

// TestReconnectServerRestart: the server restarts (rabbitmqctl stop_app, start_app).
// While it is down, Publish and Subscribe fail with ErrUnavailable within their
// deadline; once it is back the brokers reconnect and their subscriptions resume; a
// durable queue on a durable exchange kept its persistent messages, and its binding,
// across the restart.
func TestReconnectServerRestart(t *testing.T) {
	testutil.Scenario(t)
	requireCtl(t)
	a := newAdmin(t, "")
	ex, tp := "micro-test-restart-"+unique(), topicFor(t)
	live, parked := "live"+unique(), "parked"+unique()
	a.deleteExchangeLater(ex)
	a.deleteQueueLater(t, groupQueue(live, tp))
	a.deleteQueueLater(t, groupQueue(parked, tp))
	t.Cleanup(func() { rabbitmqctl(t, "start_app") }) // whatever happens below
	opts := []broker.Option{rabbitmq.ExchangeName(ex), rabbitmq.DurableExchange()}
	pub := connected(t, opts...)
	sub := connected(t, opts...)
	quick := connected(t, append(opts, rabbitmq.Timeout(300*time.Millisecond))...)
	bc, gc, pc := newCounter(), newCounter(), newCounter()
	subscribe(t, sub, tp, bc.handler)
	subscribe(t, sub, tp, gc.handler, broker.Queue(live), rabbitmq.DurableQueue())
	// a durable group with no member: its queue keeps what is published
	p, err := sub.Subscribe(tp, pc.handler, broker.Queue(parked), rabbitmq.DurableQueue())
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Unsubscribe()
	waitFor(t, 5*time.Second, "the parked group to have no consumer", func() bool { return a.messages(groupQueue(parked, tp)) == 0 })
	publishRange(t, pub, tp, 0, 20)
	waitFor(t, 10*time.Second, "the first 20", func() bool {
		_, b, _ := bc.counts()
		_, g, _ := gc.counts()
		return b == 20 && g == 20 && a.messages(groupQueue(parked, tp)) == 20
	})

	rabbitmqctl(t, "stop_app")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err = pub.Publish(tp, &broker.Message{Header: map[string]string{"id": "lost"}}, broker.PublishContext(ctx))
	elapsed := time.Since(start)
	t.Logf("while down: Publish failed in %s: %v", elapsed.Round(time.Millisecond), err)
	cancel()
	if !errors.Is(err, rabbitmq.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish while the server is down: %v, want ErrUnavailable and the deadline", err)
	}
	if elapsed > 300*time.Millisecond+time.Second {
		t.Errorf("Publish while the server is down took %s, want its 300 ms deadline", elapsed)
	}
	start = time.Now()
	_, err = quick.Subscribe(tp, func(broker.Event) error { return nil })
	elapsed = time.Since(start)
	if !errors.Is(err, rabbitmq.ErrUnavailable) {
		t.Errorf("Subscribe while the server is down: %v, want ErrUnavailable", err)
	}
	if elapsed > 300*time.Millisecond+time.Second {
		t.Errorf("Subscribe while the server is down took %s, want its 300 ms Timeout", elapsed)
	}
	t.Logf("while down: Subscribe failed in %s: %v", elapsed.Round(time.Millisecond), err)

	rabbitmqctl(t, "start_app")
	took := awaitFlow(t, pub, tp, 30*time.Second, bc, gc)

	publishRange(t, pub, tp, 20, 40)
	waitFor(t, 10*time.Second, "the 20 published after the restart", func() bool {
		_, b, _ := bc.counts()
		_, g, _ := gc.counts()
		return b == 40 && g == 40
	})
	subscribe(t, sub, tp, pc.handler, broker.Queue(parked), rabbitmq.DurableQueue())
	waitFor(t, 10*time.Second, "the parked group's 40 (20 kept across the restart)", func() bool { _, d, _ := pc.counts(); return d == 40 })
	t.Logf("reconnect after a server restart: messages flow again %s after start_app returned", took.Round(time.Millisecond))
}

// TestBlockedPublisher: while a resource alarm blocks publishers (here a memory alarm,
// set with rabbitmqctl set_vm_memory_high_watermark), Publish fails at once with
// ErrUnavailable instead of stalling; once the alarm clears it succeeds again. Long
// tier: it changes a server-wide setting for a moment.
func TestBlockedPublisher(t *testing.T) {
	if !testutil.Long() {
		t.Skip("long tier (MICRO_TEST_LONG=1): raises a memory alarm on the whole server")
	}
	requireCtl(t)
	b := connected(t)
	tp := topicFor(t)
	if err := b.Publish(tp, &broker.Message{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rabbitmqctl(t, "set_vm_memory_high_watermark", "0.4") })
	rabbitmqctl(t, "set_vm_memory_high_watermark", "0.0000001")
	var err error
	waitFor(t, 10*time.Second, "Publish to fail fast while blocked", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = b.Publish(tp, &broker.Message{}, broker.PublishContext(ctx))
		return errors.Is(err, rabbitmq.ErrUnavailable) && time.Since(start) < 100*time.Millisecond
	})
	t.Logf("while blocked: %v", err)
	rabbitmqctl(t, "set_vm_memory_high_watermark", "0.4")
	waitFor(t, 10*time.Second, "Publish to succeed once unblocked", func() bool { return b.Publish(tp, &broker.Message{}) == nil })
}
