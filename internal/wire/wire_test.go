package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/wire"
)

// block encodes fields as one header block followed by body.
func block(e *wire.Encoder, fields wire.Fields, body []byte) []byte {
	var b []byte
	for _, f := range fields {
		b = e.AppendField(b, f.Key, f.Value)
	}
	return append(wire.AppendEnd(b), body...)
}

// warmBlocks are what a connection's first calls send: they fill the table with routing
// pairs, as a real connection's would.
var warmBlocks = []wire.Fields{
	{{Key: "Content-Type", Value: "application/json"}, {Key: "Micro-Service", Value: "greeter"}, {Key: "Micro-Endpoint", Value: "Greeter.Hello"}, {Key: "Micro-Id", Value: "1"}, {Key: "Timeout", Value: "5000000000"}},
	{{Key: "Content-Type", Value: "application/json"}, {Key: "Micro-Service", Value: "greeter"}, {Key: "Micro-Endpoint", Value: "Greeter.Bye"}, {Key: "X-Custom", Value: "v"}},
	{{Key: ":status", Value: "200"}, {Key: "Micro-Stream", Value: "1"}, {Key: ":open", Value: "1"}, {Key: "Accept", Value: "application/proto"}},
}

// warm returns an encoder and a decoder whose tables hold the pairs of warmBlocks.
func warm(t testing.TB) (*wire.Encoder, *wire.Decoder) {
	e, d := new(wire.Encoder), new(wire.Decoder)
	for _, fs := range warmBlocks {
		got, rest, err := d.Decode(block(e, fs, nil), nil)
		if err != nil || len(rest) != 0 || !equal(got, fs) {
			t.Fatalf("warm-up block: %v %v", got, err)
		}
	}
	return e, d
}

func equal(a, b wire.Fields) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clone(f wire.Fields) wire.Fields {
	out := make(wire.Fields, len(f))
	for i, kv := range f {
		out[i] = wire.Field{Key: strings.Clone(kv.Key), Value: strings.Clone(kv.Value)}
	}
	return out
}

// FuzzDecodeHeader decodes arbitrary bytes with a decoder whose table is filled: it must
// never panic, and what it accepts must survive a round trip through a fresh encoder.
func FuzzDecodeHeader(f *testing.F) {
	e, _ := warm(f)
	// seeds: what the warmed encoder sends next (table hits), fresh literals, and broken blocks
	f.Add(block(e, warmBlocks[0], []byte(`{"name":"alice"}`)))
	f.Add(block(e, wire.Fields{{Key: "Micro-Endpoint", Value: "Greeter.Other"}, {Key: "Authorization", Value: "Bearer x"}}, nil))
	f.Add(block(new(wire.Encoder), wire.Fields{{Key: "X-A", Value: strings.Repeat("v", 300)}}, []byte("body")))
	f.Add(block(new(wire.Encoder), wire.Fields{{Key: "Micro-Service", Value: "a"}, {Key: "Micro-Service", Value: "a"}}, nil))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0x40, 0x41, 0x42, 0})
	f.Add([]byte{0xff, 0})                                  // out-of-range table index
	f.Add([]byte{0x3f, 0})                                  // unknown static key
	f.Add([]byte{0x01, 0x05, 'a'})                          // truncated literal
	f.Add([]byte{0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}) // varint too long
	f.Add([]byte{0x02, 1, 'k', 1, 'v', 0x43, 0})            // insert, then a reference to it
	f.Add(bytes.Repeat([]byte{0x02, 1, 'k', 0}, 200))       // table overflow
	f.Fuzz(func(t *testing.T, data []byte) {
		_, d := warm(t)
		if len(data)%2 == 1 {
			d.MaxBytes, d.MaxFields = 512, 16 // half the inputs with limits
		}
		fields, rest, err := d.Decode(data, nil)
		if err != nil {
			if rest != nil {
				t.Fatalf("error %v with a rest", err)
			}
			return
		}
		if len(rest) > len(data) || !bytes.Equal(rest, data[len(data)-len(rest):]) {
			t.Fatalf("rest %q is not a suffix of the input", rest)
		}
		if d.MaxFields > 0 && len(fields) > d.MaxFields {
			t.Fatalf("%d fields over the limit %d", len(fields), d.MaxFields)
		}
		if d.MaxBytes > 0 && len(data)-len(rest) > d.MaxBytes {
			t.Fatalf("a block of %d bytes over the limit %d", len(data)-len(rest), d.MaxBytes)
		}
		// the fields own their strings: scribbling on the input leaves them alone
		want := clone(fields)
		for i := range data {
			data[i] ^= 0xff
		}
		if !equal(fields, want) {
			t.Fatalf("decoded fields alias the input: %q, want %q", fields, want)
		}
		again, rest2, err := new(wire.Decoder).Decode(block(new(wire.Encoder), fields, []byte("tail")), nil)
		if err != nil || string(rest2) != "tail" || !equal(again, want) {
			t.Fatalf("round trip: %q %q %v, want %q", again, rest2, err, want)
		}
	})
}

