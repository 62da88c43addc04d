package selector

import (
	"context"
	stderrors "errors"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
)

// Outlier ejection: Mark takes nodes that fail out of selection for a while.
//
//   - A node that cannot be reached (the call was never sent: connection refused, no
//     route) or whose connection broke under a call (transport.ConnLostError: reset,
//     closed) is ejected at once.
//   - A node whose calls time out (408, 504, an expired deadline) three times in a row is
//     ejected; with the registry selector, only timeouts while the node answers nothing
//     else count (a node that keeps answering other calls within 200 ms is loaded, not
//     gone).
//   - An ejected node comes back after its back-off (1 s, doubling with each ejection in a
//     row, at most 5 s) on probation: it takes one attempt at a time (it is not
//     selected while an attempt on it is in flight, nor for 50 ms after a Select was
//     offered it), one success clears its record, and
//     one more failure ejects it again for twice as long.
//   - When every node of a service is ejected, selection ignores ejection (fail open).
//
// Ejection sets the count of timeouts and the back-offs.
const (
	ejectAfterTimeouts = 3
	ejectFirst         = time.Second
	// ejectMax is short because probation costs one attempt: a node that comes back
	// (a healed partition, a thawed process) is in use again within 5 s.
	ejectMax = 5 * time.Second
)

type nodeHealth struct {
	timeouts int           // consecutive timeouts
	until    time.Time     // ejected until then
	backoff  time.Duration // of the last ejection
	offered  time.Time     // on probation: when a Select was last offered the node
}

type health struct {
	mu    sync.Mutex
	nodes map[string]map[string]*nodeHealth // service, node id
	now   func() time.Time

	// the policy (Ejection); zero values mean the defaults
	after       int // timeouts in a row that eject; < 0: never eject
	first, most time.Duration
}

// policy returns the ejection settings, defaults filled in.
func (h *health) policy() (after int, first, most time.Duration) {
	after, first, most = h.after, h.first, h.most
	if after == 0 {
		after = ejectAfterTimeouts
	}
	if first <= 0 {
		first = ejectFirst
	}
	if most <= 0 {
		most = ejectMax
	}
	return after, first, max(first, most)
}

func (h *health) mark(service string, node *registry.Node, err error) {
	if node == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	after, first, most := h.policy()
	if after < 0 {
		return // ejection off
	}
	if isCancel(err) {
		return // the caller gave up: nothing learnt of the node
	}
	byNode := h.nodes[service]
	st := byNode[node.Id]
	unreachable := transport.IsNotSent(err) || transport.IsConnLost(err)
	if err == nil || !(unreachable || isTimeout(err)) {
		// success, or an answer from a live node
		if st != nil {
			delete(byNode, node.Id)
		}
		return
	}
	if st == nil {
		if h.nodes == nil {
			h.nodes = make(map[string]map[string]*nodeHealth)
		}
		if byNode == nil {
			byNode = make(map[string]*nodeHealth)
			h.nodes[service] = byNode
		}
		st = &nodeHealth{}
		byNode[node.Id] = st
	}
	now := h.now()
	if now.Before(st.until) {
		return // already out
	}
	if !unreachable {
		st.timeouts++
		if st.timeouts < after && st.backoff == 0 {
			return
		}
	}
	// eject; a node on probation (ejected before) goes out for twice as long
	st.backoff = min(max(st.backoff*2, first), most)
	st.until = now.Add(st.backoff)
	st.timeouts = 0
}

func isCancel(err error) bool {
	return err != nil && (stderrors.Is(err, context.Canceled) || errors.Code(err) == errors.StatusClientClosedRequest)
}

func isTimeout(err error) bool {
	switch errors.Code(err) {
	case 408, 504:
		return true
	}
	return stderrors.Is(err, context.DeadlineExceeded)
}

// filter returns services without their ejected nodes, nor the nodes on probation that
// are taken: busy (when not nil) reports an attempt in flight on them, or another Select
// was offered them in the last probeWindow (its attempt may not have begun yet). It
// returns the input itself (no copy) when no node is left out, and when every node would
// be.
func (h *health) filter(service string, services []*registry.Service, busy func(id string) bool) []*registry.Service {
	h.mu.Lock()
	defer h.mu.Unlock()
	byNode := h.nodes[service]
	if len(byNode) == 0 {
		return services
	}
	now := h.now()
	out := make([]*registry.Service, 0, len(services))
	some, all := false, true
	for _, s := range services {
		var keep []*registry.Node
		for _, n := range s.Nodes {
			if h.leftOut(byNode[n.Id], n.Id, now, busy) {
				some = true
				continue
			}
			all = false
			keep = append(keep, n)
		}
		if len(keep) == 0 {
			continue
		}
		c := *s
		c.Nodes = keep
		out = append(out, &c)
	}
	if !some || all {
		return services
	}
	return out
}

// probeWindow is how long a node on probation offered to one Select is kept from the
// others, so that concurrent Selects do not all send it an attempt before the first has
// begun (and busy sees it).
const probeWindow = 50 * time.Millisecond

// leftOut reports whether the node with record st is out of selection at now: ejected,
// or on probation and taken. A node on probation it offers is reserved for probeWindow.
func (h *health) leftOut(st *nodeHealth, id string, now time.Time, busy func(id string) bool) bool {
	if st == nil {
		return false
	}
	if now.Before(st.until) {
		return true
	}
	if st.backoff == 0 {
		return false // timeouts counted, not ejected yet
	}
	if now.Before(st.offered.Add(probeWindow)) || (busy != nil && busy(id)) {
		return true
	}
	st.offered = now
	return false
}

func (h *health) reset(service string) {
	h.mu.Lock()
	delete(h.nodes, service)
	h.mu.Unlock()
}
