package wire

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// A header block is a sequence of fields ended by a zero byte. Each field starts with a
// tag byte:
//
//	0x00        end of the block
//	0x01        literal: uvarint key length, key, uvarint value length, value
//	0x02        literal, and the receiver adds the pair to its table of this direction
//	0x03..0x3f  a static key (StaticKeys[tag-3]), then uvarint value length and value
//	0x40..0xff  the pair at index tag-0x40 of the table of this direction
//
// Each direction of a connection has its own table of up to 192 pairs, filled in the
// order frames are written; entries are never removed. Repeated routing headers
// (service, endpoint, content type) therefore cost one byte per call, and a decoder hands
// out the same strings every time instead of allocating new ones.
const (
	tagEnd     = 0x00
	tagLiteral = 0x01
	tagInsert  = 0x02
	tagStatic  = 0x03
	tagDynamic = 0x40
	tableSize  = 0x100 - tagDynamic
	// maxTableValue is the longest value worth a table entry.
	maxTableValue = 128
)

// StaticKeys are header names sent as one byte.
var StaticKeys = [...]string{
	"Content-Type", "Accept", "Micro-Service", "Micro-Endpoint", "Micro-Method", "Micro-Id",
	"Timeout", "Micro-Error", ":status", "Micro-Not-Started", "Micro-Stream", ":open", ":eos",
	"Authorization", "Micro-Topic", ":path", ":method", "Micro-Namespace", "Micro-Trace-Id",
	"Micro-Span-Id", "User-Agent", "Micro-From-Service",
}

var staticIndex = func() map[string]byte {
	m := make(map[string]byte, len(StaticKeys))
	for i, k := range StaticKeys {
		m[k] = byte(i)
	}
	return m
}()

// tableable are the keys whose pairs enter the table: values that repeat call after call.
var tableable = map[string]bool{
	"Content-Type": true, "Accept": true, "Micro-Service": true, "Micro-Endpoint": true,
	"Micro-Method": true, ":status": true, "Micro-Stream": true, ":open": true, ":eos": true,
	"Micro-Topic": true, "Micro-Namespace": true, "User-Agent": true, "Micro-From-Service": true,
}

type pair struct{ k, v string }

// Encoder encodes header blocks for one direction of a connection. Frames must reach the
// wire in the order they were encoded (encode under the connection's write lock).
type Encoder struct {
	table map[pair]byte
}

// AppendField appends one field.
func (e *Encoder) AppendField(dst []byte, k, v string) []byte {
	if idx, ok := e.table[pair{k, v}]; ok {
		return append(dst, tagDynamic+idx)
	}
	if tableable[k] && len(v) <= maxTableValue && len(e.table) < tableSize {
		if e.table == nil {
			e.table = make(map[pair]byte, 16)
		}
		// the keys are cloned: a caller's strings may point into buffers it reuses
		e.table[pair{strings.Clone(k), strings.Clone(v)}] = byte(len(e.table))
		return appendString(appendString(append(dst, tagInsert), k), v)
	}
	if i, ok := staticIndex[k]; ok {
		return appendString(append(dst, tagStatic+i), v)
	}
	return appendString(appendString(append(dst, tagLiteral), k), v)
}

// AppendEnd ends a header block.
func AppendEnd(dst []byte) []byte { return append(dst, tagEnd) }

func appendString(dst []byte, s string) []byte {
	n := uint64(len(s))
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(append(dst, byte(n)), s...)
}

// Decoder decodes the header blocks of one direction of a connection, in wire order.
type Decoder struct {
	table []pair
	// MaxBytes and MaxFields bound a block (0: no bound).
	MaxBytes  int
	MaxFields int
}

// Errors of header blocks.
var (
	ErrHeaderTooLarge = errors.New("wire: header block exceeds the size limit")
	ErrTooManyFields  = errors.New("wire: header block has more fields than the limit")
	// ErrTruncated: the bytes end before the block does.
	ErrTruncated = errors.New("wire: header block cut short")
)

// Fields are decoded header fields. Their strings are valid for as long as the caller
// keeps them: they share one allocation per block.
type Fields []Field

// Field is one header field.
type Field struct{ Key, Value string }

// Get returns the value of key, "" when absent.
func (f Fields) Get(key string) string {
	for i := range f {
		if f[i].Key == key {
			return f[i].Value
		}
	}
	return ""
}