// TestHeaderRoundTrip is a property test of one direction of a connection: random field
// lists, block after block through one encoder and one decoder, always decode as sent:
// table hits and misses, values too long for the table, keys that are static, tableable
// or neither, and more distinct pairs than the table holds.
func TestHeaderRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed*7919))
			keys := append([]string(nil), wire.StaticKeys[:]...)
			keys = append(keys, "X-Custom", "x-lower", "", "Micro-Other", "Ünïcode")
			value := func() string {
				switch r.IntN(6) {
				case 0:
					return ""
				case 1:
					return strings.Repeat("L", 129+r.IntN(300)) // longer than a table value
				case 2:
					return strings.Repeat("m", 128) // the longest a table takes
				case 3:
					return fmt.Sprint("v", r.IntN(400)) // 400 values: the table fills
				default:
					return fmt.Sprint("common", r.IntN(4)) // hits
				}
			}
			e, d := new(wire.Encoder), &wire.Decoder{MaxBytes: 1 << 20, MaxFields: 64}
			var buf []byte
			var dst wire.Fields
			distinct := map[wire.Field]bool{}
			for i := 0; i < 600; i++ {
				n := r.IntN(12)
				fields := make(wire.Fields, n)
				for j := range fields {
					fields[j] = wire.Field{Key: keys[r.IntN(len(keys))], Value: value()}
					distinct[fields[j]] = true
				}
				body := make([]byte, r.IntN(40))
				for j := range body {
					body[j] = byte(r.Uint32())
				}
				// reuse the buffers, as the connections do
				buf = buf[:0]
				for _, f := range fields {
					buf = e.AppendField(buf, f.Key, f.Value)
				}
				buf = append(wire.AppendEnd(buf), body...)
				got, rest, err := d.Decode(buf, dst[:0])
				if err != nil {
					t.Fatalf("block %d: %v", i, err)
				}
				if !equal(got, fields) || !bytes.Equal(rest, body) {
					t.Fatalf("block %d: got %q %x, want %q %x", i, got, rest, fields, body)
				}
				dst = got
			}
			if len(distinct) < 250 {
				t.Fatalf("only %d distinct pairs: the table did not fill", len(distinct))
			}
		})
	}
}

// TestHeaderTableFills: once the table holds its 192 pairs, new pairs go as literals and
// the old ones still hit.
func TestHeaderTableFills(t *testing.T) {
	e, d := new(wire.Encoder), new(wire.Decoder)
	for i := 0; i < 300; i++ {
		fs := wire.Fields{{Key: "Micro-Service", Value: fmt.Sprint("svc", i)}, {Key: "Micro-Service", Value: "svc0"}}
		b := block(e, fs, nil)
		got, _, err := d.Decode(b, nil)
		if err != nil || !equal(got, fs) {
			t.Fatalf("block %d: %q %v", i, got, err)
		}
		if i > 0 && b[len(b)-2] != 0x40 {
			t.Fatalf("block %d: svc0 is not a table hit: % x", i, b)
		}
	}
}

