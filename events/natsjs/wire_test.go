package natsjs

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-b3892490/micro/events"
	"github.com/seed-b3892490/micro/internal/testutil"
)

// TestWireRoundTrip: an event's ID, timestamp and metadata survive the headers, and
// the payload is the message's data untouched.
func TestWireRoundTrip(t *testing.T) {
	ev := events.Event{ID: "id-1", Topic: "a.b", Timestamp: time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)),
		Metadata: map[string]string{"k": "v", "line\nbreak": "tab\there", "": "empty key"}, Payload: []byte("\x00raw")}
	m, err := encodeMsg(&ev)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if strings.ContainsAny(k+v, "\r\n") {
				t.Fatalf("header %q: %q holds a line break", k, v)
			}
		}
	}
	got, err := decodeEvent(m.Subject, m.Header, m.Data, "fallback", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Topic != ev.Topic || !got.Timestamp.Equal(ev.Timestamp) || !maps.Equal(got.Metadata, ev.Metadata) || string(got.Payload) != string(ev.Payload) {
		t.Fatalf("decoded %+v, want %+v", got, ev)
	}
}

// TestDecodeForeignMessages: a message from another publisher (no headers, or bad ones)
// becomes a complete event with the fallbacks, and bad headers are reported.
func TestDecodeForeignMessages(t *testing.T) {
	stored := time.Unix(1700000000, 0)
	ev, err := decodeEvent("s", nats.Header{}, []byte("x"), "S:7", stored)
	if err != nil || ev.ID != "S:7" || !ev.Timestamp.Equal(stored) || ev.Metadata != nil {
		t.Fatalf("no headers: %+v %v", ev, err)
	}
	h := nats.Header{}
	h.Set(headerTimestamp, "yesterday")
	h.Set(headerMetadata, `{"k":1}`)
	ev, err = decodeEvent("s", h, []byte("x"), "S:8", stored)
	if !errors.Is(err, errBadHeader) || !strings.Contains(err.Error(), headerTimestamp) || !strings.Contains(err.Error(), headerMetadata) {
		t.Fatalf("bad headers: %v", err)
	}
	if ev.ID != "S:8" || !ev.Timestamp.Equal(stored) || ev.Metadata != nil || string(ev.Payload) != "x" {
		t.Fatalf("bad headers gave %+v", ev)
	}
}

// FuzzDecodeEvent feeds headers to decodeEvent: it never panics, always returns an
// event of the subject with the payload, and what it accepts encodes back the same.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []struct{ id, ts, md string }{
		{"id", "2024-01-02T03:04:05.000000006Z", `{"k":"v"}`},
		{"", "", ""},
		{"id", "2024-01-02T03:04:05Z", ""},
		{"id", "not a time", `{"k":"v"}`},
		{"id", "2024-13-45T99:99:99Z", `{}`},
		{"id", "", `{"k":1}`},
		{"id", "", `[1,2]`},
		{"id", "", `{"a":"b","a":"c"}`},
		{"id", "", `{"\u0000":"\ud800"}`},
		{"id", "", `null`},
		{"id", "", `{"k":"v"}trailing`},
		{"\xff", "\xff", "\xff"},
		{"id", "0000-01-01T00:00:00Z", `{"k":"` + strings.Repeat("v", 1000) + `"}`},
	} {
		f.Add(seed.id, seed.ts, seed.md, []byte("payload"))
	}
	f.Fuzz(func(t *testing.T, id, ts, md string, data []byte) {
		h := nats.Header{}
		if id != "" {
			h.Set(jetstream.MsgIDHeader, id)
		}
		if ts != "" {
			h.Set(headerTimestamp, ts)
		}
		if md != "" {
			h.Set(headerMetadata, md)
		}
		ev, err := decodeEvent("sub.ject", h, data, "fb", time.Unix(1, 0))
		if ev.Topic != "sub.ject" || string(ev.Payload) != string(data) || ev.ID == "" {
			t.Fatalf("event %+v", ev)
		}
		if err != nil {
			if !errors.Is(err, errBadHeader) {
				t.Fatalf("error %v does not match errBadHeader", err)
			}
			return
		}
		m, err := encodeMsg(&ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeEvent(m.Subject, m.Header, m.Data, "other", time.Time{})
		if err != nil || back.ID != ev.ID || !back.Timestamp.Equal(ev.Timestamp) || !maps.Equal(back.Metadata, ev.Metadata) {
			t.Fatalf("re-decoded %+v %v, want %+v", back, err, ev)
		}
	})
}

