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

// budget is a token bucket of retries: every call deposits ratio tokens, time deposits
// perSecond tokens a second, a retry takes one. It is safe for concurrent use.
type budget struct {
	mu        sync.Mutex
	ratio     float64
	perSecond float64
	max       float64
	tokens    float64
	last      time.Time
}

func newBudget(ratio, perSecond float64) *budget {
	max := perSecond + 10
	return &budget{ratio: ratio, perSecond: perSecond, max: max, tokens: max, last: time.Now()}
}

// call records a call.
func (b *budget) call() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.refill()
	b.tokens = min(b.tokens+b.ratio, b.max)
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

func (b *budget) refill() {
	now := time.Now()
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.perSecond, b.max)
	b.last = now
}