// TestDecodeErrors: the errors of bad blocks are clear, and the limits are typed.
func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		dec  wire.Decoder
		want string
	}{
		{"empty", nil, wire.Decoder{}, "cut short"},
		{"no end", []byte{0x03, 1, 'a'}, wire.Decoder{}, "cut short"},
		{"truncated literal", []byte{0x01, 5, 'a'}, wire.Decoder{}, "cut short"},
		{"varint of 6 bytes", []byte{0x03, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0}, wire.Decoder{}, "cut short"},
		{"index out of range", []byte{0x40, 0}, wire.Decoder{}, "index 0 out of range"},
		{"unknown static key", []byte{0x3f, 0, 0}, wire.Decoder{}, "unknown static header key"},
		{"table overflow", append(bytes.Repeat([]byte{0x02, 1, 'k', 1, 'v'}, 193), 0), wire.Decoder{}, "table overflow"},
		{"too many fields", []byte{0x03, 0, 0x03, 0, 0x03, 0, 0}, wire.Decoder{MaxFields: 2}, wire.ErrTooManyFields.Error()},
		{"too large", append(append([]byte{0x01, 1, 'k', 100}, bytes.Repeat([]byte{'v'}, 100)...), 0), wire.Decoder{MaxBytes: 50}, wire.ErrHeaderTooLarge.Error()},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.dec
			_, _, err := d.Decode(c.in, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	d := wire.Decoder{MaxFields: 1}
	if _, _, err := d.Decode([]byte{0x03, 0, 0x03, 0, 0}, nil); !errors.Is(err, wire.ErrTooManyFields) {
		t.Fatalf("too many fields: %v", err)
	}
	d = wire.Decoder{MaxBytes: 3}
	if _, _, err := d.Decode([]byte{0x01, 1, 'k', 1, 'v', 0}, nil); !errors.Is(err, wire.ErrHeaderTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	// a block cut off past the limit is too large, not truncated: a reader hands over
	// only MaxBytes+1 bytes of a frame it will not read whole
	d = wire.Decoder{MaxBytes: 10}
	if _, _, err := d.Decode(append([]byte{0x01, 1, 'k', 100}, bytes.Repeat([]byte{'v'}, 20)...), nil); !errors.Is(err, wire.ErrHeaderTooLarge) {
		t.Fatalf("cut past the limit: %v", err)
	}
	d = wire.Decoder{MaxBytes: 100}
	if _, _, err := d.Decode(append([]byte{0x01, 1, 'k', 100}, bytes.Repeat([]byte{'v'}, 20)...), nil); errors.Is(err, wire.ErrHeaderTooLarge) {
		t.Fatalf("cut within the limit: %v", err)
	}
	// a failed block leaves the table as it was
	d = wire.Decoder{}
	if _, _, err := d.Decode([]byte{0x02, 1, 'k', 1, 'v', 0x01, 9}, nil); err == nil {
		t.Fatal("truncated block accepted")
	}
	if _, _, err := d.Decode([]byte{0x40, 0}, nil); err == nil {
		t.Fatal("a failed block added to the table")
	}
}

// frames returns a stream of frames of every type, well formed.
func frames() []byte {
	var w wire.Writer // only its encoder
	var b []byte
	b = w.AppendFields(b, wire.TypeRequest, wire.FlagEnd, 1, wire.Fields{{Key: "Micro-Endpoint", Value: "A.B"}}, []byte("{}"))
	b = w.AppendFields(b, wire.TypeMessage, 0, 3, nil, []byte("hello"))
	b = wire.AppendControl(b, wire.TypeCancel, 0, 3, wire.CodeCancel)
	b = wire.AppendControl(b, wire.TypeWindow, 0, 3, 0, 1, 0, 0)
	b = wire.AppendControl(b, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	b = wire.AppendControl(b, wire.TypePong, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	return wire.AppendControl(b, wire.TypeGoAway, 0, 0, 0, 0, 0, 3, 'b', 'y', 'e')
}

// FuzzReadFrame reads frames from arbitrary bytes: no panic, payloads of the length
// announced, and no allocation for lengths the input does not back (a 4 GiB length in a
// few bytes must not cost 4 GiB).
func FuzzReadFrame(f *testing.F) {
	all := frames()
	f.Add(all)
	f.Add(all[:len(all)-3])
	f.Add(all[:15])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 9, 0, 0, 0, 0, 1})                  // unknown type
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1})                  // type 0
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 1, 'x'}) // a 4 GiB length
	f.Add([]byte{0, 0x10, 0, 0, 2, 0, 0, 0, 0, 1, 'x', 'y'})     // 1 MiB claimed, 2 bytes sent
	f.Add(append(wire.AppendFrameHeader(nil, 3, wire.TypeMessage, wire.FlagEnd, 7), 0, 'a', 'b'))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 64)
		var buf []byte
		for i := 0; i < len(data)+1; i++ { // each frame takes at least one byte
			h, err := wire.ReadFrameHeader(br)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !strings.Contains(err.Error(), "unknown frame type") {
					t.Fatalf("header: %v", err)
				}
				return
			}
			if h.Type < wire.TypeRequest || h.Type > wire.TypeGoAway {
				t.Fatalf("type %d accepted", h.Type)
			}
			if i%2 == 1 {
				if err := wire.Discard(br, h.Length); err != nil {
					if err != io.ErrUnexpectedEOF {
						t.Fatalf("discard: %v", err)
					}
					return
				}
				continue
			}
			// no length check first: ReadPayload must cope with a length that lies
			buf, err = wire.ReadPayload(br, h.Length, buf[:0])
			if err != nil {
				if err != io.ErrUnexpectedEOF || buf != nil {
					t.Fatalf("payload: %v", err)
				}
				return
			}
			if uint32(len(buf)) != h.Length {
				t.Fatalf("payload of %d bytes, announced %d", len(buf), h.Length)
			}
			if cap(buf) > 2*len(data)+128<<10 {
				t.Fatalf("a buffer of %d bytes for %d bytes of input", cap(buf), len(data))
			}
		}
	})
}

