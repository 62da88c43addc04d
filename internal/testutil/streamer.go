package testutil

import (
	"context"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/server"
)

// Streamer is the test stream handler. Its endpoints:
//
//	Streamer.Echo    sends back every message until the client closes its side
//	Streamer.Count   (server streaming) sends Echo{Seq: 1..n}, n = the request's name
//	Streamer.Half    reads until the client closes its side, then sends 10 messages
//	Streamer.Fail    returns errors.BadRequest("streamer", "bad stream")
//	Streamer.Panic   panics
//	Streamer.Wait    blocks until its context ends, which it reports on Ended
//	Streamer.Flood   (server streaming) sends until Send fails, reporting the error on Ended
//	Streamer.Step    (server streaming) sends a message each time Next receives
type Streamer struct {
	Started chan struct{}
	Ended   chan error
	Next    chan struct{}
	Sent    atomic.Int64
}

// Echo echoes.
func (s *Streamer) Echo(ctx context.Context, stream server.Stream) error {
	for {
		var m testproto.Echo
		if err := stream.Recv(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := stream.Send(&m); err != nil {
			return err
		}
	}
}

// Count sends n numbered messages.
func (s *Streamer) Count(ctx context.Context, req *testproto.Request, stream server.Stream) error {
	n, err := strconv.Atoi(req.Name)
	if err != nil {
		return errors.BadRequest("streamer", "name %q is not a count", req.Name)
	}
	for i := 1; i <= n; i++ {
		if err := stream.Send(&testproto.Echo{Seq: int64(i)}); err != nil {
			return err
		}
	}
	return nil
}

// Half reads to the end, then sends 10 messages.
func (s *Streamer) Half(ctx context.Context, stream server.Stream) error {
	n := 0
	for {
		var m testproto.Echo
		err := stream.Recv(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		n++
	}
	for i := 0; i < 10; i++ {
		if err := stream.Send(&testproto.Echo{Seq: int64(n + i)}); err != nil {
			return err
		}
	}
	return nil
}

// Fail fails.
func (s *Streamer) Fail(ctx context.Context, stream server.Stream) error {
	return errors.BadRequest("streamer", "bad stream")
}

// Panic panics.
func (s *Streamer) Panic(ctx context.Context, stream server.Stream) error {
	panic("streamer panics on purpose")
}

// Wait waits for its context.
func (s *Streamer) Wait(ctx context.Context, stream server.Stream) error {
	if s.Started != nil {
		s.Started <- struct{}{}
	}
	<-ctx.Done()
	if s.Ended != nil {
		s.Ended <- ctx.Err()
	}
	return ctx.Err()
}

// Flood sends until it cannot.
func (s *Streamer) Flood(ctx context.Context, req *testproto.Request, stream server.Stream) error {
	payload := make([]byte, 1024)
	for {
		if err := stream.Send(&testproto.Echo{Payload: payload}); err != nil {
			if s.Ended != nil {
				s.Ended <- err
			}
			return err
		}
		s.Sent.Add(1)
	}
}

// Step sends one message per value received on Next, until Next is closed.
func (s *Streamer) Step(ctx context.Context, req *testproto.Request, stream server.Stream) error {
	i := int64(0)
	for range s.Next {
		i++
		if err := stream.Send(&testproto.Response{Message: "step " + strconv.FormatInt(i, 10)}); err != nil {
			return err
		}
	}
	return nil
}
