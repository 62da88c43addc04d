// Package fastjson encodes and decodes the plainest Go structs, those whose fields are
// strings, booleans and numbers, without encoding/json's reflection walk, and gives
// exactly encoding/json's result when it does: the same bytes out, the same values in.
// Anything else it declines (its functions report false), and the caller runs
// encoding/json itself: a type with marshaler methods, embedded or nested fields, tag
// options other than omitempty, a key that is not exactly a field's name, a string
// that needs escaping, a number that does not fit, malformed input.
//
// The JSON codec of the RPC path calls it first, so a hello-world call's request and
// reply skip most of encoding/json's cost.
package fastjson

import (
	"encoding"
	stdjson "encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/seed-b3892490/micro/internal/typecache"
)

// maxFields is the most fields a struct may have for this package to take it, and the
// most keys an object it decodes may hold.
const maxFields = 32

// field is one JSON-visible field of a plan's struct.
type field struct {
	name      string // the JSON key
	key       []byte // `"name":` as encoding/json writes it
	offset    uintptr
	kind      reflect.Kind
	omitEmpty bool
}

// plan is what this package knows of a struct type; nil fields with ok false: the type
// is left to encoding/json.
type plan struct {
	ok     bool
	fields []field
}

// plans is the plan of every struct pointer type seen so far.
var plans typecache.Cache[*plan]

var (
	marshalerType       = reflect.TypeFor[stdjson.Marshaler]()
	unmarshalerType     = reflect.TypeFor[stdjson.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType          = reflect.TypeFor[stdjson.Number]()
)

// custom reports whether encoding/json treats t (or *t) specially.
func custom(t reflect.Type) bool {
	if t == numberType {
		return true
	}
	for _, it := range [...]reflect.Type{marshalerType, unmarshalerType, textMarshalerType, textUnmarshalerType} {
		if t.Implements(it) || reflect.PointerTo(t).Implements(it) {
			return true
		}
	}
	return false
}

// planFor returns the plan of the struct pointer type t points to, building it the
// first time.
func planFor(t reflect.Type) *plan {
	return plans.Get(t, func(t reflect.Type) *plan { return build(t.Elem()) })
}

func build(t reflect.Type) *plan {
	no := &plan{}
	if t.Kind() != reflect.Struct || custom(t) || t.NumField() > maxFields {
		return no
	}
	p := &plan{ok: true}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous {
			return no // embedding has its own visibility rules
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := field{name: sf.Name, offset: sf.Offset, kind: sf.Type.Kind()}
		if name != "" {
			if !plainName(name) {
				return no
			}
			f.name = name
		}
		for opts != "" {
			var opt string
			opt, opts, _ = strings.Cut(opts, ",")
			switch opt {
			case "omitempty":
				f.omitEmpty = true
			case "":
			default:
				return no // string, omitzero and options to come
			}
		}
		switch f.kind {
		case reflect.String, reflect.Bool,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
		default:
			return no
		}
		if custom(sf.Type) || seen[f.name] {
			return no // duplicate names: encoding/json's tie rules decide
		}
		seen[f.name] = true
		key, err := stdjson.Marshal(f.name)
		if err != nil {
			return no
		}
		f.key = append(key, ':')
		p.fields = append(p.fields, f)
	}
	return p
}

// plainName reports whether a tag's name is made only of characters that need no
// escaping and that encoding/json accepts as a name.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// structOf returns the plan and the address of the struct v points to, or ok false when
// v is not a non-nil pointer to a struct this package takes.
func structOf(v any) (*plan, unsafe.Pointer, bool) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil, nil, false
	}
	p := planFor(t)
	if !p.ok {
		return nil, nil, false
	}
	ptr := reflect.ValueOf(v).UnsafePointer()
	if ptr == nil {
		return nil, nil, false
	}
	return p, ptr, true
}

// Append appends the JSON encoding of v, exactly as encoding/json.Marshal would write
// it, and reports true; or it returns dst unchanged and false, and the caller encodes v
// with encoding/json. v must be a pointer to a struct for this package to take it.
func Append(dst []byte, v any) ([]byte, bool) {
	p, base, ok := structOf(v)
	if !ok {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, '{')
	first := true
	for i := range p.fields {
		f := &p.fields[i]
		at := unsafe.Add(base, f.offset)
		if f.omitEmpty && empty(f.kind, at) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, f.key...)
		if dst, ok = appendValue(dst, f.kind, at); !ok {
			return dst[:start], false
		}
	}
	return append(dst, '}'), true
}