// TestF2ReadPayloadLyingLength: a length that claims far more than follows costs what
// arrived, not what was claimed.
func TestF2ReadPayloadLyingLength(t *testing.T) {
	in := append(wire.AppendFrameHeader(nil, 1<<30, wire.TypeMessage, 0, 1), "four"...)
	br := bufio.NewReader(bytes.NewReader(in))
	h, err := wire.ReadFrameHeader(br)
	if err != nil || h.Length != 1<<30 {
		t.Fatalf("%+v %v", h, err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := wire.ReadPayload(br, h.Length, nil)
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF || p != nil {
		t.Fatalf("got %d bytes, %v", len(p), err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Fatalf("allocated %d bytes for a lying length", d)
	}
	// an honest long payload still reads whole, through a reused buffer or not
	long := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	for _, buf := range [][]byte{nil, make([]byte, 0, 100), make([]byte, 0, len(long))} {
		br := bufio.NewReader(bytes.NewReader(long))
		p, err := wire.ReadPayload(br, uint32(len(long)), buf)
		if err != nil || !bytes.Equal(p, long) {
			t.Fatalf("long payload: %d bytes, %v", len(p), err)
		}
	}
}

// TestWriterConcurrent: frames committed by many goroutines reach the connection whole
// and in an order consistent with their encoding (the header tables stay in step).
func TestWriterConcurrent(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	w := wire.NewWriter(server, time.Second, nil)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				buf, err := w.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				hdr := wire.Fields{{Key: "Micro-Endpoint", Value: fmt.Sprint("E", g)}, {Key: "X-Seq", Value: fmt.Sprint(i)}}
				if err := w.Commit(w.AppendFields(buf, wire.TypeMessage, 0, uint32(2*g+1), hdr, []byte(fmt.Sprint(g, ":", i)))); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		w.Wait() // a Commit may return before another goroutine wrote its frames
		_ = server.Close()
		close(done)
	}()
	br := bufio.NewReader(client)
	var d wire.Decoder
	next := make([]int, writers)
	for n := 0; n < writers*each; n++ {
		h, err := wire.ReadFrameHeader(br)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		p, err := wire.ReadPayload(br, h.Length, nil)
		if err != nil {
			t.Fatal(err)
		}
		fs, body, err := d.Decode(p, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		g := int(h.Stream-1) / 2
		if want := fmt.Sprint(g, ":", next[g]); string(body) != want || fs.Get("X-Seq") != fmt.Sprint(next[g]) || fs.Get("Micro-Endpoint") != fmt.Sprint("E", g) {
			t.Fatalf("frame %d: %q %q, want %q", n, fs, body, want)
		}
		next[g]++
	}
	<-done
	// the connection is gone: a Commit says nothing was written, later Begins fail
	buf, err := w.Begin()
	if err == nil {
		err = w.Commit(wire.AppendControl(buf, wire.TypePing, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	}
	var nw *wire.NotWrittenError
	if !errors.As(err, &nw) {
		t.Fatalf("write on a closed connection: %v", err)
	}
	if _, err := w.Begin(); err == nil {
		t.Fatal("Begin after a failed write")
	}
}

// TestWriterWriteNow: the goodbye frame goes out at once on an idle writer, after what is
// queued on a busy one, and gives up by its deadline when the peer does not read.
func TestWriterWriteNow(t *testing.T) {
	goodbye := wire.AppendControl(nil, wire.TypeGoAway, 0, 0, 0, 0, 0, 1)

	t.Run("idle", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		w := wire.NewWriter(server, time.Second, nil)
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(goodbye))
			_, _ = io.ReadFull(client, b)
			got <- b
		}()
		if !w.WriteNow(goodbye, time.Now().Add(time.Second)) {
			t.Fatal("not written")
		}
		if b := <-got; !bytes.Equal(b, goodbye) {
			t.Fatalf("got % x", b)
		}
	})

	t.Run("behind a write in progress", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		w := wire.NewWriter(server, time.Second, nil)
		ping := wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
		committed := make(chan error, 1)
		go func() {
			buf, err := w.Begin()
			if err == nil {
				err = w.Commit(append(buf, ping...))
			}
			committed <- err
		}()
		// the ping's write is in progress (net.Pipe writes wait for the reader)
		first := make([]byte, 1)
		if _, err := io.ReadFull(client, first); err != nil {
			t.Fatal(err)
		}
		done := make(chan bool, 1)
		go func() { done <- w.WriteNow(goodbye, time.Now().Add(2*time.Second)) }()
		rest := make([]byte, len(ping)-1+len(goodbye))
		if _, err := io.ReadFull(client, rest); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(first, rest...), append(append([]byte(nil), ping...), goodbye...)) {
			t.Fatalf("got % x", append(first, rest...))
		}
		if !<-done || <-committed != nil {
			t.Fatal("a write failed")
		}
	})

	t.Run("peer does not read", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		sc := &signalConn{Conn: server, writing: make(chan struct{}, 1)}
		w := wire.NewWriter(sc, time.Minute, nil)
		go func() { // blocks: nobody reads
			buf, err := w.Begin()
			if err == nil {
				_ = w.Commit(append(buf, make([]byte, 100)...))
			}
		}()
		select {
		case <-sc.writing:
		case <-time.After(5 * time.Second):
			t.Fatal("the first write did not start")
		}
		start := time.Now()
		if w.WriteNow(goodbye, time.Now().Add(50*time.Millisecond)) {
			t.Fatal("written to a peer that does not read")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("WriteNow took %s past its deadline of 50 ms", d)
		}
		if _, err := w.Begin(); err == nil {
			t.Fatal("the writer still takes frames after its write timed out")
		}
	})
}

