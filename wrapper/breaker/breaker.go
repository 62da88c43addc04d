// Package breaker is a circuit breaker for micro clients: one circuit per called service,
// which stops calls to a service that keeps failing and lets them through again once it
// has recovered.
//
//	c := client.NewClient(client.Wrap(breaker.NewClientWrapper()))
//	svc := micro.NewService(micro.WrapClient(breaker.NewClientWrapper()))
//
// # States
//
// A circuit starts closed: calls pass, and their outcomes are counted. It opens after
// WithConsecutiveFailures failed calls in a row (default 5), or when at least
// WithFailureRatio of the calls in the rolling window failed (default half of at least 20
// calls in the last 10 s). While it is open, calls fail at once, without touching the
// network, with a 503 *errors.Error whose Id is "go.micro.breaker", whose Detail names
// the service, why the circuit opened and when it will probe again, and which wraps
// ErrOpen:
//
//	if errors.Is(err, breaker.ErrOpen) { ... }
//
// After WithOpenTimeout (default 5 s) the circuit is half-open: the next
// WithHalfOpenProbes calls (default 1) pass as probes and the others fail fast. When
// every probe succeeds the circuit closes with fresh counts; when one fails, or the
// probes have not all answered within the open period, it opens again, for twice as long
// as before, up to WithMaxOpenTimeout (default 1 min). The move to half-open is lazy: the
// first call after the open period makes it, as its probe, so an idle circuit costs
// nothing and a Breaker runs no goroutine and no timer.
//
// # What counts
//
// One call is one outcome, however many attempts the client made: the wrapper sits
// outside the client's retry loop, so an open circuit also keeps retries (and the retry
// budget) away from the service. Which errors are failures is set by WithFailureFunc; the
// default, IsFailure, counts 5xx (not 501), 408, an expired deadline and errors that are
// not *errors.Error, and never 4xx. A call ended by the caller's own cancellation
// (context.Canceled) counts neither way; as a probe it gives its place to the next call.
// Outcomes of calls that started before the circuit last changed state are dropped.
//
// Call and Stream are guarded; a stream counts by its opening only (what happens on an
// open stream is not counted). Publish goes to the broker, not to the service, and is
// passed through untouched.
//
// There is no CallWrapper form: a call wrapper sees each attempt, and the client retries
// a 503 of an idempotent call, with backoff and from the retry budget, so an open circuit
// there would neither fail fast nor spare the budget. Health of single nodes is the
// selector's business (it ejects nodes that refuse connections or time out).
//
// A Breaker keeps at most WithMaxServices circuits (default 1000), a few hundred bytes
// each. It is safe for concurrent use, and may be shared by several clients (with Wrap,
// or by giving one NewClientWrapper to several): they then share the circuits.
package breaker

import (
	stderrors "errors"
	"sync"
	"time"
)

// ErrOpen is the cause of the error of a call refused by an open or half-open circuit;
// match it with errors.Is.
var ErrOpen = stderrors.New("breaker: circuit open")

// ErrorID is the Id of the *errors.Error of a refused call.
const ErrorID = "go.micro.breaker"

// State is the state of a circuit.
type State int

