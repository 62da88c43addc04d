package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/seed-b3892490/micro/internal/wire"
)

// streamWindow is the credit, in body bytes, each side of a native stream grants the
// other: a writer that has this much unread by its peer waits in Send.
const streamWindow = 256 << 10

// slabSize is the size of the chunks bodySlab carves bodies from, and slabMax the
// largest body it carves: a larger one gets its own allocation.
const (
	slabSize = 4 << 10
	slabMax  = 512
)

// bodySlab copies small bodies out of a connection's read buffer into shared chunks, so
// that most bodies cost no allocation of their own. A body keeps its whole chunk alive;
// each body's capacity ends with it, so appending to one reallocates instead of writing
// over the next. The connection's reading goroutine is its only user.
type bodySlab struct{ chunk []byte }

// copy returns a copy of b that does not alias the read buffer.
func (s *bodySlab) copy(b []byte) []byte {
	if len(b) > slabMax {
		return append([]byte(nil), b...)
	}
	if cap(s.chunk)-len(s.chunk) < len(b) {
		s.chunk = make([]byte, 0, slabSize)
	}
	n := len(s.chunk)
	s.chunk = append(s.chunk, b...)
	return s.chunk[n:len(s.chunk):len(s.chunk)]
}

// errSkipRead wraps the read errors of skipPayload: the connection failed, the frame was
// not malformed.
var errSkipRead = errors.New("transport: reading past a frame")

// skipPayload reads past the payload of a frame that is not taken (length bytes), without
// holding it in memory. Its header block is decoded all the same: the peer's encoder
// added that block's pairs to its table, and dec must follow, or later blocks would name
// pairs it does not have (or the wrong ones). Only the block, at most maxHeader bytes, is
// read into memory (buf is room for it, returned for reuse). decoded, when set, is told
// the body's length once the block is decoded, before the body is read past. An error
// wrapping errSkipRead is a read error; any other is a malformed or too large block.
func skipPayload(br *bufio.Reader, dec *wire.Decoder, length, maxHeader uint32, buf []byte, decoded func(body uint32)) ([]byte, error) {
	head := min(length, maxHeader+1)
	// The block is usually short: it is decoded from the read buffer, from what is
	// there already, more only while it is cut short (a peer may send the rest of the
	// frame only later). A block longer than the buffer is read out of it.
	most := min(head, uint32(br.Size()))
	n := min(max(uint32(br.Buffered()), 1), most)
	var block, rest []byte
	var err error
	for {
		if block, err = br.Peek(int(n)); err != nil {
			return buf, fmt.Errorf("%w: %w", errSkipRead, err)
		}
		_, rest, err = dec.Decode(block, nil)
		if !errors.Is(err, wire.ErrTruncated) || n == most {
			break
		}
		n = min(max(2*n, uint32(br.Buffered())), most)
	}
	read := uint32(0)
	if errors.Is(err, wire.ErrTruncated) && uint32(len(block)) < head {
		if buf, err = wire.ReadPayload(br, head, buf[:0]); err != nil {
			return nil, fmt.Errorf("%w: %w", errSkipRead, err)
		}
		block, read = buf, head
		_, rest, err = dec.Decode(block, nil)
	}
	if err != nil {
		return buf, err
	}
	if decoded != nil {
		decoded(length - uint32(len(block)-len(rest)))
	}
	if err := wire.Discard(br, length-read); err != nil {
		return buf, fmt.Errorf("%w: %w", errSkipRead, err)
	}
	return buf, nil
}

// inMsg is a message received on a native stream.
type inMsg struct {
	hdr  wire.Fields
	body []byte
	end  bool
}

