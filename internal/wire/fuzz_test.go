package wire_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/seed-b3892490/micro/internal/wire"
)

// primed returns a decoder whose table holds the pairs of a few blocks, and the blocks.
func primed() (*wire.Decoder, *wire.Encoder, [][]byte) {
	enc := new(wire.Encoder)
	dec := &wire.Decoder{MaxBytes: 1 << 16, MaxFields: 100}
	var blocks [][]byte
	for _, f := range []wire.Fields{
		{{Key: "Micro-Service", Value: "greeter"}, {Key: "Micro-Endpoint", Value: "Greeter.Hello"}, {Key: "Content-Type", Value: "application/json"}},
		{{Key: "Timeout", Value: "5000000000"}, {Key: "X-Custom", Value: "v"}, {Key: "Content-Type", Value: "application/json"}},
	} {
		var b []byte
		for _, kv := range f {
			b = enc.AppendField(b, kv.Key, kv.Value)
		}
		b = wire.AppendEnd(b)
		if _, _, err := dec.Decode(b, nil); err != nil {
			panic(err)
		}
		blocks = append(blocks, b)
	}
	return dec, enc, blocks
}

// FuzzDecodeHeader decodes arbitrary header blocks: never a panic, and what decodes
// re-encodes (on a fresh connection) to the same fields.
func FuzzDecodeHeader(f *testing.F) {
	_, _, blocks := primed()
	for _, b := range blocks {
		f.Add(b)
	}
	f.Add([]byte{0x00})
	f.Add([]byte{0x01, 0x01, 'k', 0x01, 'v', 0x00})
	f.Add([]byte{0x40, 0x41, 0x00})
	f.Add([]byte{0x3f, 0x05, 'a', 0x00})
	f.Add([]byte{0x02, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		dec, _, _ := primed()
		fields, rest, err := dec.Decode(p, nil)
		if err != nil {
			return
		}
		if len(rest) > len(p) {
			t.Fatalf("rest longer than the input")
		}
		var enc wire.Encoder
		var b []byte
		for _, kv := range fields {
			b = enc.AppendField(b, kv.Key, kv.Value)
		}
		b = wire.AppendEnd(b)
		fresh := wire.Decoder{}
		again, _, err := fresh.Decode(b, nil)
		if err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		if len(again) != len(fields) {
			t.Fatalf("%d fields became %d", len(fields), len(again))
		}
		for i := range again {
			if again[i] != fields[i] {
				t.Fatalf("field %d: %v became %v", i, fields[i], again[i])
			}
		}
	})
}

// FuzzReadFrame reads arbitrary bytes as frames: never a panic, never a payload longer
// than its header says.
func FuzzReadFrame(f *testing.F) {
	f.Add(wire.AppendControl(nil, wire.TypePing, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add([]byte{0, 0, 0, 5, 2, 1, 0, 0, 0, 1, 0, 'a', 'b', 'c', 'd'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 99, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		r := bufio.NewReader(bytes.NewReader(p))
		for i := 0; i < 16; i++ {
			h, err := wire.ReadFrameHeader(r)
			if err != nil {
				return
			}
			if h.Length > 1<<16 {
				return // a reader refuses it by its limit before reading
			}
			payload, err := wire.ReadPayload(r, h.Length, nil)
			if err != nil {
				return
			}
			if len(payload) != int(h.Length) {
				t.Fatalf("payload of %d bytes for a length of %d", len(payload), h.Length)
			}
		}
	})
}

// Random field lists, block after block on one connection, decode as they were sent,
// across table hits and misses, long values and a full table.
func TestHeaderRoundTrip(t *testing.T) {
	var enc wire.Encoder
	dec := wire.Decoder{MaxBytes: 1 << 20, MaxFields: 1000}
	keys := []string{"Content-Type", "Micro-Service", "Micro-Endpoint", "Timeout", "X-A", "x-b", ":status", "Micro-Error"}
	for i := 0; i < 2000; i++ {
		var fields wire.Fields
		for j := 0; j < 1+i%9; j++ {
			v := string(rune('a' + (i*7+j)%26))
			if j%3 == 0 {
				v = string(bytes.Repeat([]byte(v), 100+i%80)) // around the table's 128-byte bound
			}
			if j%4 == 1 {
				v += string(rune('0' + i%250)) // distinct pairs fill the table
			}
			fields = append(fields, wire.Field{Key: keys[(i+j)%len(keys)], Value: v})
		}
		var b []byte
		for _, f := range fields {
			b = enc.AppendField(b, f.Key, f.Value)
		}
		b = append(wire.AppendEnd(b), "body"...)
		got, rest, err := dec.Decode(b, nil)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if string(rest) != "body" || len(got) != len(fields) {
			t.Fatalf("block %d: %v %q", i, got, rest)
		}
		for j := range got {
			if got[j] != fields[j] {
				t.Fatalf("block %d field %d: %v, sent %v", i, j, got[j], fields[j])
			}
		}
	}
}
