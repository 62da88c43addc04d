package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
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

// A subscriber's handler finds its broker event in its context, to Ack it itself when
// registered with DisableAutoAck.
func TestEventFromContext(t *testing.T) {
	b := broker.NewMemoryBroker()
	s := testutil.NewServer(t, registry.NewMemoryRegistry(), "acks", nil, server.Broker(b))
	got := make(chan error, 1)
	if err := s.Subscribe(s.NewSubscriber("acked", func(ctx context.Context, msg *testproto.Request) error {
		e, ok := server.EventFromContext(ctx)
		if !ok || e.Topic() != "acked" {
			got <- fmt.Errorf("no event in the context (%v)", ok)
			return nil
		}
		got <- e.Ack()
		return nil
	}, server.DisableAutoAck())); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("acked", &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"name":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, ok := server.EventFromContext(context.Background()); ok {
		t.Fatal("an event in a plain context")
	}
}
