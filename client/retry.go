package client

import (
	"context"
	stderrors "errors"
	"math/rand/v2"
	"time"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// BackoffFunc returns how long to wait before attempt number attempts (0 is the first).
type BackoffFunc func(ctx context.Context, req Request, attempts int) (time.Duration, error)

// RetryFunc decides whether to retry after attempt retryCount failed with err.
type RetryFunc func(ctx context.Context, req Request, retryCount int, err error) (bool, error)

// RetryAlways retries every failure. It opts the call in to running a handler more than
// once: use it only for idempotent endpoints.
func RetryAlways(ctx context.Context, req Request, retryCount int, err error) (bool, error) {
	return true, nil
}

// RetryOnError is the default retry policy. It retries, on another node, a request that
// provably never reached a handler (the connection could not be made, the request could
// not be written, or the server refused it before starting one: Micro-Not-Started). For a call marked idempotent (WithIdempotent) it also retries
// lost connections and the codes 408, 502, 503 and 504. Everything else, including every
// error a handler returned, is final. Decisions are made on error types and codes, never
// on error text.
func RetryOnError(ctx context.Context, req Request, retryCount int, err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	if transport.IsNotSent(err) {
		return true, nil
	}
	if isNotStarted(err) {
		return true, nil // no handler ran (the server was overloaded)
	}
	if !isIdempotent(ctx) {
		return false, nil
	}
	var lost *lostError
	if stderrors.As(err, &lost) {
		return true, nil
	}
	switch errors.Code(err) {
	case 408, 502, 503, 504:
		return true, nil
	}
	return false, nil
}

type idempotentKey struct{}

func isIdempotent(ctx context.Context) bool {
	v, _ := ctx.Value(idempotentKey{}).(bool)
	return v
}

// lostError marks an attempt whose request was sent but whose reply never came (the
// connection failed): the handler may or may not have run. It unwraps to a
// transport.ConnLostError, which tells the selector that the node is unreachable.
type lostError struct{ err error }

func newLostError(err error) *lostError { return &lostError{&transport.ConnLostError{Err: err}} }

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// notStartedError marks a reply saying that no handler ran (Micro-Not-Started, from an
// overloaded server): the request may go to another node, idempotent or not.
type notStartedError struct{ err error }

func (e *notStartedError) Error() string { return e.err.Error() }

// markNotStarted returns e, the error of reply, marked as a notStartedError when the
// reply says no handler ran.
func markNotStarted(reply *transport.Message, e error) error {
	if reply.Header[headers.NotStarted] == "" {
		return e
	}
	if me, ok := e.(*errors.Error); ok {
		return errors.Wrap(&notStartedError{me}, me.Id, me.Code, me.Detail)
	}
	return e
}

func isNotStarted(err error) bool {
	var ns *notStartedError
	return stderrors.As(err, &ns)
}
func (e *notStartedError) Unwrap() error { return e.err }

// exponentialBackoff waits 0 before the first attempt, then 100 ms, 200 ms, 400 ms, …
// (at most 5 s), each with up to 50 % jitter removed, and never past the deadline.
func exponentialBackoff(ctx context.Context, req Request, attempts int) (time.Duration, error) {
	if attempts <= 0 {
		return 0, nil
	}
	d := 100 * time.Millisecond << min(attempts-1, 6)
	d = min(d, 5*time.Second)
	d -= time.Duration(rand.Int64N(int64(d)/2 + 1))
	return d, nil
}
