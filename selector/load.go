package selector

import (
	"context"
	stderrors "errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/transport"
)

// The load the registry selector learns through Track, and LeastLoaded uses.
const (
	// loadDecay is the time constant of a node's latency average: a sample weighs
	// 1 - exp(-dt/loadDecay), dt being the time since the node's previous sample, so the
	// average covers about the last loadDecay. While a node has no call in flight its
	// average decays towards zero with the same constant.
	loadDecay = time.Second
	// failurePenalty is the least latency an attempt counts for when it shows a sick node:
	// it was never sent, or it failed with a 5xx.
	failurePenalty = time.Second
)

// nodeLoad is what the selector knows of one node's load.
type nodeLoad struct {
	inflight atomic.Int64  // attempts begun and not ended
	mu       sync.Mutex    // serialises updates of avg and at
	avg      atomic.Uint64 // float64 bits: latency average in ns; 0 until the first sample
	at       atomic.Int64  // when avg was last updated, on the selector's clock (ns)
}

// begin counts an attempt in flight.
func (l *nodeLoad) begin() { l.inflight.Add(1) }

// end counts the end of an attempt begun at start, with its outcome. A call the caller
// cancelled tells nothing of the node's latency.
func (l *nodeLoad) end(start, now int64, err error) {
	l.inflight.Add(-1)
	if err != nil && (stderrors.Is(err, context.Canceled) || errors.Code(err) == errors.StatusClientClosedRequest) {
		return
	}
	sample := now - start
	if err != nil && (transport.IsNotSent(err) || errors.Code(err) >= 500) {
		sample = max(sample, int64(failurePenalty))
	}
	l.observe(now, float64(max(sample, 1)))
}

// observe adds a latency sample (ns) taken at now to the average.
func (l *nodeLoad) observe(now int64, sample float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	avg, at := math.Float64frombits(l.avg.Load()), l.at.Load()
	if avg == 0 {
		avg = sample
	} else {
		w := math.Exp(-float64(max(now-at, 0)) / float64(loadDecay))
		avg = avg*w + sample*(1-w)
	}
	l.avg.Store(math.Float64bits(avg))
	l.at.Store(max(now, at))
}

// latency returns the node's latency estimate at now, given its calls in flight: the
// average, decayed for the time since its last sample when nothing is in flight. Zero
// means no data.
func (l *nodeLoad) latency(now, inflight int64) float64 {
	avg := math.Float64frombits(l.avg.Load())
	if inflight > 0 || avg == 0 {
		return avg
	}
	return avg * math.Exp(-float64(max(now-l.at.Load(), 0))/float64(loadDecay))
}

// idle reports whether the node's estimate decays: it has data and no call in flight.
func (l *nodeLoad) idle(inflight int64) bool { return inflight == 0 && l.avg.Load() != 0 }

// lighter reports whether a carries strictly less load than b: a lower latency times
// calls in flight plus one. When either has no latency data, calls in flight alone
// decide. The clock is read only when an estimate decays.
func lighter(a, b *nodeLoad, clock func() int64) bool {
	ia, ib := a.inflight.Load(), b.inflight.Load()
	var now int64
	if a.idle(ia) || b.idle(ib) {
		now = clock()
	}
	la, lb := a.latency(now, ia), b.latency(now, ib)
	if la == 0 || lb == 0 {
		return ia < ib
	}
	return la*float64(ia+1) < lb*float64(ib+1)
}
