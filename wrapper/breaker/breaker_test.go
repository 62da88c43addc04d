package breaker_test

import (
	"context"
	stderrors "errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/wrapper/breaker"
)

// backend is a service on a real server. Svc.Code answers with the code named in the
// request (an empty name succeeds); Svc.Block waits for release or its context.
type backend struct {
	calls       atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	release     chan struct{}
}

func newBackend(t *testing.T, reg registry.Registry, name string) *backend {
	t.Helper()
	b := &backend{release: make(chan struct{})}
	srv := testutil.NewServer(t, reg, name, nil)
	if err := server.HandleFunc(srv, "Svc.Code", func(ctx context.Context, in *testproto.Request, out *testproto.Response) error {
		b.calls.Add(1)
		if in.Name == "" {
			out.Message = "ok"
			return nil
		}
		code, err := strconv.Atoi(in.Name)
		if err != nil {
			return errors.BadRequest("backend", "bad code %q", in.Name)
		}
		return errors.New("backend", "answering "+in.Name, int32(code))
	}); err != nil {
		t.Fatal(err)
	}
	if err := server.HandleFunc(srv, "Svc.Block", func(ctx context.Context, in *testproto.Request, out *testproto.Response) error {
		b.calls.Add(1)
		n := b.inFlight.Add(1)
		defer b.inFlight.Add(-1)
		for {
			m := b.maxInFlight.Load()
			if n <= m || b.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-b.release:
			out.Message = "released"
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder collects the changes a Breaker reports.
type recorder struct {
	mu      sync.Mutex
	changes []breaker.Change
}

func (r *recorder) record(c breaker.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) all() []breaker.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]breaker.Change(nil), r.changes...)
}

// check fails t unless the changes chain from closed, each From the previous To.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	from := breaker.StateClosed
	for i, c := range r.all() {
		if c.From != from || c.From == c.To {
			t.Fatalf("change %d is %s -> %s after %s", i, c.From, c.To, from)
		}
		from = c.To
	}
}

func callCode(c client.Client, ctx context.Context, service, code string, opts ...client.CallOption) error {
	var rsp testproto.Response
	return c.Call(ctx, c.NewRequest(service, "Svc.Code", &testproto.Request{Name: code}), &rsp, opts...)
}

