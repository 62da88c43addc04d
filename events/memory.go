package events

import (
	"bytes"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/seed-b3892490/micro/logger"
)

// memoryStream is the stream of NewStream. One mutex guards everything; no user code
// (consumers, loggers) runs while it is held. Each consumer has one goroutine, which
// takes events from its group's queues and hands them over its unbuffered channel.
type memoryStream struct {
	opts Options
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	topics   map[string]*memTopic
	seq      uint64    // of the last event published
	tokens   uint64    // of the last delivery made
	retained []*record // every retained event, oldest first
	retBytes int
	stats    Stats
}

// memTopic is one topic: the events retained for it, oldest first (a subsequence of the
// stream's), and its consumer groups. A topic with neither is forgotten.
type memTopic struct {
	retained []*record
	groups   map[string]*memGroup // by name
	solos    map[*memGroup]struct{}
}

func (t *memTopic) empty() bool {
	return len(t.retained) == 0 && len(t.groups) == 0 && len(t.solos) == 0
}

// record is one published event; it is never modified.
type record struct {
	seq   uint64
	event Event
	size  int
}

// memGroup is what a named group's members share, or a consumer without a group has to
// itself: the events to deliver (redeliveries first, then the replay of WithOffset, then
// new events), and those handed over and waiting for an acknowledgement.
type memGroup struct {
	topic    string
	name     string
	retry    []*delivery // nacked or timed out, to deliver again first
	replay   []*record   // retained events since the offset, to deliver before queue
	queue    []*delivery // new events; at most Options.QueueSize
	inflight map[uint64]*delivery
	members  int
	gone     bool          // the last member left: nothing more is delivered
	ready    chan struct{} // closed when there may be something for a waiting member
	room     chan struct{} // closed when queue may have room for a waiting publisher
}

func (g *memGroup) queued() int { return len(g.retry) + len(g.replay) + len(g.queue) }

// delivery is one event for one group, across its deliveries.
type delivery struct {
	rec   *record
	count int    // deliveries made
	token uint64 // of the latest delivery
	limit int    // retry limit of the member that has it (-1: none)
	timer *time.Timer
}

// member is one Consume call.
type member struct {
	out     chan Event
	ctxDone <-chan struct{} // nil without a context
	autoAck bool
	ackWait time.Duration
	limit   int
}

// NewStream returns the memory stream, the default Stream: events live in this process
// only, and the returned value also implements io.Closer and Reporter.
//
// Publish queues each event for every consumer of the topic without a group and for
// each group, and returns once it is queued everywhere. Each queue holds at most
// Options.QueueSize events (default 1024): when a queue of the topic is full, Publish
// waits for room (backpressure, never a silent drop) for at most Options.PublishTimeout
// (default 5 s) or the end of WithPublishContext's context, and then returns an error
// (ErrFull or the context's) having queued the event for no consumer, so that
// publishing it again delivers it once; Stats.Rejected counts those. A consumer's
// channel is unbuffered: the consumer receives events in publish order, one at a time,
// and an event is "delivered" when the consumer has received it. Consumers of a group
// take its events in turn as each is ready. A consumer with manual acknowledgement
// holds at most Options.MaxInFlight (default 1024) unacknowledged events; an event it
// does not acknowledge within its ackWait is delivered again (before new events), as is
// one it nacks. Memory for a topic is thus bounded by QueueSize + MaxInFlight events per
// consumer or group, plus the retention below.
//
// For WithOffset the stream retains the latest events, at most Options.RetainEvents
// (default 10,000) and Options.RetainBytes (default 64 MiB) over all topics together,
// forgetting the oldest first. A consumer created with an offset receives the topic's
// retained events with a Timestamp at or after it, then new ones.
//
// Groups live in memory as long as they have a member: when the last member's
// consuming ends, the group's undelivered and unacknowledged events are dropped, and a
// later consumer of that group starts afresh. The same happens to everything when the
// stream is closed, or the process ends.
//
// Dead-lettered events (over a retry limit) are logged at warning level through
// Options.Logger and counted in Stats().DeadLettered.
//
// Close ends every consumer (their channels are closed), stops the stream's goroutines
// and waits for them; Publish and Consume then return ErrClosed. The stream is safe for
// concurrent use.
func NewStream(opts ...Option) (Stream, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return &memoryStream{opts: o, done: make(chan struct{}), topics: make(map[string]*memTopic)}, nil
}

