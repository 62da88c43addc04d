// Package events is durable-style messaging: a Stream publishes events to topics and
// hands them to consumers over channels, with consumer groups, replay from a point in
// time, and acknowledgements with redelivery; a Store keeps events to read back later.
//
// The API follows Go Micro v5's events package. NewStream returns the in-process memory
// stream described there; the JetStream stream lives in events/natsjs. Both pass the
// same conformance suite (events/eventstest).
//
// # Delivery
//
// Publish encodes a message as JSON (a []byte is taken as it is), gives the event a
// unique ID and the time of the call as Timestamp (WithTimestamp overrides it), and
// stores it in the stream. Consume returns a channel of the topic's events published
// from then on (WithOffset: also those retained since a time). Consumers that share a
// group (WithGroup) share the topic's events, each event going to one of them; every
// consumer without a group receives every event.
//
// By default events are acknowledged as they are handed over (at most once: an event
// the consumer has received is never redelivered). With WithAutoAck(false, ackWait) the
// consumer acknowledges each event with Event.Ack: an event neither acknowledged nor
// negatively acknowledged within ackWait of its delivery is delivered again, Event.Nack
// asks for a redelivery at once, and WithRetryLimit(n) gives an event up after n + 1
// deliveries (it is then dead-lettered: logged at warning level and counted in
// Stats.DeadLettered, never delivered again). That is at-least-once delivery: a
// consumer must tolerate seeing an event twice.
//
// # Ending
//
// A consumer's channel is closed when its context (WithContext) ends or the stream is
// closed: the streams of this module also implement io.Closer. Every goroutine a
// stream starts belongs to a consumer or to the stream and returns by then.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The errors of the package, matched with errors.Is.
var (
	// ErrMissingTopic is returned by Publish, Consume, Read and Write for an empty topic.
	ErrMissingTopic = errors.New("events: missing topic")
	// ErrEncodingMessage is returned by Publish when the message cannot be encoded as
	// JSON; the encoder's error is wrapped with it.
	ErrEncodingMessage = errors.New("events: error encoding message")
	// ErrDecodingMessage is returned by Event.Unmarshal when the payload does not decode
	// into the value given; the decoder's error is wrapped with it.
	ErrDecodingMessage = errors.New("events: error decoding message")
	// ErrClosed is returned by calls on a stream after Close.
	ErrClosed = errors.New("events: stream closed")
	// ErrFull is returned by the memory stream's Publish when a consumer's queue stayed
	// full for the whole publish timeout: the event was queued for no consumer.
	ErrFull = errors.New("events: consumer queue full")
	// ErrInvalidOption is returned for an option out of its range (a negative size or
	// duration, for example).
	ErrInvalidOption = errors.New("events: invalid option")
	// ErrNoNack is returned by Event.Nack for an event that cannot be redelivered: one
	// acknowledged on delivery (auto ack, the default), or one without a NackFunc.
	ErrNoNack = errors.New("events: cannot nack an event acknowledged on delivery")
	// ErrMissingEvent is returned by Store.Write for a nil event.
	ErrMissingEvent = errors.New("events: missing event")
	// ErrStoreFull is returned by the memory store's Write when it already holds its
	// maximum number of events (WithMaxEvents).
	ErrStoreFull = errors.New("events: store full")
)

// Stream publishes events and hands them to consumers. Implementations are safe for
// concurrent use.
type Stream interface {
	// Publish stores msg as an event of topic.
	Publish(topic string, msg interface{}, opts ...PublishOption) error
	// Consume returns a channel of the topic's events; it is closed when consuming ends.
	Consume(topic string, opts ...ConsumeOption) (<-chan Event, error)
}

// Store keeps events to be read back by topic. Implementations are safe for concurrent
// use.
type Store interface {
	// Read returns the topic's events, oldest first.
	Read(topic string, opts ...ReadOption) ([]*Event, error)
	// Write stores a copy of event under its topic.
	Write(event *Event, opts ...WriteOption) error
}

// Reporter is implemented by the streams of this module (the memory stream and
// natsjs's): Stats returns their counters, a consistent snapshot of each.
type Reporter interface {
	Stats() Stats
}

// Stats are a stream's counters since it was made. Fields a stream cannot know are 0.
type Stats struct {
	// Published counts Publish calls that returned nil.
	Published uint64
	// Rejected counts events whose publication failed after they were encoded: Publish
	// returned an error (a full queue, a server error or timeout), or, for a stream
	// that publishes asynchronously, the server refused the event later.
	Rejected uint64
	// Delivered counts events handed to consumers, redeliveries included.
	Delivered uint64
	// Redelivered counts the deliveries of Delivered that were not an event's first.
	Redelivered uint64
	// DeadLettered counts events given up after their consumer's retry limit.
	DeadLettered uint64
	// Queued is the number of events waiting in consumer queues now (memory stream).
	Queued int
	// InFlight is the number of events handed to consumers with manual acknowledgement
	// and neither acknowledged nor given up yet.
	InFlight int
}

