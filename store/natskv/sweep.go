package natskv

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-b3892490/micro/logger"
)

// sweepTimeout bounds one sweep, every bucket together.
const sweepTimeout = 30 * time.Second

// sweeper is the state of the sweeps of one connection: where each bucket's pass is,
// and the bucket the last sweep stopped in for want of budget.
type sweeper struct {
	s       *kvStore
	c       *conn
	cfg     config
	log     logger.Logger
	cursors map[string]uint64 // next stream sequence to look at, by bucket; 0: the start
	resume  string
	// the budgets of a sweep: SweepMaxScan and SweepMaxPurges (smaller in tests)
	maxScan, maxPurges int
}

func newSweeper(s *kvStore, c *conn, cfg config, log logger.Logger) *sweeper {
	return &sweeper{s: s, c: c, cfg: cfg, log: log, cursors: map[string]uint64{}, maxScan: SweepMaxScan, maxPurges: SweepMaxPurges}
}

// sweepLoop sweeps every cfg.sweepInterval until ctx ends.
func (s *kvStore) sweepLoop(ctx context.Context, c *conn, cfg config, log logger.Logger) {
	defer close(c.sweepDone)
	if cfg.sweepInterval < 0 {
		return
	}
	sw := newSweeper(s, c, cfg, log)
	t := time.NewTicker(cfg.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sw.sweep(ctx)
	}
}

// sweep removes expired records from the buckets the store has used, within the
// budgets SweepMaxScan and SweepMaxPurges and sweepTimeout. It returns how many it
// removed.
func (sw *sweeper) sweep(ctx context.Context) int {
	sw.s.mu.Lock()
	if sw.s.conn != sw.c {
		sw.s.mu.Unlock()
		return 0
	}
	names := slices.Sorted(maps.Keys(sw.s.buckets))
	buckets := maps.Clone(sw.s.buckets)
	sw.s.mu.Unlock()
	if i := slices.Index(names, sw.resume); i > 0 {
		names = append(names[i:], names[:i]...)
	}
	sw.resume = ""
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	cl := &call{ctx: ctx, c: sw.c, cfg: sw.cfg}
	scanned, purged := 0, 0
	for _, name := range names {
		if scanned >= sw.maxScan || purged >= sw.maxPurges {
			sw.resume = name
			break
		}
		b := buckets[name]
		start := sw.cursors[name]
		// no filter: the bucket holds its subjects only, and a consumer without one is
		// made without a scan of them
		cc := jetstream.ConsumerConfig{HeadersOnly: true, DeliverPolicy: jetstream.DeliverAllPolicy}
		if start > 0 {
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
		}
		next := start
		now := time.Now().UnixNano()
		complete, err := cl.each(b, cc, listBatch, sw.maxScan-scanned, func(m jetstream.Msg, seq uint64) (bool, error) {
			at, err := parseExpires(m.Headers().Get(expiresHeader))
			if err != nil || at == 0 || at > now {
				scanned++
				next = seq + 1
				return true, nil // live, or not the store's to judge
			}
			if purged >= sw.maxPurges {
				return false, nil // next time, from this record
			}
			// only this message and older ones of the key: a record written again since
			// stays
			if err := b.stream.Purge(ctx, jetstream.WithPurgeSubject(m.Subject()), jetstream.WithPurgeSequence(seq+1)); err != nil {
				return false, err
			}
			scanned++
			purged++
			next = seq + 1
			return true, nil
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			delete(sw.cursors, name)
			sw.s.forget(sw.c, name)
			continue
		case err != nil:
			if !errors.Is(ctx.Err(), context.Canceled) { // not stopped by Close
				sw.log.Logf(logger.WarnLevel, "natskv: sweep of bucket %s: %v", name, classify(err))
			}
			sw.cursors[name] = next
			sw.resume = name
			return purged
		case complete:
			sw.cursors[name] = 0
		default:
			sw.cursors[name] = next
			sw.resume = name
			return purged
		}
	}
	return purged
}