// inbox queues what a native stream receives, for its Recv. The reader goroutine of the
// connection pushes; Recv pops, granting the peer credit for what it took.
type inbox struct {
	mu       sync.Mutex
	msgs     []inMsg
	head     int
	buffered int   // body bytes queued
	ended    bool  // the peer sent its last message
	err      error // the stream broke: returned once the queue is empty
	aborted  error // returned at once, queued messages or not
	signal   chan struct{}
	// splitEnd: a last message with a body is a message, then the end (the server side,
	// where a client's last message may carry one); otherwise the last frame is the end
	// itself, its headers and body describing it (the client side: errors).
	splitEnd bool
}

func (b *inbox) init() { b.signal = make(chan struct{}, 1) }

func (b *inbox) notify() {
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// push queues m; it reports false when the peer overran its credit.
func (b *inbox) push(m inMsg, limit int) bool {
	b.mu.Lock()
	if b.ended || b.err != nil {
		b.mu.Unlock()
		return true // late frames of a finished stream are dropped
	}
	b.buffered += len(m.body)
	if b.buffered > limit {
		b.mu.Unlock()
		return false
	}
	if m.end {
		b.ended = true
		if b.splitEnd && len(m.body) > 0 {
			// the message that half-closed, then the end (with the frame's headers)
			b.msgs = append(b.msgs, inMsg{body: m.body})
			m = inMsg{hdr: m.hdr, end: true}
		}
	}
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.notify()
	return true
}

// fail ends the queue with err once what is queued has been read.
func (b *inbox) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.notify()
}

// abort makes pop return err from now on, even with messages queued.
func (b *inbox) abort(err error) {
	b.mu.Lock()
	if b.aborted == nil {
		b.aborted = err
	}
	b.mu.Unlock()
	b.notify()
}

// pop returns the next message; ok is false with the error that ended the stream, or
// io.EOF-style end (err nil, end true). done aborts the wait, and so does ctx; a
// receiver that has neither (abort ends its wait) waits on one channel, not a select.
func (b *inbox) pop(ctx context.Context, done <-chan struct{}) (m inMsg, err error, ok bool) {
	for {
		b.mu.Lock()
		if b.aborted != nil {
			err = b.aborted
			b.mu.Unlock()
			return m, err, false
		}
		if b.head < len(b.msgs) {
			m = b.msgs[b.head]
			b.msgs[b.head] = inMsg{}
			b.head++
			if b.head == len(b.msgs) {
				b.msgs, b.head = b.msgs[:0], 0
			}
			b.buffered -= len(m.body)
			b.mu.Unlock()
			return m, nil, true
		}
		if b.err != nil {
			err = b.err
			b.mu.Unlock()
			return m, err, false
		}
		b.mu.Unlock()
		var ctxDone <-chan struct{}
		if ctx != nil {
			ctxDone = ctx.Done()
		}
		if ctxDone == nil && done == nil {
			<-b.signal
			continue
		}
		select {
		case <-b.signal:
		case <-ctxDone:
			return m, ctx.Err(), false
		case <-done:
			return m, ErrClosed, false
		}
	}
}

// credit is the send side of a native stream's flow control.
type credit struct {
	mu     sync.Mutex
	avail  int
	closed bool
	signal chan struct{}
}

func (c *credit) init() {
	c.avail = streamWindow
	c.signal = make(chan struct{}, 1)
}

func (c *credit) add(n int) {
	c.mu.Lock()
	c.avail += n
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *credit) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// take waits until n bytes may be sent (a message larger than the window goes once the
// peer has read everything before it), then takes them. It returns false when the stream
// closed or ctx ended first.
func (c *credit) take(ctx context.Context, n int) (bool, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return false, nil
		}
		if c.avail >= n || c.avail >= streamWindow {
			c.avail -= n
			c.mu.Unlock()
			return true, nil
		}
		c.mu.Unlock()
		select {
		case <-c.signal:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// fieldsMap turns decoded fields into a message header map.
func fieldsMap(f wire.Fields, extra int) map[string]string {
	m := make(map[string]string, len(f)+extra)
	for _, kv := range f {
		m[kv.Key] = kv.Value
	}
	return m
}
