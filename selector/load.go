package selector

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/registry"
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
	mu       sync.Mutex    // serialises updates of avg, at and hist
	avg      atomic.Uint64 // float64 bits: latency average in ns; 0 until the first sample
	at       atomic.Int64  // when avg was last updated, on the selector's clock (ns)
	hist     latencyHist   // of answered attempts, for quantiles
	lastOK   atomic.Int64  // when an attempt last got an answer (not a timeout), on the selector's clock; 0: never
}

// begin counts an attempt in flight.
func (l *nodeLoad) begin() { l.inflight.Add(1) }

// end counts the end of an attempt begun at start, with its outcome. A call the caller
// cancelled tells nothing of the node's latency.
func (l *nodeLoad) end(start, now int64, err error) {
	l.inflight.Add(-1)
	if isCancel(err) {
		return
	}
	sample := now - start
	answered := true
	if err != nil && (transport.IsNotSent(err) || errors.Code(err) >= 500) {
		sample = max(sample, int64(failurePenalty))
		answered = false
	}
	if answered && (err == nil || !isTimeout(err)) {
		l.lastOK.Store(max(now, 1)) // 0 means never
	}
	l.observe(now, float64(max(sample, 1)), answered)
}

// answeredWithin reports whether an attempt on the node got an answer in the d before now.
func (l *nodeLoad) answeredWithin(now int64, d time.Duration) bool {
	last := l.lastOK.Load()
	return last != 0 && now-last < int64(d)
}

// observe adds a latency sample (ns) taken at now to the average, and, for an answered
// attempt, to the histogram.
func (l *nodeLoad) observe(now int64, sample float64, answered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if answered {
		l.hist.add(now, int64(sample))
	}
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

// The latency histogram of a node: log-linear buckets (histSub per power of two, about
// 19 % wide) from 2^histMinShift ns (16 µs) to 2^histMaxShift ns (about 69 s). Counts
// halve every histHalfLife, so quantiles follow the last few seconds.
const (
	histMinShift = 14
	histMaxShift = 36
	histSub      = 4
	histBuckets  = (histMaxShift - histMinShift + 1) * histSub
	histHalfLife = 2 * time.Second
	// histMinSamples is how many recent samples a quantile needs.
	histMinSamples = 16
)

type latencyHist struct {
	counts [histBuckets]uint32
	total  uint32
	halved int64 // when the counts last halved, on the selector's clock
}

// bucket returns the bucket of a latency in ns.
func histBucket(ns int64) int {
	if ns < 1<<histMinShift {
		return 0
	}
	e := bits.Len64(uint64(ns)) - 1 // 2^e <= ns < 2^(e+1)
	if e > histMaxShift {
		return histBuckets - 1
	}
	sub := int(uint64(ns)>>(e-2)) & (histSub - 1) // the two bits below the top one
	return (e-histMinShift)*histSub + sub
}

// histUpper returns the upper bound of bucket i in ns.
func histUpper(i int) int64 {
	e, sub := i/histSub+histMinShift, int64(i%histSub)
	return (int64(1) << e) + (sub+1)*(int64(1)<<(e-2))
}

func (h *latencyHist) add(now, ns int64) {
	if d := now - h.halved; d >= int64(histHalfLife) {
		shift := min(d/int64(histHalfLife), 32)
		h.total = 0
		for i := range h.counts {
			h.counts[i] >>= shift
			h.total += h.counts[i]
		}
		h.halved = now
	}
	if h.total == math.MaxUint32 {
		return
	}
	h.counts[histBucket(ns)]++
	h.total++
}

// quantile returns the latency under which a share q of the recent samples fall (the
// upper bound of its bucket), and false without enough samples.
func (h *latencyHist) quantile(q float64) (time.Duration, bool) {
	if h.total < histMinSamples {
		return 0, false
	}
	rank := uint32(math.Ceil(q * float64(h.total)))
	var seen uint32
	for i, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return time.Duration(histUpper(i)), true
		}
	}
	return time.Duration(histUpper(histBuckets - 1)), true
}

// Latency implements Latencies: the quantile q (0 < q ≤ 1) of the node's recent
// latencies of answered attempts, and false when the selector has too few samples of it
// (fewer than 16 in the last seconds) or does not list it. With a nil node it is the
// least such quantile among the service's nodes.
func (s *registrySelector) Latency(service string, node *registry.Node, q float64) (time.Duration, bool) {
	q = min(max(q, 0), 1)
	var loads []*nodeLoad
	s.smu.RLock()
	if st := s.states[service]; st != nil {
		if node == nil {
			loads = make([]*nodeLoad, 0, len(st.loads))
			for _, l := range st.loads {
				loads = append(loads, l)
			}
		} else if l := st.loads[node.Id]; l != nil {
			loads = []*nodeLoad{l}
		}
	}
	s.smu.RUnlock()
	var best time.Duration
	found := false
	for _, l := range loads {
		l.mu.Lock()
		d, ok := l.hist.quantile(q)
		l.mu.Unlock()
		if ok && (!found || d < best) {
			best, found = d, true
		}
	}
	return best, found
}