// empty reports whether the value at p is what omitempty leaves out.
func empty(k reflect.Kind, p unsafe.Pointer) bool {
	switch k {
	case reflect.String:
		return *(*string)(p) == ""
	case reflect.Bool:
		return !*(*bool)(p)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intAt(k, p) == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return uintAt(k, p) == 0
	case reflect.Float32:
		return *(*float32)(p) == 0
	case reflect.Float64:
		return *(*float64)(p) == 0
	}
	return false
}

func intAt(k reflect.Kind, p unsafe.Pointer) int64 {
	switch k {
	case reflect.Int:
		return int64(*(*int)(p))
	case reflect.Int8:
		return int64(*(*int8)(p))
	case reflect.Int16:
		return int64(*(*int16)(p))
	case reflect.Int32:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func uintAt(k reflect.Kind, p unsafe.Pointer) uint64 {
	switch k {
	case reflect.Uint:
		return uint64(*(*uint)(p))
	case reflect.Uint8:
		return uint64(*(*uint8)(p))
	case reflect.Uint16:
		return uint64(*(*uint16)(p))
	case reflect.Uint32:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}

func appendValue(dst []byte, k reflect.Kind, p unsafe.Pointer) ([]byte, bool) {
	switch k {
	case reflect.String:
		return appendString(dst, *(*string)(p))
	case reflect.Bool:
		return strconv.AppendBool(dst, *(*bool)(p)), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(dst, intAt(k, p), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(dst, uintAt(k, p), 10), true
	case reflect.Float32:
		return appendFloat(dst, float64(*(*float32)(p)), 32)
	case reflect.Float64:
		return appendFloat(dst, *(*float64)(p), 64)
	}
	return dst, false
}

// appendString quotes s when it needs no escape but for `"` and `\`; a string with a
// control character, one of encoding/json's HTML escapes (<, >, &), a line or paragraph
// separator or invalid UTF-8 is declined.
func appendString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20, c == '<', c == '>', c == '&':
			return dst, false
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			continue
		case c >= utf8.RuneSelf:
			ascii = false
		}
		dst = append(dst, c)
	}
	if !ascii && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")) {
		return dst, false
	}
	return append(dst, '"'), true
}