// Publish queues msg as an event of topic for the topic's consumers, as NewStream
// describes. It returns ErrMissingTopic for an empty topic, an error matching
// ErrEncodingMessage if msg does not encode, ErrClosed after Close, and ErrFull or the
// context's error if a queue stayed full.
func (s *memoryStream) Publish(topic string, msg interface{}, opts ...PublishOption) error {
	if topic == "" {
		return ErrMissingTopic
	}
	payload, err := Encode(msg)
	if err != nil {
		return err
	}
	o := NewPublishOptions(opts...)
	ts := o.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	rec := &record{event: Event{ID: uuid.NewString(), Topic: topic, Timestamp: ts, Metadata: maps.Clone(o.Metadata), Payload: bytes.Clone(payload)}}
	rec.size = eventSize(&rec.event)
	var ctxDone <-chan struct{}
	if o.Context != nil {
		if err := o.Context.Err(); err != nil {
			return fmt.Errorf("events: publish to %q: %w", topic, err)
		}
		ctxDone = o.Context.Done()
	}
	var timeout *time.Timer
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		t := s.topics[topic]
		full := t.fullGroup(s.opts.QueueSize)
		if full == nil {
			s.publishLocked(topic, t, rec)
			s.mu.Unlock()
			return nil
		}
		if full.room == nil {
			full.room = make(chan struct{})
		}
		room, group := full.room, full.name
		s.mu.Unlock()
		if timeout == nil {
			timeout = time.NewTimer(s.opts.PublishTimeout)
			defer timeout.Stop()
		}
		select {
		case <-room:
		case <-timeout.C:
			s.reject()
			return fmt.Errorf("%w: topic %q: the queue of %s stayed full (%d events) for %s; the event was queued for no consumer",
				ErrFull, topic, groupLabel(group), s.opts.QueueSize, s.opts.PublishTimeout)
		case <-ctxDone:
			s.reject()
			return fmt.Errorf("events: publish to %q: waiting for room in the queue of %s: %w", topic, groupLabel(group), o.Context.Err())
		case <-s.done:
			return ErrClosed
		}
	}
}

func groupLabel(name string) string {
	if name == "" {
		return "a consumer without a group"
	}
	return fmt.Sprintf("group %q", name)
}

func (s *memoryStream) reject() {
	s.mu.Lock()
	s.stats.Rejected++
	s.mu.Unlock()
}

// fullGroup returns a group of t whose queue is full, or nil. t may be nil.
func (t *memTopic) fullGroup(size int) *memGroup {
	if t == nil {
		return nil
	}
	for _, g := range t.groups {
		if len(g.queue) >= size {
			return g
		}
	}
	for g := range t.solos {
		if len(g.queue) >= size {
			return g
		}
	}
	return nil
}

// publishLocked queues rec for every group of topic and retains it. t may be nil.
func (s *memoryStream) publishLocked(topic string, t *memTopic, rec *record) {
	s.seq++
	rec.seq = s.seq
	s.stats.Published++
	if t != nil {
		for _, g := range t.groups {
			s.enqueueLocked(g, rec)
		}
		for g := range t.solos {
			s.enqueueLocked(g, rec)
		}
	}
	s.retainLocked(topic, t, rec)
}

func (s *memoryStream) enqueueLocked(g *memGroup, rec *record) {
	g.queue = append(g.queue, &delivery{rec: rec, limit: -1})
	s.stats.Queued++
	wake(&g.ready)
}