// Decode decodes the header block at the start of p, appending its fields to dst, and
// returns them with the rest of p (the body). Literal strings of one block share one
// allocation; table entries are reused.
func (d *Decoder) Decode(p []byte, dst Fields) (Fields, []byte, error) {
	// First pass: find the end of the block and validate it, so that one string copy
	// can back every literal.
	end, n, lit, err := d.scan(p)
	if err != nil {
		return dst, nil, err
	}
	if d.MaxFields > 0 && n > d.MaxFields {
		return dst, nil, fmt.Errorf("%w (%d > %d)", ErrTooManyFields, n, d.MaxFields)
	}
	var s string
	if lit {
		s = string(p[:end])
	} else {
		s = unsafeString(p[:end]) // only indices: no string of the block escapes
	}
	i := 0
	for {
		tag := s[i]
		i++
		switch {
		case tag == tagEnd:
			return dst, p[end:], nil
		case tag == tagLiteral || tag == tagInsert:
			var k, v string
			k, i = readString(s, i)
			v, i = readString(s, i)
			if tag == tagInsert {
				// a table entry outlives the block: its own copy
				k, v = internKey(k), strings.Clone(v)
				d.table = append(d.table, pair{k, v})
			} else {
				k = internKey(k)
			}
			dst = append(dst, Field{k, v})
		case tag < tagDynamic:
			var v string
			v, i = readString(s, i)
			dst = append(dst, Field{StaticKeys[tag-tagStatic], v})
		default:
			e := d.table[tag-tagDynamic] // scan checked the index
			dst = append(dst, Field{e.k, e.v})
		}
	}
}

// internKey returns the static copy of a well-known key.
func internKey(k string) string {
	if i, ok := staticIndex[k]; ok {
		return StaticKeys[i]
	}
	return k
}

// scan returns the length of the block at the start of p (end tag included) and its
// number of fields, and whether it holds literal strings.
func (d *Decoder) scan(p []byte) (int, int, bool, error) {
	i, n, inserts, lit := 0, 0, 0, false
	for {
		if d.MaxBytes > 0 && i > d.MaxBytes {
			return 0, 0, false, ErrHeaderTooLarge
		}
		if i >= len(p) {
			return 0, 0, false, ErrTruncated
		}
		tag := p[i]
		i++
		var err error
		switch {
		case tag == tagEnd:
			if d.MaxBytes > 0 && i > d.MaxBytes {
				return 0, 0, false, ErrHeaderTooLarge
			}
			return i, n, lit, nil
		case tag == tagLiteral || tag == tagInsert:
			if i, err = skipString(p, i); err == nil {
				i, err = skipString(p, i)
			}
			if err != nil {
				return 0, 0, false, d.cutShort(p, err)
			}
			if tag == tagInsert {
				if inserts++; len(d.table)+inserts > tableSize {
					return 0, 0, false, errors.New("wire: header table overflow")
				}
			}
		case tag < tagDynamic:
			if int(tag-tagStatic) >= len(StaticKeys) {
				return 0, 0, false, fmt.Errorf("wire: unknown static header key %d", tag-tagStatic)
			}
			if i, err = skipString(p, i); err != nil {
				return 0, 0, false, d.cutShort(p, err)
			}
		default:
			// an entry added earlier in this very block counts too
			if int(tag-tagDynamic) >= len(d.table)+inserts {
				return 0, 0, false, fmt.Errorf("wire: header table index %d out of range", tag-tagDynamic)
			}
			n++
			continue
		}
		lit = true
		n++
	}
}

// cutShort is the error of a block whose field runs past the end of p: when p is longer
// than MaxBytes, the block is too large (a reader may hand over only MaxBytes+1 bytes of
// a frame it will not read whole).
func (d *Decoder) cutShort(p []byte, err error) error {
	if d.MaxBytes > 0 && len(p) > d.MaxBytes {
		return ErrHeaderTooLarge
	}
	return err
}

func skipString(p []byte, i int) (int, error) {
	var n uint64
	for shift := 0; ; shift += 7 {
		if i >= len(p) || shift > 28 {
			return 0, ErrTruncated
		}
		b := p[i]
		i++
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	if n > uint64(len(p)-i) {
		return 0, ErrTruncated
	}
	return i + int(n), nil
}

// readString reads a string scan has validated.
func readString(s string, i int) (string, int) {
	var n int
	for shift := 0; ; shift += 7 {
		b := s[i]
		i++
		n |= int(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	return s[i : i+n], i + n
}

// unsafeString views b as a string without copying; the caller must not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
