package natsjs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-b3892490/micro/events"
)

// How an event travels: the payload is the message's data, untouched, so that other
// NATS clients see it as published; the rest is in headers.
const (
	// headerTimestamp holds the event's Timestamp, RFC 3339 with nanoseconds, in UTC.
	headerTimestamp = "Micro-Event-Timestamp"
	// headerMetadata holds the event's metadata as a JSON object of strings; absent
	// when there is none. JSON escapes control characters, so the value is one line.
	headerMetadata = "Micro-Event-Metadata"
	// The ID is in jetstream.MsgIDHeader (Nats-Msg-Id), which the server uses to drop
	// a publication it already stored: a retried Publish is stored once.
)

// maxMetadataHeader bounds the metadata header a consumer decodes.
const maxMetadataHeader = 1 << 20

// encodeMsg returns the message for ev.
func encodeMsg(ev *events.Event) (*nats.Msg, error) {
	m := nats.NewMsg(ev.Topic)
	m.Data = ev.Payload
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	m.Header.Set(headerTimestamp, ev.Timestamp.UTC().Format(time.RFC3339Nano))
	if len(ev.Metadata) > 0 {
		b, err := json.Marshal(ev.Metadata)
		if err != nil { // cannot happen for a map of strings
			return nil, fmt.Errorf("%w: metadata: %w", events.ErrEncodingMessage, err)
		}
		m.Header.Set(headerMetadata, string(b))
	}
	return m, nil
}

// errBadHeader is wrapped by decodeEvent's errors.
var errBadHeader = errors.New("natsjs: undecodable event header")

// decodeEvent returns the event of a message: its subject, data and headers, with
// fallbacks for what the headers lack (a message from another publisher): fallbackID
// for the ID, stored (the server's time) for the Timestamp. A header that does not
// decode is left out and reported in the error, which matches errBadHeader; the event
// is complete either way.
func decodeEvent(subject string, h nats.Header, data []byte, fallbackID string, stored time.Time) (events.Event, error) {
	ev := events.Event{Topic: subject, Payload: data, ID: fallbackID, Timestamp: stored}
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		ev.ID = id
	}
	var errs []string
	if v := h.Get(headerTimestamp); v != "" {
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q: %v", headerTimestamp, truncate(v), err))
		} else {
			ev.Timestamp = ts
		}
	}
	if v := h.Get(headerMetadata); v != "" {
		var md map[string]string
		switch {
		case len(v) > maxMetadataHeader:
			errs = append(errs, fmt.Sprintf("%s of %d bytes: over %d", headerMetadata, len(v), maxMetadataHeader))
		default:
			if err := json.Unmarshal([]byte(v), &md); err != nil {
				errs = append(errs, fmt.Sprintf("%s %q: %v", headerMetadata, truncate(v), err))
			} else if len(md) > 0 {
				ev.Metadata = md
			}
		}
	}
	if len(errs) > 0 {
		return ev, fmt.Errorf("%w: event %s of %q: %s", errBadHeader, ev.ID, subject, strings.Join(errs, "; "))
	}
	return ev, nil
}

// truncate shortens a header value for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// validTopic reports whether topic can be a stream's subject: NATS tokens separated by
// dots, without wildcards or white space.
func validTopic(topic string) error {
	if len(topic) > 1024 {
		return fmt.Errorf("%w: natsjs: topic of %d bytes, over 1024", errInvalidTopic, len(topic))
	}
	for _, tok := range strings.Split(topic, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n\f\v\x00") {
			return fmt.Errorf("%w: natsjs: topic %q: want NATS subject tokens separated by dots, without wildcards or white space", errInvalidTopic, truncate(topic))
		}
	}
	return nil
}

// nameOf turns a topic or group into a valid stream or consumer name: characters a name
// cannot hold become '_', and then a hash of the original is appended so that distinct
// originals never share a name.
func nameOf(s string) string {
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if mapped == s && len(s) <= 200 {
		return s
	}
	if len(mapped) > 200 {
		mapped = mapped[:200]
	}
	return fmt.Sprintf("%s_%016x", mapped, fnv64(s))
}

// fnv64 is FNV-1a, 64 bits.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