// appendFloat writes f the way encoding/json does: the shortest decimal that reads back
// as f, in plain notation unless f is very small or very large, with a one-digit
// negative exponent written without its leading zero.
func appendFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false // encoding/json refuses them
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 {
		if bits == 64 && (a < 1e-6 || a >= 1e21) || bits == 32 && (float32(a) < 1e-6 || float32(a) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 is written 1e-7
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// assignment is one decoded key's value, kept until the whole input has been read.
type assignment struct {
	f     *field
	s     []byte // a string's bytes, within the input
	i     int64
	u     uint64
	float float64
	b     bool
}

// Decode decodes data into v, a pointer to a struct, exactly as encoding/json.Unmarshal
// would, and reports true; or it leaves v untouched and reports false, and the caller
// decodes with encoding/json (which then also gives the error of malformed input).
func Decode(data []byte, v any) bool {
	p, base, ok := structOf(v)
	if !ok {
		return false
	}
	var buf [8]assignment
	as := buf[:0]
	d := decoder{data: data}
	d.space()
	if !d.byte('{') {
		return false
	}
	d.space()
	if !d.byte('}') {
		for {
			if len(as) == maxFields {
				return false
			}
			key, ok := d.str()
			if !ok {
				return false
			}
			f := p.lookup(key)
			if f == nil {
				return false // unknown, or only a case-insensitive match: encoding/json's rules
			}
			d.space()
			if !d.byte(':') {
				return false
			}
			d.space()
			a := assignment{f: f}
			if !d.value(&a) {
				return false
			}
			as = append(as, a)
			d.space()
			if d.byte(',') {
				d.space()
				continue
			}
			if d.byte('}') {
				break
			}
			return false
		}
	}
	d.space()
	if d.pos != len(d.data) {
		return false
	}
	for i := range as {
		as[i].store(base)
	}
	return true
}

func (p *plan) lookup(key []byte) *field {
	for i := range p.fields {
		if p.fields[i].name == string(key) {
			return &p.fields[i]
		}
	}
	return nil
}

// store writes a's value into its field of the struct at base.
func (a *assignment) store(base unsafe.Pointer) {
	at := unsafe.Add(base, a.f.offset)
	switch a.f.kind {
	case reflect.String:
		*(*string)(at) = string(a.s)
	case reflect.Bool:
		*(*bool)(at) = a.b
	case reflect.Int:
		*(*int)(at) = int(a.i)
	case reflect.Int8:
		*(*int8)(at) = int8(a.i)
	case reflect.Int16:
		*(*int16)(at) = int16(a.i)
	case reflect.Int32:
		*(*int32)(at) = int32(a.i)
	case reflect.Int64:
		*(*int64)(at) = a.i
	case reflect.Uint:
		*(*uint)(at) = uint(a.u)
	case reflect.Uint8:
		*(*uint8)(at) = uint8(a.u)
	case reflect.Uint16:
		*(*uint16)(at) = uint16(a.u)
	case reflect.Uint32:
		*(*uint32)(at) = uint32(a.u)
	case reflect.Uint64:
		*(*uint64)(at) = a.u
	case reflect.Float32:
		*(*float32)(at) = float32(a.float)
	case reflect.Float64:
		*(*float64)(at) = a.float
	}
}

// decoder reads the strict subset of JSON this package decodes.
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (d *decoder) byte(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// str reads a string without escapes and returns its bytes; a string with an escape, a
// control character or invalid UTF-8 is declined.
func (d *decoder) str() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.pos
	ascii := true
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.pos++
	}
	return nil, false
}

// literal consumes word if it is next and is followed by a delimiter.
func (d *decoder) literal(word string) bool {
	end := d.pos + len(word)
	if end > len(d.data) || string(d.data[d.pos:end]) != word {
		return false
	}
	if end < len(d.data) && !delimiter(d.data[end]) {
		return false
	}
	d.pos = end
	return true
}

func delimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', '}':
		return true
	}
	return false
}

// number reads a JSON number and returns its text and whether it is an integer (no
// fraction, no exponent).
func (d *decoder) number() (text []byte, integer bool, ok bool) {
	start, i, data := d.pos, d.pos, d.data
	digits := func() int {
		n := 0
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i < len(data) && data[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, false, false
	}
	integer = true
	if i < len(data) && data[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return nil, false, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		integer = false
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false, false
		}
	}
	if i < len(data) && !delimiter(data[i]) {
		return nil, false, false
	}
	d.pos = i
	return data[start:i], integer, true
}

// value reads the value of a's field; a JSON value of another type than the field's
// (null included) is declined, and encoding/json decides.
func (d *decoder) value(a *assignment) bool {
	switch k := a.f.kind; k {
	case reflect.String:
		s, ok := d.str()
		a.s = s
		return ok
	case reflect.Bool:
		switch {
		case d.literal("true"):
			a.b = true
			return true
		case d.literal("false"):
			return true
		}
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		text, integer, ok := d.number()
		if !ok || !integer {
			return false
		}
		n, err := strconv.ParseInt(unsafe.String(&text[0], len(text)), 10, bitSize(k))
		a.i = n
		return err == nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		text, integer, ok := d.number()
		if !ok || !integer || text[0] == '-' {
			return false
		}
		n, err := strconv.ParseUint(unsafe.String(&text[0], len(text)), 10, bitSize(k))
		a.u = n
		return err == nil
	case reflect.Float32, reflect.Float64:
		text, _, ok := d.number()
		if !ok {
			return false
		}
		bits := 64
		if k == reflect.Float32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), bits)
		a.float = f
		return err == nil
	}
	return false
}

// bitSize is the size of an integer kind, as strconv takes it.
func bitSize(k reflect.Kind) int {
	switch k {
	case reflect.Int8, reflect.Uint8:
		return 8
	case reflect.Int16, reflect.Uint16:
		return 16
	case reflect.Int32, reflect.Uint32:
		return 32
	case reflect.Int64, reflect.Uint64:
		return 64
	}
	return strconv.IntSize
}
