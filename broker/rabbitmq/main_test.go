package rabbitmq_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/broker/rabbitmq"
	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rabbitURL is the server the tests use: MICRO_TEST_RABBITMQ, or the local default.
func rabbitURL() string {
	if u := os.Getenv("MICRO_TEST_RABBITMQ"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

var (
	rabbitOnce sync.Once
	rabbitErr  error
)

// requireRabbit skips (or fails, with MICRO_TEST_REQUIRE=1) when the server is unreachable.
func requireRabbit(t testing.TB) {
	t.Helper()
	rabbitOnce.Do(func() {
		conn, err := amqp.DialConfig(rabbitURL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			rabbitErr = err
			return
		}
		_ = conn.Close()
	})
	if rabbitErr != nil {
		testutil.SkipOrFail(t, "RabbitMQ is not reachable at %s (set MICRO_TEST_RABBITMQ, or start it with rabbitmq-server -detached): %v", redacted(rabbitURL()), rabbitErr)
	}
}

func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

// unique returns a name part no other test or run uses.
func unique() string { return strings.ToLower(rand.Text()[:12]) }

// topicFor returns a topic of the test's own.
func topicFor(t testing.TB) string {
	return "test." + strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + "." + unique()
}

// groupQueue is the AMQP queue of queue group q on topic, as the package documents.
func groupQueue(q, topic string) string { return q + "@" + topic }

// newBroker returns a broker on the test server, not connected, with opts after the
// server's address.
func newBroker(t testing.TB, opts ...broker.Option) broker.Broker {
	t.Helper()
	requireRabbit(t)
	return rabbitmq.NewBroker(append([]broker.Option{broker.Addrs(rabbitURL())}, opts...)...)
}

// connected returns a connected broker, disconnected when the test ends.
func connected(t testing.TB, opts ...broker.Option) broker.Broker {
	t.Helper()
	b := newBroker(t, opts...)
	if err := b.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	})
	return b
}

// admin is a plain AMQP connection for the tests' own checks and clean-up; it dials
// again when the connection was lost (the tests that restart the server).
type admin struct {
	t    testing.TB
	url  string
	mu   sync.Mutex
	conn *amqp.Connection
}

// newAdmin connects to url (the test server when empty), closed at the end of the test.
func newAdmin(t testing.TB, u string) *admin {
	t.Helper()
	if u == "" {
		requireRabbit(t)
		u = rabbitURL()
	}
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	a := &admin{t: t, url: u, conn: conn}
	t.Cleanup(func() {
		a.mu.Lock()
		_ = a.conn.Close()
		a.mu.Unlock()
	})
	return a
}

// do runs f on a fresh channel (a failed operation closes its channel).
func (a *admin) do(f func(ch *amqp.Channel) error) error {
	a.mu.Lock()
	if a.conn.IsClosed() {
		conn, err := amqp.DialConfig(a.url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			a.mu.Unlock()
			return err
		}
		a.conn = conn
	}
	conn := a.conn
	a.mu.Unlock()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return f(ch)
}

// messages returns the number of messages ready in queue, or -1 if it does not exist.
func (a *admin) messages(queue string) int {
	n := -1
	_ = a.do(func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err == nil {
			n = q.Messages
		}
		return err
	})
	return n
}

// deleteQueueLater deletes queue when t ends. Register it before the subscriptions to
// the queue, or stop them before the test ends: a subscription whose queue is deleted
// declares it again.
func (a *admin) deleteQueueLater(t testing.TB, queue string) {
	t.Cleanup(func() {
		_ = a.do(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(queue, false, false, false); return err })
	})
}

// deleteExchangeLater deletes exchange when the test ends.
func (a *admin) deleteExchangeLater(exchange string) {
	a.t.Cleanup(func() {
		_ = a.do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) })
	})
}

// rabbitmqctl runs rabbitmqctl with args, failing the test on error.
func rabbitmqctl(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// requireCtl skips (or fails) unless rabbitmqctl can manage the test server: the tests
// that close connections or restart the server need it, and the local default server.
func requireCtl(t testing.TB) {
	t.Helper()
	requireRabbit(t)
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		testutil.SkipOrFail(t, "rabbitmqctl is not in PATH: %v", err)
	}
	if u, err := url.Parse(rabbitURL()); err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
		testutil.SkipOrFail(t, "the test needs rabbitmqctl on the server's machine; MICRO_TEST_RABBITMQ is %s", redacted(rabbitURL()))
	}
}

// privateVhost creates a vhost of the test's own, open to the test server's user, and
// returns the server URL on it; deleting the vhost at the end removes all it holds.
func privateVhost(t testing.TB) string {
	t.Helper()
	requireCtl(t)
	u, _ := url.Parse(rabbitURL())
	vhost := "micro-test-" + unique()
	user := u.User.Username()
	if user == "" {
		user = "guest"
	}
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	u.Path = "/" + vhost
	u.RawPath = ""
	return u.String()
}

// subscribe subscribes h and fails the test on error; the subscription ends with the test.
func subscribe(t testing.TB, b broker.Broker, topic string, h broker.Handler, opts ...broker.SubscribeOption) broker.Subscriber {
	t.Helper()
	s, err := b.Subscribe(topic, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	t.Cleanup(func() { _ = s.Unsubscribe() })
	return s
}

// waitFor polls cond every few milliseconds until it holds, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, timeout, cond, what)
}
