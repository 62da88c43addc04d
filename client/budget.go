package client

import (
	"sync"
	"time"
)

// Retry budget defaults: retries of requests that reached a backend may add at most 20 %
// to the calls a client makes, plus 10 retries a second, so that a failing backend does
// not get multiplied traffic. Retries of requests that never left (a refused connection)
// cost no backend anything and are not counted.
var (
	DefaultRetryBudgetRatio     = 0.2
	DefaultRetryBudgetPerSecond = 10.0
)

// budgetWindow is how far back the calls a budget may spend a share of are counted.
const budgetWindow = 10 * time.Second

// budget is a token bucket of retries: every call deposits ratio tokens, time deposits
// perSecond tokens a second, a retry takes one. The bucket holds at most the share ratio
// of the calls of the last 10 s (and never less than perSecond + 10), so that after a
// busy healthy spell the retries of a burst of failures (a node dying with calls in
// flight) are paid for, while a long failure still gets no more than its share. It is
// safe for concurrent use.
type budget struct {
	mu        sync.Mutex
	ratio     float64
	perSecond float64
	floor     float64 // the least the bucket may hold
	tokens    float64
	last      time.Time
	// calls counted in the current and the previous window
	cur, prev int
	curStart  time.Time
}

func newBudget(ratio, perSecond float64) *budget {
	floor := perSecond + 10
	now := time.Now()
	return &budget{ratio: ratio, perSecond: perSecond, floor: floor, tokens: floor, last: now, curStart: now}
}

// call records a call.
func (b *budget) call() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.refill()
	b.cur++
	b.tokens = min(b.tokens+b.ratio, b.capacity())
	b.mu.Unlock()
}

// retry reports whether a retry may be made, taking a token if so.
func (b *budget) retry() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// capacity is the most the bucket holds now.
func (b *budget) capacity() float64 {
	return max(b.floor, b.ratio*float64(b.cur+b.prev))
}

func (b *budget) refill() {
	now := time.Now()
	if d := now.Sub(b.curStart); d >= budgetWindow {
		if d >= 2*budgetWindow {
			b.prev = 0
		} else {
			b.prev = b.cur
		}
		b.cur, b.curStart = 0, now
	}
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.perSecond, b.capacity())
	b.last = now
}