// signalConn reports when a Write begins.
type signalConn struct {
	net.Conn
	writing chan struct{}
}

func (c *signalConn) Write(p []byte) (int, error) {
	select {
	case c.writing <- struct{}{}:
	default:
	}
	return c.Conn.Write(p)
}

// countingConn counts a connection's writes and the most that ran at once.
type countingConn struct {
	net.Conn
	writes, running, most atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	n := c.running.Add(1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	defer c.running.Add(-1)
	return c.Conn.Write(p)
}

// TestWriterHold: frames committed during a Hold wait for Release and go out in one
// write; a Release while another goroutine writes leaves the writing to it (one writer
// at a time, nothing lost); Wait ends a Hold.
func TestWriterHold(t *testing.T) {
	ping := func(i byte) []byte { return wire.AppendControl(nil, wire.TypePing, 0, 0, i, 0, 0, 0, 0, 0, 0, 0) }
	commit := func(t *testing.T, w *wire.Writer, frame []byte) {
		buf, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(append(buf, frame...)); err != nil {
			t.Fatal(err)
		}
	}
	readPings := func(t *testing.T, c net.Conn, want ...byte) {
		t.Helper()
		br := bufio.NewReader(c)
		for _, i := range want {
			h, err := wire.ReadFrameHeader(br)
			if err != nil {
				t.Fatal(err)
			}
			p, err := wire.ReadPayload(br, h.Length, nil)
			if err != nil || h.Type != wire.TypePing || p[0] != i {
				t.Fatalf("got %+v % x %v, want ping %d", h, p, err, i)
			}
		}
	}

	t.Run("release writes once", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		cc := &countingConn{Conn: server}
		w := wire.NewWriter(cc, time.Second, nil)
		w.Hold()
		for i := byte(1); i <= 3; i++ {
			commit(t, w, ping(i))
		}
		// nothing was written: the pipe has no reader, so a write would still be running
		if n := cc.writes.Load(); n != 0 {
			t.Fatalf("%d writes during the hold", n)
		}
		released := make(chan error, 1)
		go func() { released <- w.Release() }()
		readPings(t, client, 1, 2, 3)
		if err := <-released; err != nil {
			t.Fatal(err)
		}
		if n := cc.writes.Load(); n != 1 {
			t.Fatalf("%d writes, want the three frames in one", n)
		}
	})

	t.Run("release during a write", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		cc := &countingConn{Conn: server}
		w := wire.NewWriter(cc, time.Second, nil)
		first := make(chan struct{})
		go func() {
			defer close(first)
			commit(t, w, ping(1)) // its write waits for the reader
		}()
		for cc.running.Load() == 0 {
			runtime.Gosched()
		}
		w.Hold()
		commit(t, w, ping(2))
		if err := w.Release(); err != nil { // the goroutine writing takes ping 2 too
			t.Fatal(err)
		}
		readPings(t, client, 1, 2)
		<-first
		if m := cc.most.Load(); m != 1 {
			t.Fatalf("%d writes ran at once", m)
		}
	})

	t.Run("a hold keeps back at most 1 MiB", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		w := wire.NewWriter(server, time.Second, nil)
		w.Hold()
		body := bytes.Repeat([]byte("x"), 1<<20)
		committed := make(chan error, 1)
		go func() {
			buf, err := w.Begin()
			if err == nil {
				err = w.Commit(w.AppendFields(buf, wire.TypeMessage, 0, 1, nil, body))
			}
			committed <- err
		}()
		br := bufio.NewReader(client)
		h, err := wire.ReadFrameHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		p, err := wire.ReadPayload(br, h.Length, nil)
		if err != nil || !bytes.HasSuffix(p, body) {
			t.Fatalf("frame of %d bytes, %v", len(p), err)
		}
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wait ends a hold", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		w := wire.NewWriter(server, time.Second, nil)
		w.Hold()
		commit(t, w, ping(7))
		waited := make(chan struct{})
		go func() { w.Wait(); close(waited) }()
		readPings(t, client, 7)
		<-waited
	})
}