// The states of a circuit.
const (
	// StateClosed lets calls pass and counts their outcomes.
	StateClosed State = iota
	// StateOpen refuses calls until its open period is over.
	StateOpen
	// StateHalfOpen lets a few probe calls pass and refuses the others.
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Change describes one change of state of a circuit, as told to a StateChangeFunc.
type Change struct {
	// Service is the service of the circuit.
	Service string
	// From and To are the states before and after.
	From, To State
	// At is when the change happened.
	At time.Time
	// Until is, when To is StateOpen, when the circuit will let a probe through.
	Until time.Time
	// Reason says why, for people: "5 consecutive failures (last: 503 ...)", "a failed
	// probe (last: ...)", "open for 5s", "1 probe succeeded".
	Reason string
	// Err is, when To is StateOpen, the failure that opened the circuit (nil when probes
	// did not answer in time).
	Err error
}

// Breaker keeps a circuit per service. Make it with New; wrap clients with Wrap. It is
// safe for concurrent use.
type Breaker struct {
	cfg   config
	now   func() time.Time
	epoch time.Time // start of the window's ticks

	mu       sync.RWMutex
	circuits map[string]*circuit

	notes notifier
}

// New returns a Breaker configured by opts on top of the defaults. It returns an error
// wrapping ErrInvalidOption when an option is out of range.
func New(opts ...Option) (*Breaker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newBreaker(cfg, time.Now), nil
}

func newBreaker(cfg config, now func() time.Time) *Breaker {
	return &Breaker{cfg: cfg, now: now, epoch: now(), circuits: make(map[string]*circuit)}
}

// State returns the state of service's circuit: StateClosed for a service it has no
// circuit for, and StateHalfOpen for an open circuit whose open period is over, even
// before the next call has been let through as its probe.
func (b *Breaker) State(service string) State {
	b.mu.RLock()
	c := b.circuits[service]
	b.mu.RUnlock()
	if c == nil {
		return StateClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateOpen && !b.now().Before(c.until) {
		return StateHalfOpen
	}
	return c.state
}

// circuit returns service's circuit, making it when there is room; nil means the call
// passes unguarded.
func (b *Breaker) circuit(service string) *circuit {
	b.mu.RLock()
	c := b.circuits[service]
	b.mu.RUnlock()
	if c != nil {
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.circuits[service]; c != nil {
		return c
	}
	if len(b.circuits) >= b.cfg.maxServices && !b.evict() {
		return nil
	}
	c = &circuit{service: service}
	b.circuits[service] = c
	return c
}

// evict makes room for one circuit: it drops every closed circuit with no failure in the
// window, or else one closed circuit. It reports whether there is room. Called with mu
// held; it takes circuits' locks (the order is always b.mu, then a circuit's).
func (b *Breaker) evict() bool {
	tick := b.tick(b.now())
	victim := ""
	for name, c := range b.circuits {
		c.mu.Lock()
		closed := c.state == StateClosed
		idle := closed && c.consecutive == 0 && c.window.failures(tick) == 0
		c.mu.Unlock()
		switch {
		case idle:
			delete(b.circuits, name)
		case closed && victim == "":
			victim = name
		}
	}
	if len(b.circuits) < b.cfg.maxServices {
		return true
	}
	if victim != "" {
		delete(b.circuits, victim)
		return true
	}
	return false
}

// tick returns the number of the window bucket that holds t.
func (b *Breaker) tick(t time.Time) int64 {
	d := t.Sub(b.epoch)
	if d < 0 {
		return 0
	}
	return int64(d / (b.cfg.window / windowBuckets))
}

// notify delivers queued changes to the StateChangeFunc.
func (b *Breaker) notify() {
	if b.cfg.onChange != nil {
		b.notes.deliver(b.cfg.onChange)
	}
}

// notifier queues changes of state and delivers them in order, one at a time, on the
// goroutine of whichever call finds nobody delivering, with no lock held while the
// function runs.
type notifier struct {
	mu         sync.Mutex
	queue      []Change
	delivering bool
}

// push queues a change. Called with the changed circuit's lock held, so that the queue
// has the order of the changes.
func (n *notifier) push(c Change) {
	n.mu.Lock()
	n.queue = append(n.queue, c)
	n.mu.Unlock()
}

func (n *notifier) deliver(fn StateChangeFunc) {
	n.mu.Lock()
	if n.delivering || len(n.queue) == 0 {
		n.mu.Unlock()
		return
	}
	n.delivering = true
	n.mu.Unlock()
	finished := false
	defer func() {
		if !finished { // fn panicked: let the next call deliver the rest
			n.mu.Lock()
			n.delivering = false
			n.mu.Unlock()
		}
	}()
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.queue = nil
			n.delivering = false
			n.mu.Unlock()
			finished = true
			return
		}
		c := n.queue[0]
		n.queue[0] = Change{}
		n.queue = n.queue[1:]
		n.mu.Unlock()
		fn(c)
	}
}
