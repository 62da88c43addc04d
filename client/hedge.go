package client

import (
	"context"
	"reflect"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
)

// tryNode makes one attempt of a call on node, telling the selector about it: Track
// while it runs (load), Mark with its outcome (ejection).
func tryNode(ctx context.Context, call CallFunc, sel selector.Selector, node *registry.Node, req Request, rsp interface{}, copts CallOptions) error {
	done := track(sel, req.Service(), node, copts)
	err := call(ctx, node, req, rsp, copts)
	done(err)
	if !copts.isAddressCall() {
		sel.Mark(req.Service(), node, err)
	}
	return err
}

type hedgeResult struct {
	rsp interface{}
	err error
}

// hedged makes an attempt of an idempotent call on first and, when it has not answered
// after the hedging delay, a second one on a node not tried yet, if the retry budget
// allows. The first success is decoded into rsp (each attempt decodes into a value of
// its own, so rsp is written once, by this goroutine, before the call returns); the
// other attempt is cancelled. When both fail, the last error is returned for the retry
// policy to judge, as for a single attempt.
func hedged(ctx context.Context, call CallFunc, next selector.Next, tried map[string]bool, first *registry.Node,
	req Request, rsp interface{}, copts CallOptions, sel selector.Selector, b *budget) error {
	own, ok := newLike(rsp)
	if !ok {
		return tryNode(ctx, call, sel, first, req, rsp, copts) // nothing to decode into twice
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel() // the attempt still running, if any, loses
	results := make(chan hedgeResult, 2)
	launch := func(node *registry.Node, into interface{}) {
		go func() {
			results <- hedgeResult{into, tryNode(hctx, call, sel, node, req, into, copts)}
		}()
	}
	launch(first, own)
	running, hedgedYet := 1, false
	timer := time.NewTimer(hedgeDelay(sel, req, copts))
	defer timer.Stop()
	var lastErr error
	for running > 0 {
		select {
		case r := <-results:
			running--
			if r.err == nil {
				copyInto(rsp, r.rsp)
				return nil
			}
			lastErr = r.err
			if !hedgedYet {
				return r.err
			}
		case <-timer.C:
			hedgedYet = true
			node, err := pick(next, tried)
			if err != nil || tried[node.Id] || !b.retry() {
				continue // no other node, or no budget: wait for the first attempt
			}
			tried[node.Id] = true
			into, _ := newLike(rsp)
			launch(node, into)
			running++
		case <-ctx.Done():
			return contextError(ctx.Err(), req)
		}
	}
	return lastErr
}

// hedgeDelay returns how long a hedged call waits for its first attempt: the delay it
// was given, else the p95 latency of the service's quickest node (for a node no slower
// than the others, its own p95; for a slow one, what the call would take elsewhere),
// else DefaultHedgeDelay.
func hedgeDelay(sel selector.Selector, req Request, copts CallOptions) time.Duration {
	if copts.HedgeDelay > 0 {
		return copts.HedgeDelay
	}
	if l, ok := sel.(selector.Latencies); ok && !copts.isAddressCall() {
		if d, ok := l.Latency(req.Service(), nil, 0.95); ok {
			return d
		}
	}
	return DefaultHedgeDelay
}

// newLike returns a new zero value of the type rsp points to, and false when rsp is not
// a non-nil pointer.
func newLike(rsp interface{}) (interface{}, bool) {
	v := reflect.ValueOf(rsp)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, false
	}
	return reflect.New(v.Type().Elem()).Interface(), true
}

// copyInto replaces *dst with *src (of the same type): protobuf messages by proto.Merge
// into the reset dst, anything else by assignment.
func copyInto(dst, src interface{}) {
	if dm, ok := dst.(proto.Message); ok {
		if sm, ok := src.(proto.Message); ok {
			proto.Reset(dm)
			proto.Merge(dm, sm)
			return
		}
	}
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem())
}
