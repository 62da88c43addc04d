package breaker_test

import (
	"context"
	"testing"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/wrapper/breaker"
)

// stubClient answers every call at once with err, so that a benchmark measures the
// breaker alone.
type stubClient struct {
	client.Client
	err error
}

func (s *stubClient) Call(ctx context.Context, req client.Request, rsp interface{}, opts ...client.CallOption) error {
	return s.err
}

type stubRequest struct{ service string }

func (r stubRequest) Service() string     { return r.service }
func (r stubRequest) Method() string      { return "Svc.Call" }
func (r stubRequest) Endpoint() string    { return "Svc.Call" }
func (r stubRequest) ContentType() string { return "application/json" }
func (r stubRequest) Body() interface{}   { return nil }
func (r stubRequest) Codec() codec.Writer { return nil }
func (r stubRequest) Stream() bool        { return false }

func benchClient(b *testing.B, err error, opts ...breaker.Option) client.Client {
	br, berr := breaker.New(opts...)
	if berr != nil {
		b.Fatal(berr)
	}
	return br.Wrap(&stubClient{err: err})
}

// BenchmarkCallClosed is the overhead of a closed circuit on a successful call.
func BenchmarkCallClosed(b *testing.B) {
	c := benchClient(b, nil)
	req := client.Request(stubRequest{"svc"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Call(ctx, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallClosedParallel is the same from every CPU on one circuit.
func BenchmarkCallClosedParallel(b *testing.B) {
	c := benchClient(b, nil)
	req := client.Request(stubRequest{"svc"})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Call(ctx, req, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCallClosed4xx is a closed circuit on calls that fail with a 404 (not a
// failure of the service).
func BenchmarkCallClosed4xx(b *testing.B) {
	c := benchClient(b, errors.NotFound("svc", "no such thing"))
	req := client.Request(stubRequest{"svc"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Call(ctx, req, nil)
	}
}

// BenchmarkCallOpen is a call refused by an open circuit.
func BenchmarkCallOpen(b *testing.B) {
	c := benchClient(b, errors.ServiceUnavailable("svc", "down"), breaker.WithConsecutiveFailures(1))
	req := client.Request(stubRequest{"svc"})
	ctx := context.Background()
	_ = c.Call(ctx, req, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Call(ctx, req, nil); errors.Code(err) != 503 {
			b.Fatal(err)
		}
	}
}
