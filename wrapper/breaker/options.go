package breaker

import (
	"context"
	stderrors "errors"
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/errors"
)

// The defaults of a Breaker. They are constants: a Breaker's settings are changed only
// through its options.
const (
	// DefaultConsecutiveFailures is how many failed calls in a row open a circuit.
	DefaultConsecutiveFailures = 5
	// DefaultFailureRatio is the share of failed calls in the window that opens a circuit,
	// once the window holds DefaultMinCalls calls.
	DefaultFailureRatio = 0.5
	// DefaultMinCalls is how many calls the window must hold before the failure ratio is
	// looked at.
	DefaultMinCalls = 20
	// DefaultWindow is the span of the rolling window the failure ratio is taken over.
	DefaultWindow = 10 * time.Second
	// DefaultOpenTimeout is how long a circuit stays open before it lets a probe through.
	DefaultOpenTimeout = 5 * time.Second
	// DefaultMaxOpenTimeout caps the open period, which doubles after every failed probe.
	DefaultMaxOpenTimeout = time.Minute
	// DefaultHalfOpenProbes is how many probe calls a half-open circuit lets through; all
	// of them must succeed for it to close.
	DefaultHalfOpenProbes = 1
	// DefaultMaxServices is how many services a Breaker keeps a circuit for.
	DefaultMaxServices = 1000
)

// windowBuckets is how many buckets the rolling window is cut into: it rolls forward
// one bucket (a tenth of the window) at a time.
const windowBuckets = 10

// ErrInvalidOption is returned, wrapped with the reason, by New given an invalid option.
// The client of NewClientWrapper with an invalid option fails every Call and Stream with
// a 500 *errors.Error that wraps it.
var ErrInvalidOption = stderrors.New("breaker: invalid option")

// FailureFunc reports whether a call's error counts as a failure of the service, towards
// opening its circuit. It is called with non-nil errors only, never for a call that ended
// with context.Canceled (those count neither way), and must be safe for concurrent use.
type FailureFunc func(err error) bool

// StateChangeFunc is told of every change of state of a circuit. See WithStateChangeFunc.
type StateChangeFunc func(Change)

// Option sets a field of a Breaker's configuration. Options only set fields: their order
// does not matter, and New validates the result.
type Option func(*config)

// config is what a Breaker runs with: the defaults, then the options.
type config struct {
	consecutive    int
	ratio          float64
	minCalls       int
	window         time.Duration
	openTimeout    time.Duration
	maxOpenTimeout time.Duration
	probes         int
	maxServices    int
	isFailure      FailureFunc
	onChange       StateChangeFunc
}

func newConfig(opts []Option) (config, error) {
	c := config{
		consecutive:    DefaultConsecutiveFailures,
		ratio:          DefaultFailureRatio,
		minCalls:       DefaultMinCalls,
		window:         DefaultWindow,
		openTimeout:    DefaultOpenTimeout,
		maxOpenTimeout: DefaultMaxOpenTimeout,
		probes:         DefaultHalfOpenProbes,
		maxServices:    DefaultMaxServices,
		isFailure:      IsFailure,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.consecutive < 0:
		return fmt.Errorf("%w: negative consecutive failures %d", ErrInvalidOption, c.consecutive)
	case !(c.ratio >= 0 && c.ratio <= 1): // also catches NaN
		return fmt.Errorf("%w: failure ratio %v is not within [0, 1]", ErrInvalidOption, c.ratio)
	case c.minCalls < 1 && c.ratio > 0:
		return fmt.Errorf("%w: minimum calls %d of the failure ratio is below 1", ErrInvalidOption, c.minCalls)
	case c.consecutive == 0 && c.ratio == 0:
		return fmt.Errorf("%w: both the consecutive failures and the failure ratio are off: the circuit would never open", ErrInvalidOption)
	case c.window < windowBuckets*time.Millisecond:
		return fmt.Errorf("%w: window %s is shorter than %s", ErrInvalidOption, c.window, windowBuckets*time.Millisecond)
	case c.openTimeout <= 0:
		return fmt.Errorf("%w: open timeout %s is not positive", ErrInvalidOption, c.openTimeout)
	case c.maxOpenTimeout < 0:
		return fmt.Errorf("%w: negative max open timeout %s", ErrInvalidOption, c.maxOpenTimeout)
	case c.probes < 1:
		return fmt.Errorf("%w: half-open probes %d is below 1", ErrInvalidOption, c.probes)
	case c.maxServices < 1:
		return fmt.Errorf("%w: max services %d is below 1", ErrInvalidOption, c.maxServices)
	case c.isFailure == nil:
		return fmt.Errorf("%w: nil failure func", ErrInvalidOption)
	}
	return nil
}

