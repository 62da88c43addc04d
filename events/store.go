package events

import (
	"bytes"
	"fmt"
	"maps"
	"sync"
	"time"
)

// memoryStore keeps events in maps, per topic in write order.
type memoryStore struct {
	opts   StoreOptions
	now    func() time.Time
	mu     sync.Mutex
	topics map[string][]storedEvent
	count  int // events held, expired ones included until they are swept
}

type storedEvent struct {
	event   Event     // the store's own copy; never handed out
	expires time.Time // zero: never
}

// NewStore returns a Store that keeps events in memory, in this process only; a Store
// on a store backend (files, a database) comes when micro has a store package.
//
// Write keeps a copy of the event, under its topic, until its TTL (WithTTL) passes;
// without a TTL for as long as the store lives. Read returns copies of a topic's
// unexpired events in the order they were written, after ReadOffset of them and at most
// ReadLimit. Expired events are removed as the store is used. The store holds at most
// WithMaxEvents events if that is given, otherwise as many as are written. It is safe
// for concurrent use.
func NewStore(opts ...StoreOption) Store {
	var o StoreOptions
	for _, f := range opts {
		f(&o)
	}
	return &memoryStore{opts: o, now: time.Now, topics: make(map[string][]storedEvent)}
}

// Write stores a copy of event. It returns ErrMissingEvent for a nil event,
// ErrMissingTopic for one without a topic, and ErrStoreFull when the store holds its
// maximum number of unexpired events.
func (s *memoryStore) Write(event *Event, opts ...WriteOption) error {
	if event == nil {
		return ErrMissingEvent
	}
	if event.Topic == "" {
		return ErrMissingTopic
	}
	var o WriteOptions
	for _, f := range opts {
		f(&o)
	}
	se := storedEvent{event: copyEvent(event)}
	now := s.now()
	if o.TTL > 0 {
		se.expires = now.Add(o.TTL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxEvents > 0 && s.count >= s.opts.MaxEvents {
		s.sweepLocked(now)
		if s.count >= s.opts.MaxEvents {
			return fmt.Errorf("%w: %d events", ErrStoreFull, s.count)
		}
	}
	s.topics[event.Topic] = append(s.topics[event.Topic], se)
	s.count++
	return nil
}

// Read returns copies of topic's unexpired events, oldest first, paged by ReadOffset
// and ReadLimit. A topic nothing was written to gives no events and no error.
func (s *memoryStore) Read(topic string, opts ...ReadOption) ([]*Event, error) {
	if topic == "" {
		return nil, ErrMissingTopic
	}
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.liveLocked(topic, now)
	if uint64(o.Offset) >= uint64(len(list)) {
		return nil, nil
	}
	list = list[o.Offset:]
	if o.Limit > 0 && uint64(o.Limit) < uint64(len(list)) {
		list = list[:o.Limit]
	}
	out := make([]*Event, len(list))
	for i := range list {
		e := copyEvent(&list[i].event)
		out[i] = &e
	}
	return out, nil
}

// liveLocked drops topic's expired events and returns the others.
func (s *memoryStore) liveLocked(topic string, now time.Time) []storedEvent {
	list := s.topics[topic]
	kept := list[:0]
	for _, se := range list {
		if se.expires.IsZero() || now.Before(se.expires) {
			kept = append(kept, se)
		}
	}
	clear(list[len(kept):]) // let the dropped events go
	s.count -= len(list) - len(kept)
	if len(kept) == 0 {
		delete(s.topics, topic)
		return nil
	}
	s.topics[topic] = kept
	return kept
}

// sweepLocked drops every expired event.
func (s *memoryStore) sweepLocked(now time.Time) {
	for topic := range s.topics {
		s.liveLocked(topic, now)
	}
}

// copyEvent returns a copy of e sharing nothing mutable with it, without its ack
// functions.
func copyEvent(e *Event) Event {
	return Event{
		ID:        e.ID,
		Topic:     e.Topic,
		Timestamp: e.Timestamp,
		Metadata:  maps.Clone(e.Metadata),
		Payload:   bytes.Clone(e.Payload),
	}
}