// newBreaker returns a Breaker with a recorder and a client wrapped by it.
func newBreaker(t *testing.T, reg registry.Registry, opts ...breaker.Option) (*breaker.Breaker, *recorder, client.Client) {
	t.Helper()
	rec := new(recorder)
	b, err := breaker.New(append([]breaker.Option{breaker.WithStateChangeFunc(rec.record)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return b, rec, testutil.NewClient(t, reg, client.Wrap(b.Wrap))
}

const (
	stepCancel   = "cancel"   // the caller cancels its context
	stepDeadline = "deadline" // the call's deadline expires in the handler
)

type step struct {
	code    string // "" succeeds, a code fails with it, or stepCancel or stepDeadline
	wait    bool   // first wait for the open period to end
	refused bool   // the breaker refuses the call
	want    breaker.State
}

func steps(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func seq(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s step) []step { return []step{s} }

var (
	closed   = breaker.StateClosed
	open     = breaker.StateOpen
	halfOpen = breaker.StateHalfOpen
	// fiveFailures opens a circuit of the default threshold.
	fiveFailures = seq(steps(4, step{code: "503", want: closed}), one(step{code: "503", want: open}))
)

// TestStateMachine runs sequences of calls through a circuit on a real server and checks
// its state after each one.
func TestStateMachine(t *testing.T) {
	cases := []struct {
		name  string
		opts  []breaker.Option
		steps []step
	}{
		{"closed to open after 5 consecutive failures", nil,
			seq(fiveFailures, one(step{refused: true, want: open}))},
		{"a success resets the count", nil,
			seq(steps(4, step{code: "503", want: closed}), one(step{want: closed}), steps(4, step{code: "503", want: closed}), one(step{code: "503", want: open}))},
		{"every failure counts: 500 502 504 408 and an expired deadline", nil,
			[]step{{code: "500", want: closed}, {code: "502", want: closed}, {code: "504", want: closed}, {code: "408", want: closed}, {code: stepDeadline, want: open}}},
		{"4xx and 501 never trip it", nil,
			seq(steps(6, step{code: "400", want: closed}), steps(6, step{code: "404", want: closed}), steps(6, step{code: "401", want: closed}),
				steps(6, step{code: "409", want: closed}), steps(6, step{code: "429", want: closed}), steps(6, step{code: "501", want: closed}))},
		{"4xx are successes: they reset the count", nil,
			seq(steps(4, step{code: "503", want: closed}), one(step{code: "404", want: closed}), steps(4, step{code: "503", want: closed}))},
		{"cancelled calls count neither way", nil,
			seq(steps(4, step{code: "503", want: closed}), steps(3, step{code: stepCancel, want: closed}), one(step{code: "503", want: open}))},
		{"open to half-open to closed when the probe succeeds", nil,
			seq(fiveFailures, one(step{wait: true, want: closed}), one(step{want: closed}))},
		{"half-open to open when the probe fails", nil,
			seq(fiveFailures, one(step{wait: true, code: "503", want: open}), one(step{refused: true, want: open}))},
		{"a 4xx probe closes: the service answered", nil,
			seq(fiveFailures, one(step{wait: true, code: "404", want: closed}))},
		{"a cancelled probe leaves it half-open for the next call", nil,
			seq(fiveFailures, one(step{wait: true, code: stepCancel, want: halfOpen}), one(step{want: closed}))},
		{"two probes must both succeed", []breaker.Option{breaker.WithHalfOpenProbes(2)},
			seq(fiveFailures, one(step{wait: true, want: halfOpen}), one(step{want: closed}))},
		{"the second of two probes failing reopens", []breaker.Option{breaker.WithHalfOpenProbes(2)},
			seq(fiveFailures, one(step{wait: true, want: halfOpen}), one(step{code: "500", want: open}))},
		{"failure ratio: half of 10 calls", []breaker.Option{breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 10)},
			seq(steps(4, step{want: closed}), steps(4, step{code: "500", want: closed}), one(step{want: closed}), one(step{code: "500", want: open}))},
		{"failure ratio: a third of the calls is below half", []breaker.Option{breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 10)},
			seq(steps(10, step{want: closed}), steps(5, step{code: "503", want: closed}), steps(5, step{want: closed}), steps(5, step{code: "503", want: closed}))},
		{"failure ratio below the minimum of calls", []breaker.Option{breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 10)},
			seq(steps(9, step{code: "503", want: closed}))},
		{"consecutive threshold of 1", []breaker.Option{breaker.WithConsecutiveFailures(1)},
			seq(one(step{code: "502", want: open}), one(step{refused: true, want: open}))},
	}
	reg := registry.NewMemoryRegistry()
	be := newBackend(t, reg, "svc")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]breaker.Option{breaker.WithOpenTimeout(20 * time.Millisecond)}, tc.opts...)
			b, rec, c := newBreaker(t, reg, opts...)
			service := "svc"
			for j, s := range tc.steps {
				if s.wait {
					testutil.Eventually(t, 2*time.Second, func() bool { return b.State(service) == halfOpen }, "the open period ends")
				}
				before := be.calls.Load()
				ctx := context.Background()
				var err error
				switch s.code {
				case stepCancel:
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					err = callCode(c, cctx, service, "")
				case stepDeadline:
					dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
					var rsp testproto.Response
					err = c.Call(dctx, c.NewRequest(service, "Svc.Block", &testproto.Request{}), &rsp)
					cancel()
				default:
					err = callCode(c, ctx, service, s.code)
				}
				ran := be.calls.Load() != before
				switch {
				case s.refused:
					if !stderrors.Is(err, breaker.ErrOpen) || ran {
						t.Fatalf("step %d: got %v (handler ran: %v), want a refusal without a call", j, err, ran)
					}
				case stderrors.Is(err, breaker.ErrOpen):
					t.Fatalf("step %d: refused: %v", j, err)
				case s.code == "" && err != nil:
					t.Fatalf("step %d: %v", j, err)
				}
				if got := b.State(service); got != s.want {
					t.Fatalf("step %d (%+v): state %s, want %s; changes %v", j, s, got, s.want, rec.all())
				}
			}
			rec.check(t)
		})
	}
}

// TestRefusal: the error of an open circuit is a 503 of the breaker that names the
// service, the reason and the next probe, wraps ErrOpen, and is returned without a call.
func TestRefusal(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	be := newBackend(t, reg, "svc")
	b, rec, c := newBreaker(t, reg, breaker.WithOpenTimeout(time.Hour))
	for i := 0; i < 5; i++ {
		_ = callCode(c, context.Background(), "svc", "503")
	}
	if b.State("svc") != open {
		t.Fatalf("state %s", b.State("svc"))
	}
	calls := be.calls.Load()
	err := callCode(c, context.Background(), "svc", "")
	if be.calls.Load() != calls {
		t.Fatal("an open circuit let a call through")
	}
	e, ok := errors.As(err)
	if !ok || e.Code != 503 || e.Id != breaker.ErrorID || !stderrors.Is(err, breaker.ErrOpen) {
		t.Fatalf("got %#v", err)
	}
	for _, want := range []string{"service svc", "5 consecutive failures", "503 answering 503", "next probe in "} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("detail %q lacks %q", e.Detail, want)
		}
	}
	// the change that opened it says the same
	ch := rec.all()
	if len(ch) != 1 || ch[0].To != open || ch[0].Service != "svc" || errors.Code(ch[0].Err) != 503 ||
		ch[0].Until.Sub(ch[0].At) != time.Hour || !strings.HasPrefix(ch[0].Reason, "5 consecutive failures") {
		t.Fatalf("changes %+v", ch)
	}
	// a stream of the same service is refused too
	if _, err := c.Stream(context.Background(), c.NewRequest("svc", "Svc.Code", &testproto.Request{})); !stderrors.Is(err, breaker.ErrOpen) {
		t.Fatalf("stream: %v", err)
	}
	// another service has its own circuit
	if err := callCode(c, context.Background(), "other", ""); errors.Code(err) != 503 || stderrors.Is(err, breaker.ErrOpen) {
		t.Fatalf("other service: %v", err)
	}
}

