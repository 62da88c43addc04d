package postgres

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/store"
)

type timeoutKey struct{}

type sweepIntervalKey struct{}

// Timeout bounds each call of the store: connecting, the statements it runs and their
// rows. A call that does not finish in time returns an error that matches
// errors.Is(err, context.DeadlineExceeded). Default DefaultTimeout; a d that is not
// positive keeps the default. It also bounds the connection attempts the pool goes on
// with in the background when the connection string sets no connect_timeout.
//
// Like every backend option it is kept in Options.Context: give store.WithContext, if at
// all, before it.
func Timeout(d time.Duration) store.Option {
	return func(o *store.Options) { o.Context = context.WithValue(contextOf(o), timeoutKey{}, d) }
}

// SweepInterval sets how often the store deletes the expired records of the tables it
// has used (at most SweepLimit per table each time). Default DefaultSweepInterval; a d
// that is not positive keeps the default. Expired records are never returned, swept or
// not: the sweep only reclaims their space.
func SweepInterval(d time.Duration) store.Option {
	return func(o *store.Options) { o.Context = context.WithValue(contextOf(o), sweepIntervalKey{}, d) }
}

func contextOf(o *store.Options) context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

// durationOf returns the positive duration kept under key in o's context, or def.
func durationOf(o store.Options, key interface{}, def time.Duration) time.Duration {
	if o.Context != nil {
		if d, ok := o.Context.Value(key).(time.Duration); ok && d > 0 {
			return d
		}
	}
	return def
}