// TestNames: topics become valid, distinct stream names; bad topics are refused.
func TestNames(t *testing.T) {
	seen := map[string]string{}
	for _, topic := range []string{"orders", "orders.created", "orders_created", "a-b", "ünï.côdé", strings.Repeat("x.", 300) + "y"} {
		if err := validTopic(topic); err != nil {
			t.Errorf("validTopic(%q): %v", topic, err)
		}
		name := nameOf(topic)
		if strings.ContainsAny(name, ". *>/\\\t") || len(name) > 255 || name == "" {
			t.Errorf("nameOf(%q) = %q: not a valid stream name", topic, name)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share the name %q", topic, other, name)
		}
		seen[name] = topic
	}
	if nameOf("plain_name-1") != "plain_name-1" {
		t.Error("a valid name was changed")
	}
	for _, topic := range []string{"a..b", ".a", "a.", "a.*", "a.>", "a b", "tab\there", strings.Repeat("x", 1025)} {
		if err := validTopic(topic); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("validTopic(%q): %v, want ErrInvalidTopic", topic, err)
		}
	}
}

// TestOptionsValidated: invalid options give ErrInvalidOption before any connection.
func TestOptionsValidated(t *testing.T) {
	for _, o := range []Option{Address(""), RetentionPolicy(3), RetentionPolicy(-1), MaxMsgSize(-1), MaxAge(-time.Second),
		MaxAckPending(0), PublishTimeout(0), DrainTimeout(-1), NkeyConfig("/nonexistent/seed")} {
		if s, err := NewStream(o); !errors.Is(err, events.ErrInvalidOption) || s != nil {
			t.Errorf("NewStream: %v %v, want ErrInvalidOption", s, err)
		}
	}
	o, err := newOptions(nil)
	if err != nil || !o.SyncPublish || o.Address != DefaultAddress || o.MaxAckPending != DefaultMaxAckPending {
		t.Errorf("defaults %+v %v", o, err)
	}
}

// TestUnreachable: a server that does not answer gives ErrUnavailable, quickly.
func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := NewStream(Address("nats://" + testutil.FreeAddr(t)))
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > DefaultConnectTimeout+time.Second {
		t.Fatalf("NewStream to nothing: %v after %s", err, time.Since(start))
	}
}

// TestRetriedPublishStoredOnce: publishing the same message (same ID) twice, as a
// retry after a lost answer does, stores it once.
func TestRetriedPublishStoredOnce(t *testing.T) {
	url := os.Getenv("MICRO_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	es, err := NewStream(Address(url), MaxAge(time.Hour))
	if err != nil {
		testutil.SkipOrFail(t, "NATS with JetStream is not reachable at %s: %v", url, err)
		return
	}
	s := es.(*stream)
	defer s.Close()
	topic := "natsjs.dedupe." + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "_")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := s.ensureStream(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer s.js.DeleteStream(context.Background(), name)
	ev := events.Event{ID: "same-id", Topic: topic, Timestamp: time.Now(), Payload: []byte(`"x"`)}
	for i := 0; i < 3; i++ {
		m, err := encodeMsg(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.publishSync(ctx, m, ev.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("the stream holds %d messages after three publications of one ID, want 1", info.State.Msgs)
	}
}