// retainLocked keeps rec for WithOffset and forgets the oldest events beyond the bounds.
func (s *memoryStream) retainLocked(topic string, t *memTopic, rec *record) {
	if s.opts.RetainEvents < 0 || s.opts.RetainBytes < 0 || rec.size > s.opts.RetainBytes {
		return
	}
	if t == nil {
		t = &memTopic{}
		s.topics[topic] = t
	}
	t.retained = append(t.retained, rec)
	s.retained = append(s.retained, rec)
	s.retBytes += rec.size
	for len(s.retained) > s.opts.RetainEvents || s.retBytes > s.opts.RetainBytes {
		old := s.retained[0]
		s.retained[0] = nil
		s.retained = s.retained[1:]
		s.retBytes -= old.size
		// Events are retained in publish order, so old heads its topic's list.
		ot := s.topics[old.event.Topic]
		ot.retained[0] = nil
		ot.retained = ot.retained[1:]
		if ot.empty() {
			delete(s.topics, old.event.Topic)
		}
	}
}

// eventSize is what an event counts against Options.RetainBytes.
func eventSize(e *Event) int {
	n := 64 + len(e.ID) + len(e.Topic) + len(e.Payload)
	for k, v := range e.Metadata {
		n += len(k) + len(v) + 16
	}
	return n
}

// wake closes *ch, if set, and clears it: everyone waiting on it looks again.
func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

