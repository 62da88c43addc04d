package rabbitmq

import (
	"bytes"
	"errors"
	"maps"
	"regexp"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// decimalPattern is what an AMQP decimal renders as.
var decimalPattern = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// FuzzHeaders checks the encoding of headers for AMQP and the decoding of deliveries:
// string headers round-trip exactly (any bytes), names or headers too long for AMQP are
// refused with ErrMessageTooLarge (never sent), and header values of every AMQP type a
// foreign publisher may use decode to a string without panicking.
func FuzzHeaders(f *testing.F) {
	f.Add("Content-Type", []byte("application/json"), uint8(0), int64(0), []byte(`{"a":1}`))
	f.Add("", []byte{}, uint8(1), int64(-1), []byte{})
	f.Add("X-Unusual", []byte("a b\tc=d;é ∑"), uint8(2), int64(127), []byte{0, 1, 2, 255})
	f.Add("bin\x00key", []byte{0xff, 0xfe, 0x00}, uint8(3), int64(-32768), []byte(nil))
	f.Add(string(bytes.Repeat([]byte("k"), 255)), []byte("v"), uint8(4), int64(1<<31-1), []byte("x"))
	f.Add(string(bytes.Repeat([]byte("k"), 256)), []byte("v"), uint8(5), int64(-1<<63), []byte("y"))
	f.Add("big", bytes.Repeat([]byte("v"), 140<<10), uint8(6), int64(3), []byte("z"))
	f.Add("f", []byte("3.5"), uint8(7), int64(1e15), []byte{})
	f.Add("t", []byte("2024"), uint8(9), int64(1700000000), []byte("time"))
	f.Add("d", []byte("1234"), uint8(10), int64(0x7fffffff02), []byte("dec"))
	f.Add("nested", []byte("inner"), uint8(11), int64(9), []byte("table"))
	f.Add("arr", []byte("elem"), uint8(12), int64(-9), []byte("array"))
	f.Add("nil", []byte(""), uint8(13), int64(0), []byte("nil"))
	f.Fuzz(func(t *testing.T, key string, value []byte, kind uint8, n int64, body []byte) {
		h := map[string]string{key: string(value), "Fixed": "v"}
		tbl, err := encodeHeaders(h, 131072)
		if err != nil {
			if !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("encodeHeaders: %v, want ErrMessageTooLarge", err)
			}
			if len(key) <= maxShortString && len(key)+len(value) < 128<<10-propertiesReserve-64 {
				t.Fatalf("refused a %d-byte name with a %d-byte value: %v", len(key), len(value), err)
			}
		} else {
			if err := tbl.Validate(); err != nil {
				t.Fatalf("encoded an invalid table: %v", err)
			}
			d := amqp.Delivery{Headers: tbl, Body: body}
			m := decodeMessage(&d)
			if !maps.Equal(m.Header, h) {
				t.Fatalf("headers %q came back as %q", h, m.Header)
			}
			if !bytes.Equal(m.Body, body) || m.Body == nil {
				t.Fatalf("body %q came back as %q", body, m.Body)
			}
		}

		var v interface{}
		switch kind % 14 {
		case 0:
			v = string(value)
		case 1:
			v = value
		case 2:
			v = int8(n)
		case 3:
			v = int16(n)
		case 4:
			v = int32(n)
		case 5:
			v = n
		case 6:
			v = float32(n)
		case 7:
			v = float64(n) / 7
		case 8:
			v = n%2 == 0
		case 9:
			v = time.Unix(n%1e11, 0)
		case 10:
			v = amqp.Decimal{Scale: uint8(n), Value: int32(n >> 8)}
		case 11:
			v = amqp.Table{string(value): n}
		case 12:
			v = []interface{}{n, string(value), nil}
		case 13:
			v = nil
		}
		d := amqp.Delivery{Headers: amqp.Table{key: v}, ContentType: string(value)}
		m := decodeMessage(&d)
		got, ok := m.Header[key]
		if !ok {
			t.Fatalf("header %q of type %T missing", key, v)
		}
		switch x := v.(type) {
		case string:
			if got != x {
				t.Fatalf("string header %q came back as %q", x, got)
			}
		case []byte:
			if got != string(x) {
				t.Fatalf("byte header %q came back as %q", x, got)
			}
		case amqp.Decimal:
			if !decimalPattern.MatchString(got) {
				t.Fatalf("decimal %+v rendered as %q", x, got)
			}
		}
		if ct := string(value); ct != "" && key != "Content-Type" && m.Header["Content-Type"] != ct {
			t.Fatalf("content type %q not in the headers: %q", ct, m.Header)
		}
	})
}
