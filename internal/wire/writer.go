package wire

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// maxBatch is how many bytes may wait for the connection before writers block; it bounds
// the memory a peer that reads slowly can make a writer hold.
const maxBatch = 1 << 20

// Writer batches frames onto a connection: a writer appends its frames to a shared
// buffer and, when no write is in progress, writes the buffer itself; frames appended
// while a write is in progress go out with the next one. Under load many frames share one
// write syscall; alone, a frame is written at once.
type Writer struct {
	conn    net.Conn
	timeout time.Duration

	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	spare    []byte
	flushing bool
	held     bool // Hold: frames wait for Release
	err      error
	onError  func(error)
	stop     time.Time // set by WriteNow: every write ends by then

	// Enc encodes header blocks in wire order: use it between Begin and Commit only.
	Enc Encoder
	// Busy, when set, reports whether other writers are likely to commit soon; a
	// writer about to write then yields once first, to batch their frames with its own.
	Busy func() bool
}

// NewWriter returns a Writer on conn. timeout bounds each write (0: none); onError is
// called once, from the writing goroutine, with the first write error.
func NewWriter(conn net.Conn, timeout time.Duration, onError func(error)) *Writer {
	w := &Writer{conn: conn, timeout: timeout, onError: onError, buf: make([]byte, 0, 4096), spare: make([]byte, 0, 4096)}
	w.cond.L = &w.mu
	return w
}

// Begin locks the writer and returns the buffer to append frames to; Commit hands it back.
// It returns the writer's error instead (unlocked) once a write has failed.
func (w *Writer) Begin() ([]byte, error) {
	w.mu.Lock()
	for w.err == nil && w.flushing && len(w.buf) >= maxBatch {
		w.cond.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return nil, err
	}
	return w.buf, nil
}

// NotWrittenError is a Commit failure of a write that sent none of its bytes: the
// frames it carried never left this process.
type NotWrittenError struct{ Err error }

func (e *NotWrittenError) Error() string { return e.Err.Error() }
func (e *NotWrittenError) Unwrap() error { return e.Err }

// Commit stores buf (what Begin returned, with frames appended), unlocks, and writes
// what is buffered unless another goroutine is writing. The error is that of the write
// that carried the caller's frames (a *NotWrittenError when none of it was written); a
// caller whose frames another goroutine writes gets nil.
func (w *Writer) Commit(buf []byte) error {
	w.buf = buf
	if w.flushing || w.held && len(w.buf) < maxBatch {
		w.mu.Unlock()
		return nil // written by the goroutine writing, or at Release
	}
	return w.commitLocked() // (a hold keeps at most maxBatch bytes back)
}