// WithConsecutiveFailures opens a circuit after n failed calls in a row (default
// DefaultConsecutiveFailures, 5). A success resets the count; 0 turns this rule off.
func WithConsecutiveFailures(n int) Option { return func(c *config) { c.consecutive = n } }

// WithFailureRatio opens a circuit when at least ratio of the calls in the rolling window
// failed, once the window holds at least minCalls calls (defaults DefaultFailureRatio and
// DefaultMinCalls: half of at least 20 calls). A ratio of 0 turns this rule off.
func WithFailureRatio(ratio float64, minCalls int) Option {
	return func(c *config) { c.ratio, c.minCalls = ratio, minCalls }
}

// WithWindow sets the span of the rolling window the failure ratio is taken over (default
// DefaultWindow, 10 s; at least 10 ms). The window rolls forward a tenth of its span at a
// time.
func WithWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithOpenTimeout sets how long a circuit stays open before it lets probes through
// (default DefaultOpenTimeout, 5 s).
func WithOpenTimeout(d time.Duration) Option { return func(c *config) { c.openTimeout = d } }

// WithMaxOpenTimeout caps the open period, which doubles after each failed probe (default
// DefaultMaxOpenTimeout, 1 min). A cap below the open timeout means no doubling.
func WithMaxOpenTimeout(d time.Duration) Option { return func(c *config) { c.maxOpenTimeout = d } }

// WithHalfOpenProbes sets how many probe calls a half-open circuit lets through (default
// DefaultHalfOpenProbes, 1). It closes when all of them succeed and opens again at the
// first that fails; other calls fail fast meanwhile.
func WithHalfOpenProbes(n int) Option { return func(c *config) { c.probes = n } }

// WithMaxServices bounds how many services a Breaker keeps a circuit for (default
// DefaultMaxServices, 1000). When a new service would exceed it, circuits that are closed
// and saw no failure in the window are dropped (they hold nothing a fresh one does not),
// else one closed circuit; when every circuit is open or half-open, the new service's
// calls pass without a circuit until room is made.
func WithMaxServices(n int) Option { return func(c *config) { c.maxServices = n } }

// WithFailureFunc sets which errors count as failures (default IsFailure).
func WithFailureFunc(fn FailureFunc) Option { return func(c *config) { c.isFailure = fn } }

// WithStateChangeFunc sets a function told of every change of state of a circuit
// (default none). It runs on the goroutine of a call, after the change and with no lock
// of the Breaker held, so it may call the Breaker; changes are delivered one at a time,
// in the order they happened. It should return quickly: a call that delivers changes
// waits for it.
func WithStateChangeFunc(fn StateChangeFunc) Option { return func(c *config) { c.onChange = fn } }

// IsFailure is the default FailureFunc. Failures are what says the service is unwell:
//
//   - an expired deadline (context.DeadlineExceeded) and the code 408;
//   - the 5xx codes, 501 Not Implemented excepted (an answer, not an outage), which
//     covers transport failures: the client reports a refused connection as 503 and a
//     lost one as 502, and a service with no node as 503;
//   - an error that is not an *errors.Error (code 0), which says nothing about the
//     caller being at fault.
//
// Every other code (4xx: the caller's mistake, which the service answered) is not a
// failure; neither is a cancelled context, which is never passed to a FailureFunc.
func IsFailure(err error) bool {
	if err == nil {
		return false
	}
	if stderrors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var code int32
	if e, ok := err.(*errors.Error); ok { // the usual case, without errors.As's allocation
		code = e.Code
	} else {
		code = errors.Code(err)
	}
	switch {
	case code == 0, code == 408:
		return true
	case code == 501:
		return false
	case code >= 500:
		return true
	}
	return false
}
