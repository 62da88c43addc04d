package breaker

import (
	"context"
	"fmt"
	"io"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
)

// NewClientWrapper returns a client.Wrapper that guards the calls of the client it wraps
// with a new Breaker configured by opts; use it with client.Wrap or micro.WrapClient.
// With an invalid option every Call and Stream of the wrapped client fails with a 500
// *errors.Error that wraps ErrInvalidOption (use New to get the error at once).
func NewClientWrapper(opts ...Option) client.Wrapper {
	b, err := New(opts...)
	if err != nil {
		return func(c client.Client) client.Client { return &invalidClient{Client: c, err: err} }
	}
	return b.Wrap
}

// Wrap returns c guarded by b: Call and Stream pass through the circuit of their
// request's service, everything else goes straight to c. Its signature is that of a
// client.Wrapper, so client.Wrap(b.Wrap) adds it to a client. The returned client is
// safe for concurrent use if c is; its Close closes c when c has a Close method.
func (b *Breaker) Wrap(c client.Client) client.Client { return &breakerClient{Client: c, b: b} }

type breakerClient struct {
	client.Client
	b *Breaker
}

// Call passes through the circuit of req's service.
func (c *breakerClient) Call(ctx context.Context, req client.Request, rsp interface{}, opts ...client.CallOption) error {
	t, err := c.b.allow(req.Service())
	if err != nil {
		return err
	}
	err = c.Client.Call(ctx, req, rsp, opts...)
	c.b.done(t, err)
	return err
}

// Stream passes the opening of a stream through the circuit of req's service.
func (c *breakerClient) Stream(ctx context.Context, req client.Request, opts ...client.CallOption) (client.Stream, error) {
	t, err := c.b.allow(req.Service())
	if err != nil {
		return nil, err
	}
	st, err := c.Client.Stream(ctx, req, opts...)
	c.b.done(t, err)
	return st, err
}

// Close closes the wrapped client when it has a Close method (the RPC client does: it
// stops the selector it made).
func (c *breakerClient) Close() error { return closeClient(c.Client) }

// invalidClient is the client of a NewClientWrapper given an invalid option.
type invalidClient struct {
	client.Client
	err error
}

func (c *invalidClient) Call(ctx context.Context, req client.Request, rsp interface{}, opts ...client.CallOption) error {
	return c.error()
}

func (c *invalidClient) Stream(ctx context.Context, req client.Request, opts ...client.CallOption) (client.Stream, error) {
	return nil, c.error()
}

func (c *invalidClient) error() error {
	return errors.Wrap(c.err, ErrorID, 500, fmt.Sprintf("circuit breaker not configured: %v", c.err))
}

func (c *invalidClient) Close() error { return closeClient(c.Client) }

func closeClient(c client.Client) error {
	if cl, ok := c.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
