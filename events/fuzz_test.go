package events_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/seed-b3892490/micro/events"
)

// FuzzUnmarshal feeds payloads to Event.Unmarshal: it never panics, and every failure
// matches ErrDecodingMessage; what Encode produces decodes back.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"Name":"a","N":1}`, `{"Name":7}`, `{not json`, ``, `null`, `[1,2,3]`, `"a string"`,
		`{"N":1e400}`, `{"Name":"\u0000\ud800"}`, "\xff\xfe", `{"Name":"a","N":1}garbage`, `{"a":{"b":{"c":[[[[]]]]}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev := events.Event{ID: "id", Topic: "t", Payload: payload}
		var v struct {
			Name string
			N    int
		}
		if err := ev.Unmarshal(&v); err != nil {
			if !errors.Is(err, events.ErrDecodingMessage) {
				t.Fatalf("error %v does not match ErrDecodingMessage", err)
			}
			return
		}
		b, err := events.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Name string
			N    int
		}
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Fatalf("re-encoded %q: %+v %v, want %+v", b, back, err, v)
		}
	})
}