// TestHalfOpenRefusal: while the probe is in flight, other calls are refused with a
// detail saying so.
func TestHalfOpenRefusal(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	be := newBackend(t, reg, "svc")
	b, _, c := newBreaker(t, reg, breaker.WithOpenTimeout(10*time.Millisecond))
	for i := 0; i < 5; i++ {
		_ = callCode(c, context.Background(), "svc", "503")
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return b.State("svc") == halfOpen }, "half-open")
	done := make(chan error, 1)
	go func() {
		var rsp testproto.Response
		done <- c.Call(context.Background(), c.NewRequest("svc", "Svc.Block", &testproto.Request{}), &rsp)
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return be.inFlight.Load() == 1 }, "the probe runs")
	err := callCode(c, context.Background(), "svc", "")
	e, _ := errors.As(err)
	if !stderrors.Is(err, breaker.ErrOpen) || e == nil || !strings.Contains(e.Detail, "half-open") || !strings.Contains(e.Detail, "1 of 1 probes in flight") {
		t.Fatalf("got %v", err)
	}
	close(be.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := b.State("svc"); s != closed {
		t.Fatalf("state %s after the probe succeeded", s)
	}
}

// TestOpenBackoff: each failed probe doubles the open period up to the cap; closing
// resets it.
func TestOpenBackoff(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	newBackend(t, reg, "svc")
	base, maxOpen := 10*time.Millisecond, 35*time.Millisecond
	b, rec, c := newBreaker(t, reg, breaker.WithOpenTimeout(base), breaker.WithMaxOpenTimeout(maxOpen))
	fail := func() { _ = callCode(c, context.Background(), "svc", "503") }
	waitHalfOpen := func() {
		testutil.Eventually(t, 2*time.Second, func() bool { return b.State("svc") == halfOpen }, "half-open")
	}
	for i := 0; i < 5; i++ {
		fail()
	}
	for i := 0; i < 3; i++ { // probes that fail
		waitHalfOpen()
		fail()
	}
	waitHalfOpen()
	if err := callCode(c, context.Background(), "svc", ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		fail()
	}
	var periods []time.Duration
	for _, ch := range rec.all() {
		if ch.To == open {
			periods = append(periods, ch.Until.Sub(ch.At))
		}
	}
	want := []time.Duration{base, 2 * base, maxOpen, maxOpen, base}
	if len(periods) != len(want) {
		t.Fatalf("open periods %v, want %v", periods, want)
	}
	for i := range want {
		if periods[i] != want[i] {
			t.Fatalf("open periods %v, want %v", periods, want)
		}
	}
	rec.check(t)
}

// TestConcurrentProbes: of many callers arriving at a half-open circuit, only the allowed
// number of probes reach the service; the others are refused at once; the probes'
// success closes the circuit.
func TestConcurrentProbes(t *testing.T) {
	for _, probes := range []int{1, 3} {
		t.Run(strconv.Itoa(probes), func(t *testing.T) {
			reg := registry.NewMemoryRegistry()
			be := newBackend(t, reg, "svc")
			b, rec, c := newBreaker(t, reg, breaker.WithOpenTimeout(10*time.Millisecond), breaker.WithHalfOpenProbes(probes))
			for i := 0; i < 5; i++ {
				_ = callCode(c, context.Background(), "svc", "503")
			}
			testutil.Eventually(t, 2*time.Second, func() bool { return b.State("svc") == halfOpen }, "half-open")
			const callers = 32
			var refused, passed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, callers)
			for i := 0; i < callers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var rsp testproto.Response
					err := c.Call(context.Background(), c.NewRequest("svc", "Svc.Block", &testproto.Request{}), &rsp)
					switch {
					case stderrors.Is(err, breaker.ErrOpen):
						refused.Add(1)
					case err == nil:
						passed.Add(1)
					default:
						errs <- err
					}
				}()
			}
			close(start)
			testutil.Eventually(t, 5*time.Second, func() bool {
				return refused.Load() == callers-int64(probes) && be.inFlight.Load() == int64(probes)
			}, "all callers arrived, the probes run")
			close(be.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if passed.Load() != int64(probes) || be.maxInFlight.Load() != int64(probes) {
				t.Fatalf("%d probes passed, %d at once, want %d", passed.Load(), be.maxInFlight.Load(), probes)
			}
			if s := b.State("svc"); s != closed {
				t.Fatalf("state %s", s)
			}
			rec.check(t)
		})
	}
}

