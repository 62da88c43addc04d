package nats_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/broker"
	natsbroker "github.com/seed-b3892490/micro/broker/nats"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
)

func nop(broker.Event) error { return nil }

// quiet is a logger that writes nothing, for tests whose reports are expected.
var quiet = logger.NewLogger(logger.WithLevel(logger.FatalLevel + 1))

// events collects the events a handler or ErrorHandler receives.
type events struct {
	mu  sync.Mutex
	evs []broker.Event
}

func (e *events) handler(ev broker.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) list() []broker.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]broker.Event(nil), e.evs...)
}

func (e *events) len() int { return len(e.list()) }

func TestNotConnected(t *testing.T) {
	b := natsbroker.NewNatsBroker(broker.Addrs(testutil.FreeAddr(t)))
	if err := b.Publish("a.b", &broker.Message{}); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish before Connect: %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe("a.b", nop); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Subscribe before Connect: %v, want ErrNotConnected", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Errorf("Disconnect of a broker never connected: %v", err)
	}
	if got := dropped(t, b); got != 0 {
		t.Errorf("Dropped = %d", got)
	}
}

func TestArguments(t *testing.T) {
	b := natsbroker.NewNatsBroker() // validation comes before the connection check
	long := "a." + strings.Repeat("x", natsbroker.MaxTopicLength)
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"publish empty topic", broker.ErrMissingTopic, func() error { return b.Publish("", nil) }},
		{"subscribe empty topic", broker.ErrMissingTopic, func() error { _, err := b.Subscribe("", nop); return err }},
		{"nil handler", broker.ErrMissingHandler, func() error { _, err := b.Subscribe("a", nil); return err }},
		{"publish to a wildcard *", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a.*", nil) }},
		{"publish to a wildcard >", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a.>", nil) }},
		{"space", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a b", nil) }},
		{"tab", natsbroker.ErrInvalidTopic, func() error { _, err := b.Subscribe("a\tb", nop); return err }},
		{"CRLF", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a\r\nPUB x 1", nil) }},
		{"NUL", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a\x00", nil) }},
		{"empty token", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a..b", nil) }},
		{"leading dot", natsbroker.ErrInvalidTopic, func() error { _, err := b.Subscribe(".a", nop); return err }},
		{"trailing dot", natsbroker.ErrInvalidTopic, func() error { return b.Publish("a.", nil) }},
		{"> not last", natsbroker.ErrInvalidTopic, func() error { _, err := b.Subscribe("a.>.b", nop); return err }},
		{"too long", natsbroker.ErrInvalidTopic, func() error { return b.Publish(long, nil) }},
		{"queue with a space", natsbroker.ErrInvalidTopic, func() error { _, err := b.Subscribe("a", nop, broker.Queue("q 1")); return err }},
		{"queue too long", natsbroker.ErrInvalidTopic, func() error { _, err := b.Subscribe("a", nop, broker.Queue(long)); return err }},
		{"valid wildcards", broker.ErrNotConnected, func() error { _, err := b.Subscribe("a.*.c.>", nop); return err }},
		{"valid topic", broker.ErrNotConnected, func() error { return b.Publish("a.b-c_d.é*x", nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.err) {
				t.Errorf("got %v, want %v", err, tc.err)
			}
		})
	}
}

func TestInit(t *testing.T) {
	b := newBroker(t)
	if err := b.Init(broker.Addrs(natsURL())); err != nil {
		t.Fatalf("Init before Connect: %v", err)
	}
	if got := b.Options().Addrs; len(got) != 1 || got[0] != natsURL() {
		t.Errorf("Addrs = %v after Init", got)
	}
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(); err != nil {
		t.Errorf("second Connect: %v", err)
	}
	if err := b.Init(); !errors.Is(err, broker.ErrConnected) {
		t.Errorf("Init while connected: %v, want ErrConnected", err)
	}
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := b.Init(); err != nil {
		t.Errorf("Init after Disconnect: %v", err)
	}
	if b.String() != "nats" {
		t.Errorf("String = %q", b.String())
	}
}

func TestAddress(t *testing.T) {
	if got := natsbroker.NewNatsBroker().Address(); got != natsbroker.DefaultAddress {
		t.Errorf("default Address = %q, want %q", got, natsbroker.DefaultAddress)
	}
	if got := natsbroker.NewBroker(broker.Addrs("10.1.2.3:4222, nats://b:1")).Address(); got != "nats://10.1.2.3:4222" {
		t.Errorf("Address = %q, want the first address with a scheme", got)
	}
	nopts := nats.GetDefaultOptions()
	nopts.Servers = []string{"nats://c:2"}
	if got := natsbroker.NewBroker(natsbroker.Options(nopts)).Address(); got != "nats://c:2" {
		t.Errorf("Address = %q with nats.Options.Servers", got)
	}
	b := connected(t)
	u, err := url.Parse(b.Address())
	if err != nil || u.Scheme != "nats" || u.Port() == "" {
		t.Errorf("connected Address = %q (%v)", b.Address(), err)
	}
}

func TestConnectFailure(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	nopts := nats.GetDefaultOptions()
	nopts.Timeout = 500 * time.Millisecond
	addr := testutil.FreeAddr(t) // nothing listens there
	b := natsbroker.NewNatsBroker(broker.Addrs(addr), natsbroker.Options(nopts))
	start := time.Now()
	err := b.Connect()
	if err == nil {
		_ = b.Disconnect()
		t.Fatal("Connect to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("the error does not name the address %s: %v", addr, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s", d)
	}
	if err := b.Publish("a", nil); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("Publish after a failed Connect: %v", err)
	}
	goleak.VerifyNone(t, ignore)
}

// TestNatsOptions checks that Options(nats.Options) is used, with its callbacks, and
// that PoolSize and PoolIdleTimeout are accepted.
func TestNatsOptions(t *testing.T) {
	requireNATS(t)
	var closed, asyncErrs atomic.Int32
	nopts := nats.GetDefaultOptions()
	nopts.Servers = []string{natsURL()} // no broker.Addrs: these are used
	nopts.Name = "broker-options-test"
	nopts.ClosedCB = func(*nats.Conn) { closed.Add(1) }
	nopts.AsyncErrorCB = func(*nats.Conn, *nats.Subscription, error) { asyncErrs.Add(1) }
	b := natsbroker.NewNatsBroker(natsbroker.Options(nopts), natsbroker.PoolSize(4), natsbroker.PoolIdleTimeout(time.Minute),
		natsbroker.PendingLimits(10, 1<<20), broker.Logger(quiet))
	if err := b.Connect(); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	sub, err := b.Subscribe(topic(t), func(broker.Event) error { <-release; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ { // beyond the pending limit of 10: a slow-consumer error
		if err := b.Publish(sub.Topic(), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the user's AsyncErrorCB was not called for the slow consumer", func() bool { return asyncErrs.Load() > 0 })
	close(release)
	if err := b.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if closed.Load() != 1 {
		t.Errorf("the user's ClosedCB ran %d times, want 1", closed.Load())
	}
}

// TestHeadersRoundTrip sends headers NATS cannot carry as they are, and a body of every
// byte value, through the server: they arrive unchanged.
func TestHeadersRoundTrip(t *testing.T) {
	pub, sb := connected(t), connected(t)
	tp := topic(t)
	var got events
	if _, err := sb.Subscribe(tp, got.handler); err != nil {
		t.Fatal(err)
	}
	header := map[string]string{
		"Plain":                   "value",
		"case-Sensitive":          "Kept",
		"Empty":                   "",
		"":                        "empty name",
		"With Space":              "x",
		"Colon:Name":              "y",
		"Ünïcode-Name":            "z",
		"Quote\"(),/;<=>?@[\\]{}": "punctuation",
		"CRLF":                    "line1\r\nline2",
		"LF":                      "a\nb",
		"Injection":               "x\r\nInjected: yes",
		"Spaces":                  "  padded  ",
		"Tabs":                    "\tpadded\t",
		"Inner-Space":             "a b\tc",
		"Control":                 "a\x00b\x01\x7f",
		"UTF-8":                   "é ∑ 日本",
		"Not-UTF-8":               "\xff\xfe",
		"Percent":                 "100%25 & a=b",
		natsbroker.EscapedHeader:  "a user's header of that name",
	}
	body := make([]byte, 256*4)
	for i := range body {
		body[i] = byte(i)
	}
	if err := pub.Publish(tp, &broker.Message{Header: header, Body: body}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(tp, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the messages did not arrive", func() bool { return got.len() == 2 })
	evs := got.list()
	m := evs[0].Message()
	if !maps.Equal(m.Header, header) {
		for k, v := range header {
			if g, ok := m.Header[k]; !ok || g != v {
				t.Errorf("header %q = %q (present %v), want %q", k, g, ok, v)
			}
		}
		for k := range m.Header {
			if _, ok := header[k]; !ok {
				t.Errorf("unexpected header %q = %q", k, m.Header[k])
			}
		}
	}
	if !bytes.Equal(m.Body, body) {
		t.Errorf("body changed: %d bytes", len(m.Body))
	}
	if evs[0].Topic() != tp || evs[0].Error() != nil || evs[0].Ack() != nil {
		t.Errorf("event: topic %q error %v", evs[0].Topic(), evs[0].Error())
	}
	if m := evs[1].Message(); m.Header == nil || len(m.Header) != 0 || len(m.Body) != 0 {
		t.Errorf("nil message arrived as %+v, want an empty one with a non-nil header map", m)
	}
}

// TestForeignPublisher reads messages of a plain NATS client: headers given several
// values are joined, and a message without headers has an empty header map.
func TestForeignPublisher(t *testing.T) {
	sb := connected(t)
	nc := rawConn(t)
	tp := topic(t)
	var got events
	if _, err := sb.Subscribe(tp, got.handler); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(tp)
	m.Header.Add("Multi", "a")
	m.Header.Add("Multi", "b")
	m.Data = []byte("with headers")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(tp, []byte("without headers")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the messages did not arrive", func() bool { return got.len() == 2 })
	evs := got.list()
	if h := evs[0].Message().Header; h["Multi"] != "a, b" || len(h) != 1 {
		t.Errorf("headers = %q, want Multi: \"a, b\"", h)
	}
	if m := evs[1].Message(); m.Header == nil || len(m.Header) != 0 || string(m.Body) != "without headers" {
		t.Errorf("message = %+v", m)
	}
}

// rawPublish writes NATS protocol to the test server over a plain TCP connection, each
// message as HPUB with the given raw header block, and waits for the server's PONG.
func rawPublish(t *testing.T, subject string, msgs ...[2]string) {
	t.Helper()
	u, err := url.Parse(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from the server: %q %v", line, err)
	}
	var w bytes.Buffer
	w.WriteString(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}` + "\r\n")
	for _, m := range msgs {
		hdr, body := m[0], m[1]
		fmt.Fprintf(&w, "HPUB %s %d %d\r\n%s%s\r\n", subject, len(hdr), len(hdr)+len(body), hdr, body)
	}
	w.WriteString("PING\r\n")
	if _, err := c.Write(w.Bytes()); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no PONG from the server: %v", err)
		}
		if strings.HasPrefix(line, "-ERR") {
			t.Fatalf("the server refused the raw messages: %s", line)
		}
		if strings.HasPrefix(line, "PONG") {
			return
		}
	}
}

// TestMalformedMessageDoesNotStopSubscription sends, in order, messages that cannot be
// decoded (a header block nats.go cannot parse, broken escaped headers) and then a good
// one: the bad ones are reported, not handled, and the good one is handled.
func TestMalformedMessageDoesNotStopSubscription(t *testing.T) {
	var reported events
	sb := connected(t, broker.ErrorHandler(reported.handler))
	tp := topic(t)
	var got events
	if _, err := sb.Subscribe(tp, got.handler); err != nil {
		t.Fatal(err)
	}
	esc := natsbroker.EscapedHeader
	bad := [][2]string{
		{"GARBAGE\r\n\r\n", "bad block"},
		{"NATS/1.0\r\nno colon here\r\n\r\n", "no colon"},
		{"NATS/1.0\r\n" + esc + ": a=%zz\r\n\r\n", "bad escape"},
		{"NATS/1.0\r\n" + esc + ": no-equals\r\n\r\n", "no equals"},
		{"NATS/1.0\r\n" + esc + ": a=1\r\n" + esc + ": b=2\r\n\r\n", "twice"},
		{"NATS/1.0\r\nA: 1\r\n" + esc + ": A=2\r\n\r\n", "duplicate"},
	}
	good := [2]string{"NATS/1.0\r\nK: v\r\n" + esc + ": x%20y=1%0A2\r\n\r\n", "good"}
	rawPublish(t, tp, append(bad, good)...)
	waitFor(t, 10*time.Second, "the good message after the bad ones was not handled", func() bool { return got.len() == 1 })
	// one connection published them in order, and a subscription handles in order
	evs := got.list()
	if m := evs[0].Message(); string(m.Body) != "good" || m.Header["K"] != "v" || m.Header["x y"] != "1\n2" || len(m.Header) != 2 {
		t.Errorf("good message = %q %q", m.Header, m.Body)
	}
	reps := reported.list()
	if len(reps) != len(bad) {
		t.Fatalf("%d malformed messages reported, want %d", len(reps), len(bad))
	}
	for i, ev := range reps {
		if !errors.Is(ev.Error(), natsbroker.ErrMalformedMessage) {
			t.Errorf("report %d: %v, want ErrMalformedMessage", i, ev.Error())
		}
		if string(ev.Message().Body) != bad[i][1] || ev.Topic() != tp {
			t.Errorf("report %d: topic %q body %q, want %q", i, ev.Topic(), ev.Message().Body, bad[i][1])
		}
	}
}

// TestReportsLogged checks that without an ErrorHandler, handler errors, panics and
// malformed messages are logged, and the subscription goes on.
func TestReportsLogged(t *testing.T) {
	var logs testutil.SyncBuffer
	sb := connected(t, broker.Logger(logger.NewLogger(logger.WithOutput(&logs))))
	pub := connected(t)
	tp := topic(t)
	var handled atomic.Int32
	if _, err := sb.Subscribe(tp, func(ev broker.Event) error {
		handled.Add(1)
		switch string(ev.Message().Body) {
		case "fail":
			return errors.New("handler says no")
		case "panic":
			panic("handler blew up")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"fail", "panic", "ok"} {
		if err := pub.Publish(tp, &broker.Message{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	rawPublish(t, tp, [2]string{"GARBAGE\r\n\r\n", "x"})
	waitFor(t, 10*time.Second, "the messages were not handled", func() bool { return handled.Load() == 3 })
	waitFor(t, 10*time.Second, "not everything was logged", func() bool {
		s := logs.String()
		return strings.Contains(s, "handler says no") && strings.Contains(s, "handler blew up") && strings.Contains(s, "could not parse")
	})
}

// TestHandlerErrorsReported checks what the ErrorHandler gets for a failing and a
// panicking handler.
func TestHandlerErrorsReported(t *testing.T) {
	var reported events
	sb := connected(t, broker.ErrorHandler(reported.handler), broker.Logger(quiet)) // the panic's stack
	pub := connected(t)
	tp := topic(t)
	errNo := errors.New("handler says no")
	if _, err := sb.Subscribe(tp, func(ev broker.Event) error {
		switch string(ev.Message().Body) {
		case "fail":
			return errNo
		case "panic":
			panic("handler blew up")
		}
		return nil
	}, broker.Queue("q")); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"fail", "ok", "panic"} {
		if err := pub.Publish(tp, &broker.Message{Header: map[string]string{"B": body}, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "two failures were not reported", func() bool { return reported.len() == 2 })
	reps := reported.list()
	if !errors.Is(reps[0].Error(), errNo) || reps[0].Message().Header["B"] != "fail" || reps[0].Topic() != tp {
		t.Errorf("report 0: %v %q", reps[0].Error(), reps[0].Message().Header)
	}
	if err := reps[1].Error(); err == nil || !strings.Contains(err.Error(), "panicked: handler blew up") {
		t.Errorf("report 1: %v", err)
	}
}

func TestWildcardSubscription(t *testing.T) {
	pub, sb := connected(t), connected(t)
	base := topic(t)
	var one, all events
	if _, err := sb.Subscribe(base+".*", one.handler); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Subscribe(base+".>", all.handler); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{".a", ".a.b"} {
		if err := pub.Publish(base+s, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "wildcard deliveries", func() bool { return one.len() == 1 && all.len() == 2 })
	if got := one.list()[0].Topic(); got != base+".a" {
		t.Errorf("Topic = %q, want the subject published to", got)
	}
}

// TestUnsubscribeFromHandler: a handler may unsubscribe its own subscription; nothing is
// delivered to it after.
func TestUnsubscribeFromHandler(t *testing.T) {
	pub, sb := connected(t), connected(t)
	tp := topic(t)
	var n atomic.Int32
	var sub broker.Subscriber
	var subMu sync.Mutex
	var other events
	subMu.Lock()
	sub, err := sb.Subscribe(tp, func(broker.Event) error {
		n.Add(1)
		subMu.Lock()
		defer subMu.Unlock()
		return sub.Unsubscribe()
	})
	subMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Subscribe(tp, other.handler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := pub.Publish(tp, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the other subscriber", func() bool { return other.len() == 10 })
	if n.Load() != 1 {
		t.Errorf("the handler that unsubscribed ran %d times, want 1", n.Load())
	}
}

func TestContexts(t *testing.T) {
	b := connected(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Subscribe(topic(t), nop, broker.SubscribeContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a done context: %v", err)
	}
	if err := b.Publish(topic(t), nil, broker.PublishContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a done context: %v", err)
	}
	if err := b.Publish(topic(t), nil, broker.PublishContext(context.Background())); err != nil {
		t.Errorf("Publish with a live context: %v", err)
	}
}

// TestDisconnectReturnsGoroutines: Disconnect ends every subscription and leaves no
// goroutine behind; a reconnected broker works again.
func TestDisconnectReturnsGoroutines(t *testing.T) {
	requireNATS(t)
	ignore := goleak.IgnoreCurrent()
	b := natsbroker.NewNatsBroker(broker.Addrs(natsURL()))
	for round := 0; round < 2; round++ {
		if err := b.Connect(); err != nil {
			t.Fatal(err)
		}
		tp := topic(t)
		var got events
		var subs []broker.Subscriber
		for i, q := range []string{"", "", "q", "q"} {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := b.Subscribe(tp, got.handler, broker.Queue(q), broker.SubscribeContext(ctx))
			if err != nil {
				t.Fatalf("Subscribe %d: %v", i, err)
			}
			subs = append(subs, s)
		}
		if err := b.Publish(tp, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "deliveries", func() bool { return got.len() == 3 })
		if err := subs[0].Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		if err := b.Disconnect(); err != nil {
			t.Fatal(err)
		}
		for i, s := range subs {
			if err := s.Unsubscribe(); err != nil {
				t.Errorf("Unsubscribe %d after Disconnect: %v", i, err)
			}
		}
		if err := b.Publish(tp, nil); !errors.Is(err, broker.ErrNotConnected) {
			t.Errorf("Publish after Disconnect: %v", err)
		}
		if err := b.Disconnect(); err != nil {
			t.Errorf("second Disconnect: %v", err)
		}
		goleak.VerifyNone(t, ignore)
	}
}

// TestDisconnectWaitsForHandlers: Disconnect returns only once running handlers have.
func TestDisconnectWaitsForHandlers(t *testing.T) {
	pub := connected(t)
	sb := newBroker(t)
	if err := sb.Connect(); err != nil {
		t.Fatal(err)
	}
	tp := topic(t)
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	if _, err := sb.Subscribe(tp, func(broker.Event) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(tp, nil); err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan error, 1)
	go func() { done <- sb.Disconnect() }()
	select {
	case err := <-done:
		t.Fatalf("Disconnect returned (%v) while a handler was running", err)
	case <-time.After(200 * time.Millisecond): // long enough for a Disconnect that does not wait
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Disconnect returned before the handler")
	}
}

// TestDrainConnection: with DrainConnection, the messages a subscription has received
// are handled before Disconnect returns; without, they are discarded.
func TestDrainConnection(t *testing.T) {
	for _, drain := range []bool{true, false} {
		t.Run(fmt.Sprint("drain=", drain), func(t *testing.T) {
			const n = 100
			var opts []broker.Option
			if drain {
				opts = append(opts, natsbroker.DrainConnection())
			}
			sb := connected(t, opts...)
			nc := rawConn(t)
			tp := topic(t)
			started, release := make(chan struct{}), make(chan struct{})
			var handled atomic.Int32
			if _, err := sb.Subscribe(tp, func(broker.Event) error {
				if handled.Add(1) == 1 {
					close(started)
					<-release
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if err := nc.Publish(tp, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil { // the server has routed them all
				t.Fatal(err)
			}
			<-started
			done := make(chan error, 1)
			go func() { done <- sb.Disconnect() }()
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := handled.Load()
			if drain && got != n {
				t.Errorf("drained Disconnect handled %d of %d messages", got, n)
			}
			if !drain && got == n {
				t.Logf("closing Disconnect handled all %d messages (they were handled before it closed)", n)
			}
		})
	}
}

func TestPublishTooLarge(t *testing.T) {
	b := connected(t)
	body := make([]byte, natsMaxPayload+1)
	err := b.Publish(topic(t), &broker.Message{Body: body})
	if !errors.Is(err, natsbroker.ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(natsMaxPayload)) {
		t.Errorf("Publish of %d bytes: %v, want ErrTooLarge naming the limit", len(body), err)
	}
	if err := b.Publish(topic(t), &broker.Message{Body: body[:1000]}); err != nil {
		t.Errorf("Publish after a refused one: %v", err)
	}
}

// TestPendingBytesFitLargestMessage: a pending bytes limit below the server's max
// payload is raised to it, so the largest message is delivered, not dropped.
func TestPendingBytesFitLargestMessage(t *testing.T) {
	sb := connected(t, natsbroker.PendingLimits(10, 1024))
	pub := connected(t)
	tp := topic(t)
	var got events
	sub, err := sb.Subscribe(tp, got.handler)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, natsMaxPayload-1024) // room for the headers
	if err := pub.Publish(tp, &broker.Message{Header: map[string]string{"K": "v"}, Body: body}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the largest message was not delivered", func() bool { return got.len() == 1 })
	if d := dropped(t, sub); d != 0 {
		t.Errorf("%d dropped", d)
	}
}