// commitLocked writes what is buffered, as the one goroutine writing (mu held; it
// returns with mu released).
func (w *Writer) commitLocked() error {
	w.flushing = true
	if w.Busy != nil && w.Busy() {
		// Other calls are running on the connection: let them append their frames
		// before this write, so that one syscall carries many.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	var first error
	firstDone := false
	for len(w.buf) > 0 && w.err == nil {
		out, stop := w.buf, w.stop
		w.buf = w.spare[:0]
		w.mu.Unlock()
		w.cond.Broadcast()
		switch {
		case !stop.IsZero():
			_ = w.conn.SetWriteDeadline(stop)
		case w.timeout > 0:
			_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		}
		n, err := w.conn.Write(out)
		if !firstDone {
			firstDone = true
			if err != nil && n == 0 {
				first = &NotWrittenError{err}
			} else {
				first = err
			}
		}
		if cap(out) > maxBatch {
			out = make([]byte, 0, 4096) // do not keep a burst's buffer forever
		}
		w.mu.Lock()
		w.spare = out[:0]
		if err != nil && w.err == nil {
			w.err = err
			w.mu.Unlock()
			w.cond.Broadcast()
			if w.onError != nil {
				w.onError(err)
			}
			w.mu.Lock()
		}
	}
	if !firstDone && w.err != nil {
		first = &NotWrittenError{w.err} // the writer had failed: nothing was written
	}
	w.flushing = false
	w.mu.Unlock()
	w.cond.Broadcast()
	return first
}

// Hold makes committed frames wait in the buffer until Release: a reader that has more
// requests buffered, whose replies will come at once, holds the writer while it reads
// them, and their replies share one write. At most 1 MiB waits: the Commit that passes
// it writes.
func (w *Writer) Hold() {
	w.mu.Lock()
	w.held = true
	w.mu.Unlock()
}

// Release ends a Hold, writing what waits (unless another goroutine is writing, which
// writes it too). Its error is that write's, as Commit's.
func (w *Writer) Release() error {
	w.mu.Lock()
	if !w.held {
		w.mu.Unlock()
		return nil
	}
	w.held = false
	if len(w.buf) == 0 || w.err != nil || w.flushing {
		w.mu.Unlock()
		return nil // nothing waits, or the goroutine writing writes it
	}
	return w.commitLocked()
}

// Wait blocks until the frames committed so far have been written, or the writer
// failed: a Commit whose frames another goroutine writes returns before they are. It
// ends a Hold. Call it before closing a connection whose last frames must get out (each
// write is bounded by the writer's timeout).
func (w *Writer) Wait() {
	w.mu.Lock()
	if w.held {
		w.held = false
		if !w.flushing && len(w.buf) > 0 && w.err == nil {
			_ = w.commitLocked()
			return
		}
	}
	for w.flushing && w.err == nil {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// WriteNow writes frame after what is queued, and returns once it is written, by
// deadline: a write in progress is cut off then too, and so is every later write. It is
// the goodbye before a close, which a peer that does not read must not hold up. It
// reports whether the frame was written.
func (w *Writer) WriteNow(frame []byte, deadline time.Time) bool {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return false
	}
	w.stop = deadline
	w.held = false
	if !w.flushing {
		return w.Commit(append(w.buf, frame...)) == nil
	}
	// the writing goroutine writes the frame next, by the deadline
	_ = w.conn.SetWriteDeadline(deadline)
	w.buf = append(w.buf, frame...)
	for w.flushing && w.err == nil {
		w.cond.Wait()
	}
	ok := w.err == nil
	w.mu.Unlock()
	return ok
}

// Abort unlocks a writer that Begin locked, discarding nothing that was committed.
func (w *Writer) Abort() { w.mu.Unlock() }

// Fail makes every later Begin return err (the connection is gone).
func (w *Writer) Fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cond.Broadcast()
}

// AppendMessage appends a Request or Message frame: the header block of hdr (every
// pair, pseudo-headers included) and the body.
func (w *Writer) AppendMessage(dst []byte, typ, flags byte, stream uint32, hdr map[string]string, body []byte) []byte {
	start := len(dst)
	dst = AppendFrameHeader(dst, 0, typ, flags, stream)
	for k, v := range hdr {
		dst = w.Enc.AppendField(dst, k, v)
	}
	dst = AppendEnd(dst)
	dst = append(dst, body...)
	PutLength(dst[start:], len(dst)-start-HeaderLen)
	return dst
}

// AppendFields is AppendMessage with the header as a list of fields.
func (w *Writer) AppendFields(dst []byte, typ, flags byte, stream uint32, hdr Fields, body []byte) []byte {
	start := len(dst)
	dst = AppendFrameHeader(dst, 0, typ, flags, stream)
	for _, f := range hdr {
		dst = w.Enc.AppendField(dst, f.Key, f.Value)
	}
	dst = AppendEnd(dst)
	dst = append(dst, body...)
	PutLength(dst[start:], len(dst)-start-HeaderLen)
	return dst
}

// AppendControl appends a frame with a raw payload (Cancel, Window, Ping, Pong, GoAway).
func AppendControl(dst []byte, typ, flags byte, stream uint32, payload ...byte) []byte {
	return append(AppendFrameHeader(dst, len(payload), typ, flags, stream), payload...)
}
