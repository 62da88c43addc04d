package broker

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHTTPReceiver feeds arbitrary bodies to the HTTP broker's receiver: it answers
// every one with a status (never a panic), runs the handler only for a decodable
// envelope of the subscription's topic, and hands it the body the envelope carried.
func FuzzHTTPReceiver(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `hello`,
		`{"Header":{"Micro-Topic":"fz"},"Body":"aGVsbG8="}`,
		`{"Header":{"Micro-Topic":"fz"}}`,
		`{"Header":{"Micro-Topic":"other"},"Body":""}`,
		`{"Header":{"Micro-Topic":"fz","Content-Type":"application/json"},"Body":"e30="}`,
		`{"Header":{"Micro-Topic":1},"Body":"x"}`,
		`{"Header":null,"Body":null}`,
		`{"Header":{"Micro-Topic":"fz"},"Body":"!!"}`,
		"{\"Header\":{\"Micro-Topic\":\"fz\\u0000\"}}",
	} {
		f.Add([]byte(seed))
	}
	h := NewHttpBroker().(*httpBroker)
	var got []byte
	ran := 0
	sub := &httpSubscriber{b: h, topic: "fz", handler: func(e Event) error {
		ran++
		got = e.Message().Body
		return nil
	}}
	h.subs["fz-1"] = sub
	f.Fuzz(func(t *testing.T, body []byte) {
		ran, got = 0, nil
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/?id=fz-1", bytes.NewReader(body))
		h.serveHTTP(w, r)
		env, err := decodeEnvelope(body)
		switch {
		case err != nil:
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("undecodable body answered %d", w.Code)
			}
			if ran != 0 {
				t.Fatal("handler ran for an undecodable body")
			}
		case env.Header[topicHeader] != "fz":
			if w.Code != http.StatusNotFound || ran != 0 {
				t.Fatalf("another topic answered %d, handler ran %d times", w.Code, ran)
			}
		default:
			if w.Code != http.StatusOK || ran != 1 || !bytes.Equal(got, env.Body) {
				t.Fatalf("a good delivery answered %d, handler ran %d times, body %q want %q", w.Code, ran, got, env.Body)
			}
		}
	})
}