// TestStreamsAndPublish: opening a stream counts; Publish is not guarded.
func TestStreamsAndPublish(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	b, _, c := newBreaker(t, reg, breaker.WithConsecutiveFailures(3))
	for i := 0; i < 3; i++ { // no such service: 503
		if _, err := c.Stream(context.Background(), c.NewRequest("gone", "Svc.Stream", &testproto.Request{})); errors.Code(err) != 503 || stderrors.Is(err, breaker.ErrOpen) {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if s := b.State("gone"); s != open {
		t.Fatalf("state %s after 3 failed streams", s)
	}
	if err := callCode(c, context.Background(), "gone", ""); !stderrors.Is(err, breaker.ErrOpen) {
		t.Fatalf("call: %v", err)
	}
	if err := c.Publish(context.Background(), c.NewMessage("gone", &testproto.Request{Name: "x"})); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// TestStateChangeFuncMayCallBreaker: the callback runs with no lock held.
func TestStateChangeFuncMayCallBreaker(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	var b *breaker.Breaker
	seen := make(chan breaker.State, 4)
	b, err := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithStateChangeFunc(func(ch breaker.Change) {
		seen <- b.State(ch.Service)
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewClient(t, reg, client.Wrap(b.Wrap))
	_ = callCode(c, context.Background(), "nowhere", "")
	select {
	case s := <-seen:
		if s != open {
			t.Fatalf("state %s in the callback", s)
		}
	default:
		t.Fatal("no change delivered before the call returned")
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []breaker.Option{
		breaker.WithConsecutiveFailures(-1),
		breaker.WithFailureRatio(1.5, 10),
		breaker.WithFailureRatio(-0.1, 10),
		breaker.WithFailureRatio(0.5, 0),
		breaker.WithWindow(time.Millisecond),
		breaker.WithOpenTimeout(0),
		breaker.WithMaxOpenTimeout(-time.Second),
		breaker.WithHalfOpenProbes(0),
		breaker.WithMaxServices(0),
		breaker.WithFailureFunc(nil),
	} {
		if _, err := breaker.New(o); !stderrors.Is(err, breaker.ErrInvalidOption) {
			t.Errorf("New: %v", err)
		}
	}
	if _, err := breaker.New(breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0, 0)); !stderrors.Is(err, breaker.ErrInvalidOption) {
		t.Errorf("both rules off: %v", err)
	}
	reg := registry.NewMemoryRegistry()
	newBackend(t, reg, "svc")
	c := testutil.NewClient(t, reg, client.Wrap(breaker.NewClientWrapper(breaker.WithHalfOpenProbes(-1))))
	if err := callCode(c, context.Background(), "svc", ""); errors.Code(err) != 500 || !stderrors.Is(err, breaker.ErrInvalidOption) {
		t.Fatalf("call: %v", err)
	}
	if _, err := c.Stream(context.Background(), c.NewRequest("svc", "Svc.Code", &testproto.Request{})); !stderrors.Is(err, breaker.ErrInvalidOption) {
		t.Fatalf("stream: %v", err)
	}
}

// TestIsFailure is the table of the default classification.
func TestIsFailure(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("x", "", 500), true},
		{errors.New("x", "", 502), true},
		{errors.New("x", "", 503), true},
		{errors.New("x", "", 504), true},
		{errors.New("x", "", 408), true},
		{errors.New("x", "", 501), false},
		{errors.New("x", "", 400), false},
		{errors.New("x", "", 401), false},
		{errors.New("x", "", 403), false},
		{errors.New("x", "", 404), false},
		{errors.New("x", "", 409), false},
		{errors.New("x", "", 429), false},
		{errors.New("x", "", errors.StatusClientClosedRequest), false},
		{errors.Wrap(context.DeadlineExceeded, "x", 408, ""), true},
		{context.DeadlineExceeded, true},
		{stderrors.New("plain"), true},
	}
	for _, tc := range cases {
		if got := breaker.IsFailure(tc.err); got != tc.want {
			t.Errorf("IsFailure(%v) = %v", tc.err, got)
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[breaker.State]string{closed: "closed", open: "open", halfOpen: "half-open", 7: "unknown"} {
		if s.String() != want {
			t.Errorf("%d: %s", s, s)
		}
	}
}