// AckFunc acknowledges an event: it will not be delivered again.
type AckFunc func() error

// NackFunc negatively acknowledges an event: it is delivered again soon.
type NackFunc func() error

// Event is one event of a topic, as published and as delivered. A delivered Event is
// the consumer's own copy: changing it changes no other delivery.
type Event struct {
	// ID identifies the event uniquely; Publish sets it.
	ID string
	// Topic is the topic the event was published to.
	Topic string
	// Timestamp is when the event was published, unless the publisher chose it with
	// WithTimestamp.
	Timestamp time.Time
	// Metadata is the publisher's, from WithMetadata; nil if none was given.
	Metadata map[string]string
	// Payload is the encoded message: JSON, or the bytes published.
	Payload []byte

	ackFunc  AckFunc
	nackFunc NackFunc
}

// Unmarshal decodes the payload, as JSON, into v. A payload that does not decode gives
// an error matching ErrDecodingMessage and naming the event; consuming goes on.
func (e *Event) Unmarshal(v interface{}) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("%w: event %s of topic %q (%d bytes) into %T: %w", ErrDecodingMessage, e.ID, e.Topic, len(e.Payload), v, err)
	}
	return nil
}

// Ack acknowledges the event, so that it is not delivered again. An event consumed with
// auto ack (the default) was acknowledged on delivery: Ack does nothing and returns
// nil, as it does for an event without an AckFunc. Acknowledging twice is harmless.
func (e *Event) Ack() error {
	if e.ackFunc == nil {
		return nil
	}
	return e.ackFunc()
}

// SetAckFunc sets the function Ack calls. Streams set it on the events they deliver.
func (e *Event) SetAckFunc(f AckFunc) { e.ackFunc = f }

// Nack asks for the event to be delivered again at once (to this consumer or another
// member of its group), counting as a delivery towards the retry limit. It returns
// ErrNoNack for an event acknowledged on delivery or without a NackFunc.
func (e *Event) Nack() error {
	if e.nackFunc == nil {
		return ErrNoNack
	}
	return e.nackFunc()
}

// SetNackFunc sets the function Nack calls. Streams set it on the events they deliver.
func (e *Event) SetNackFunc(f NackFunc) { e.nackFunc = f }

// Encode returns the payload Publish stores for msg: msg itself if it is a []byte,
// otherwise its JSON encoding. An error matches ErrEncodingMessage. Streams use it so
// that every implementation encodes alike.
func Encode(msg interface{}) ([]byte, error) {
	if b, ok := msg.([]byte); ok {
		return b, nil
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrEncodingMessage, msg, err)
	}
	return b, nil
}

// DefaultStream is the stream of the package-level Publish and Consume, and DefaultStore
// the store of Read. Both are nil unless set, in which case those functions use a memory
// stream (NewStream()) and a memory store (NewStore()) made on first use and never
// closed. Set them, if at all, before anything uses them: they are read without a lock.
var (
	DefaultStream Stream
	DefaultStore  Store
)

var (
	lazyStreamOnce sync.Once
	lazyStream     Stream
	lazyStoreOnce  sync.Once
	lazyStore      Store
)

func defaultStream() Stream {
	if DefaultStream != nil {
		return DefaultStream
	}
	lazyStreamOnce.Do(func() {
		s, _ := NewStream() // default options are valid
		lazyStream = s
	})
	return lazyStream
}

func defaultStore() Store {
	if DefaultStore != nil {
		return DefaultStore
	}
	lazyStoreOnce.Do(func() { lazyStore = NewStore() })
	return lazyStore
}

// Publish publishes msg to topic on DefaultStream (see Stream.Publish).
func Publish(topic string, msg interface{}, opts ...PublishOption) error {
	return defaultStream().Publish(topic, msg, opts...)
}

// Consume consumes topic from DefaultStream (see Stream.Consume).
func Consume(topic string, opts ...ConsumeOption) (<-chan Event, error) {
	return defaultStream().Consume(topic, opts...)
}

// Read reads topic's events from DefaultStore (see Store.Read).
func Read(topic string, opts ...ReadOption) ([]*Event, error) {
	return defaultStore().Read(topic, opts...)
}