// Consume returns a channel of topic's events, as NewStream describes. It returns
// ErrMissingTopic for an empty topic, ErrClosed after Close, and the context's error if
// WithContext's context is already done. The channel is closed when that context ends
// or the stream is closed.
func (s *memoryStream) Consume(topic string, opts ...ConsumeOption) (<-chan Event, error) {
	if topic == "" {
		return nil, ErrMissingTopic
	}
	o := NewConsumeOptions(opts...)
	m := &member{out: make(chan Event), autoAck: o.AutoAck, ackWait: o.AckWait, limit: o.GetRetryLimit()}
	if o.Context != nil {
		if err := o.Context.Err(); err != nil {
			return nil, fmt.Errorf("events: consume %q: %w", topic, err)
		}
		m.ctxDone = o.Context.Done()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	t := s.topics[topic]
	if t == nil {
		t = &memTopic{}
		s.topics[topic] = t
	}
	var g *memGroup
	if o.Group != "" {
		g = t.groups[o.Group]
	}
	if g == nil {
		g = &memGroup{topic: topic, name: o.Group, inflight: make(map[uint64]*delivery)}
		if !o.Offset.IsZero() {
			for _, r := range t.retained {
				if !r.event.Timestamp.Before(o.Offset) {
					g.replay = append(g.replay, r)
				}
			}
			s.stats.Queued += len(g.replay)
		}
		if o.Group != "" {
			if t.groups == nil {
				t.groups = make(map[string]*memGroup)
			}
			t.groups[o.Group] = g
		} else {
			if t.solos == nil {
				t.solos = make(map[*memGroup]struct{})
			}
			t.solos[g] = struct{}{}
		}
	}
	g.members++
	s.wg.Add(1)
	go s.run(g, m)
	return m.out, nil
}

// run is a member's goroutine: it hands the group's events over m.out until the
// member's context ends or the stream closes, then closes m.out.
func (s *memoryStream) run(g *memGroup, m *member) {
	defer s.wg.Done()
	defer close(m.out)
	defer s.leave(g)
	for {
		d, ok := s.take(g, m)
		if !ok {
			return
		}
		token := d.token
		ev := s.eventOf(g, m, d)
		select {
		case m.out <- ev:
			s.handedOver(g, m, d, token)
		case <-m.ctxDone:
			s.putBack(g, d)
			return
		case <-s.done:
			s.putBack(g, d)
			return
		}
	}
}

// take waits for the group's next event, and reports false when m is to stop.
func (s *memoryStream) take(g *memGroup, m *member) (*delivery, bool) {
	for {
		s.mu.Lock()
		if s.closed || g.gone {
			s.mu.Unlock()
			return nil, false
		}
		if len(g.inflight) < s.opts.MaxInFlight {
			if d := s.nextLocked(g); d != nil {
				d.count++
				s.tokens++
				d.token = s.tokens
				// Counted as delivered now, so that the counts include an event by the
				// time its consumer has it; putBack takes it back.
				s.stats.Delivered++
				if d.count > 1 {
					s.stats.Redelivered++
				}
				if !m.autoAck {
					// In flight from now on: the consumer may acknowledge it as soon as
					// it has it, before handedOver runs.
					d.limit = m.limit
					g.inflight[d.rec.seq] = d
					s.stats.InFlight++
				}
				s.mu.Unlock()
				return d, true
			}
		}
		if g.ready == nil {
			g.ready = make(chan struct{})
		}
		ready := g.ready
		s.mu.Unlock()
		select {
		case <-ready:
		case <-m.ctxDone:
			return nil, false
		case <-s.done:
			return nil, false
		}
	}
}

// nextLocked removes and returns the group's next event, or nil.
func (s *memoryStream) nextLocked(g *memGroup) *delivery {
	var d *delivery
	switch {
	case len(g.retry) > 0:
		d = g.retry[0]
		g.retry[0] = nil
		g.retry = g.retry[1:]
	case len(g.replay) > 0:
		d = &delivery{rec: g.replay[0], limit: -1}
		g.replay[0] = nil
		g.replay = g.replay[1:]
	case len(g.queue) > 0:
		d = g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		wake(&g.room)
	default:
		return nil
	}
	s.stats.Queued--
	return d
}

// eventOf returns the consumer's copy of d's event.
func (s *memoryStream) eventOf(g *memGroup, m *member, d *delivery) Event {
	src := &d.rec.event
	ev := Event{ID: src.ID, Topic: src.Topic, Timestamp: src.Timestamp, Metadata: maps.Clone(src.Metadata), Payload: bytes.Clone(src.Payload)}
	if !m.autoAck {
		token := d.token
		ev.ackFunc = func() error { return s.ack(g, d) }
		ev.nackFunc = func() error { return s.nack(g, d, token) }
	}
	return ev
}

// handedOver is called once the consumer received d's delivery token: with manual
// acknowledgement, unless the consumer has already acknowledged or nacked it, its ack
// timer starts.
func (s *memoryStream) handedOver(g *memGroup, m *member, d *delivery, token uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.autoAck || s.closed || g.gone || d.token != token || g.inflight[d.rec.seq] != d {
		return
	}
	s.wg.Add(1) // the caller's goroutine is counted: the group is not zero
	d.timer = time.AfterFunc(m.ackWait, func() {
		defer s.wg.Done()
		s.expire(g, d, token)
	})
}

// stopTimerLocked stops d's ack timer; a timer that has not fired releases its count
// in wg (one that has fired releases it itself).
func (s *memoryStream) stopTimerLocked(d *delivery) {
	if d.timer != nil {
		if d.timer.Stop() {
			s.wg.Done()
		}
		d.timer = nil
	}
}

// putBack returns an event the member took but did not hand over to the front of its
// group: it was not delivered.
func (s *memoryStream) putBack(g *memGroup, d *delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Delivered--
	if d.count > 1 {
		s.stats.Redelivered--
	}
	if g.gone {
		return
	}
	if g.inflight[d.rec.seq] == d { // taken by a member with manual acknowledgement
		delete(g.inflight, d.rec.seq)
		s.stats.InFlight--
	}
	d.count--
	g.retry = append([]*delivery{d}, g.retry...)
	s.stats.Queued++
	wake(&g.ready)
}

// deadLetter describes an event given up, for the log.
type deadLetter struct {
	id, topic, group string
	deliveries       int
}

// redeliverLocked queues d (just out of flight) to be delivered again, or gives it up
// if it has had its deliveries.
func (s *memoryStream) redeliverLocked(g *memGroup, d *delivery) *deadLetter {
	if d.limit >= 0 && d.count > d.limit {
		s.stats.DeadLettered++
		return &deadLetter{id: d.rec.event.ID, topic: g.topic, group: g.name, deliveries: d.count}
	}
	g.retry = append(g.retry, d)
	s.stats.Queued++
	wake(&g.ready)
	return nil
}

func (s *memoryStream) logDead(dl *deadLetter) {
	if dl != nil {
		s.opts.Logger.Logf(logger.WarnLevel, "events: dead-lettered event %s of topic %q (%s) after %d deliveries: over its retry limit, it is not delivered again",
			dl.id, dl.topic, groupLabel(dl.group), dl.deliveries)
	}
}

// takeInflightLocked removes d from the group's events in flight, if it is there.
func (s *memoryStream) takeInflightLocked(g *memGroup, d *delivery) bool {
	if g.inflight[d.rec.seq] != d {
		return false
	}
	delete(g.inflight, d.rec.seq)
	s.stats.InFlight--
	s.stopTimerLocked(d)
	wake(&g.ready) // room in flight
	return true
}

// expire redelivers d if its delivery token is still unacknowledged when its ackWait
// passes.
func (s *memoryStream) expire(g *memGroup, d *delivery, token uint64) {
	s.mu.Lock()
	if s.closed || g.gone || d.token != token || g.inflight[d.rec.seq] != d {
		s.mu.Unlock()
		return
	}
	d.timer = nil // this callback is its last use
	delete(g.inflight, d.rec.seq)
	s.stats.InFlight--
	dl := s.redeliverLocked(g, d)
	s.mu.Unlock()
	s.logDead(dl)
}

// ack acknowledges d's event, whichever of its deliveries the consumer acknowledges: it
// leaves the group for good, even if it was waiting to be delivered again.
func (s *memoryStream) ack(g *memGroup, d *delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || g.gone {
		return nil
	}
	if s.takeInflightLocked(g, d) {
		return nil
	}
	for i, r := range g.retry {
		if r == d {
			g.retry = append(g.retry[:i:i], g.retry[i+1:]...)
			s.stats.Queued--
			break
		}
	}
	return nil
}

// nack redelivers d's event at once, if token is still its latest delivery and it is
// unacknowledged; otherwise it does nothing.
func (s *memoryStream) nack(g *memGroup, d *delivery, token uint64) error {
	s.mu.Lock()
	if s.closed || g.gone || d.token != token || !s.takeInflightLocked(g, d) {
		s.mu.Unlock()
		return nil
	}
	dl := s.redeliverLocked(g, d)
	s.mu.Unlock()
	s.logDead(dl)
	return nil
}

// leave ends a member; the last member of a group takes the group away.
func (s *memoryStream) leave(g *memGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.members--
	if g.members > 0 {
		return
	}
	g.gone = true
	for _, d := range g.inflight {
		s.stopTimerLocked(d)
	}
	s.stats.InFlight -= len(g.inflight)
	s.stats.Queued -= g.queued()
	g.inflight, g.retry, g.replay, g.queue = nil, nil, nil, nil
	wake(&g.room) // publishers waiting for it look again
	wake(&g.ready)
	t := s.topics[g.topic]
	if t == nil {
		return
	}
	if g.name != "" {
		if t.groups[g.name] == g {
			delete(t.groups, g.name)
		}
	} else {
		delete(t.solos, g)
	}
	if t.empty() {
		delete(s.topics, g.topic)
	}
}

// Stats returns the stream's counters.
func (s *memoryStream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close ends every consumer and waits for the stream's goroutines; it returns nil, and
// is idempotent.
func (s *memoryStream) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for _, t := range s.topics {
			for _, g := range t.groups {
				for _, d := range g.inflight {
					s.stopTimerLocked(d)
				}
			}
			for g := range t.solos {
				for _, d := range g.inflight {
					s.stopTimerLocked(d)
				}
			}
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// String returns "memory".
func (s *memoryStream) String() string { return "memory" }
