package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
)

// A message POSTed to the RPC port with a Micro-Topic header (and no endpoint) goes to
// the server's subscribers of the topic, as with Go Micro: curl can trigger them.
func TestEventOnRPCPort(t *testing.T) {
	got := make(chan string, 4)
	s := testutil.NewServer(t, registry.NewMemoryRegistry(), "events", nil)
	if err := s.Subscribe(s.NewSubscriber("greetings", func(ctx context.Context, msg *testproto.Request) error {
		if msg.Name == "nobody" {
			return errors.Forbidden("events", "not %s", msg.Name)
		}
		got <- msg.Name
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	post := func(topic, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Options().Address, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Micro-Topic", topic)
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		return rsp.StatusCode, string(b)
	}
	defer http.DefaultClient.CloseIdleConnections()
	if code, body := post("greetings", `{"name":"frank"}`); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	if name := <-got; name != "frank" {
		t.Fatalf("subscriber got %q", name)
	}
	for _, tc := range []struct {
		topic, body string
		code        int
		detail      string
	}{
		{"greetings", `{"name":7}`, 400, "cannot decode"},
		{"greetings", `{"name":"nobody"}`, 403, "not nobody"},
		{"other", `{}`, 404, "no subscriber of topic other"},
	} {
		code, body := post(tc.topic, tc.body)
		if code != tc.code || !strings.Contains(errors.Parse(body).Detail, tc.detail) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.topic, tc.body, code, body, tc.code, tc.detail)
		}
	}
}
