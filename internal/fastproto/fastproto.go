// Package fastproto encodes and decodes the plainest protocol buffer messages, generated
// proto3 structs whose fields are all singular scalars (strings, bytes, booleans,
// numbers and enums), straight from their Go fields, and gives exactly the result of
// google.golang.org/protobuf/proto when it does: the same bytes out, the same fields in.
// Anything else it declines (its functions report false) and the caller runs proto
// itself: a message with a nested message, a repeated, map or oneof field, an optional
// (presence) field, proto2 or editions syntax, unknown fields kept from an earlier
// decode, a struct that is not the open API's; on decoding, an unknown field, a field of
// the wrong wire type, malformed input or a string that is not UTF-8; on encoding, a
// string that is not UTF-8 (proto's error says so).
//
// The protobuf codec of the RPC path calls it first: a small request or reply skips the
// generic machinery of proto.Marshal and proto.Unmarshal, most of their cost.
package fastproto

import (
	"cmp"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/seed-b3892490/micro/internal/typecache"
)

// maxFields is the most fields a message may have for this package to take it.
const maxFields = 32

// field is one field of a plan's message.
type field struct {
	num    protowire.Number
	kind   protoreflect.Kind
	wire   protowire.Type
	tag    []byte // the field's tag, encoded
	offset uintptr
}

// plan is what this package knows of a message type; ok false: the type is left to
// proto.
type plan struct {
	ok      bool
	fields  []field // by field number, the order proto encodes them in
	unknown uintptr // offset of the unknownFields bytes
	size    uintptr // offset of the sizeCache int32
	// index[n] is 1 + the position in fields of the field numbered n, for n < len(index)
	index [smallNumbers]uint8
}

// smallNumbers bounds the field numbers looked up by index; larger ones are searched.
const smallNumbers = 64

// lookup returns the field numbered num, or nil.
func (p *plan) lookup(num protowire.Number) *field {
	if num < smallNumbers {
		if i := p.index[num]; i > 0 {
			return &p.fields[i-1]
		}
		return nil
	}
	for i := range p.fields {
		if p.fields[i].num == num {
			return &p.fields[i]
		}
	}
	return nil
}

var plans typecache.Cache[*plan]

// messageOf returns the plan and the address of the struct m points to, or ok false when
// m is not a non-nil message this package takes.
func messageOf(m proto.Message) (*plan, unsafe.Pointer, bool) {
	t := reflect.TypeOf(m)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil, nil, false
	}
	p := plans.Get(t, func(reflect.Type) *plan { return build(m) })
	if !p.ok {
		return nil, nil, false
	}
	ptr := reflect.ValueOf(m).UnsafePointer()
	if ptr == nil {
		return nil, nil, false
	}
	return p, ptr, true
}

// goKinds is the Go kind of the struct field of each scalar kind this package takes.
var goKinds = map[protoreflect.Kind]reflect.Kind{
	protoreflect.StringKind:   reflect.String,
	protoreflect.BytesKind:    reflect.Slice,
	protoreflect.BoolKind:     reflect.Bool,
	protoreflect.Int32Kind:    reflect.Int32,
	protoreflect.Sint32Kind:   reflect.Int32,
	protoreflect.Sfixed32Kind: reflect.Int32,
	protoreflect.EnumKind:     reflect.Int32,
	protoreflect.Int64Kind:    reflect.Int64,
	protoreflect.Sint64Kind:   reflect.Int64,
	protoreflect.Sfixed64Kind: reflect.Int64,
	protoreflect.Uint32Kind:   reflect.Uint32,
	protoreflect.Fixed32Kind:  reflect.Uint32,
	protoreflect.Uint64Kind:   reflect.Uint64,
	protoreflect.Fixed64Kind:  reflect.Uint64,
	protoreflect.FloatKind:    reflect.Float32,
	protoreflect.DoubleKind:   reflect.Float64,
}

// wireTypes is the wire type of each scalar kind.
var wireTypes = map[protoreflect.Kind]protowire.Type{
	protoreflect.StringKind:   protowire.BytesType,
	protoreflect.BytesKind:    protowire.BytesType,
	protoreflect.Fixed32Kind:  protowire.Fixed32Type,
	protoreflect.Sfixed32Kind: protowire.Fixed32Type,
	protoreflect.FloatKind:    protowire.Fixed32Type,
	protoreflect.Fixed64Kind:  protowire.Fixed64Type,
	protoreflect.Sfixed64Kind: protowire.Fixed64Type,
	protoreflect.DoubleKind:   protowire.Fixed64Type,
	// the rest are varints
}

// hidden reports whether sf is one of the unexported fields every open-API struct has:
// state, which this package leaves alone, and sizeCache and unknownFields, which Decode
// clears (and Append checks unknownFields is empty).
func hidden(sf reflect.StructField) bool {
	switch sf.Name {
	case "state", "sizeCache", "unknownFields":
		return !sf.IsExported()
	}
	return false
}

func build(m proto.Message) *plan {
	no := &plan{}
	t := reflect.TypeOf(m).Elem()
	if t.Kind() != reflect.Struct || t.NumField() > maxFields+3 {
		return no
	}
	md := m.ProtoReflect().Descriptor()
	if md.Syntax() != protoreflect.Proto3 || md.Oneofs().Len() > 0 || md.ExtensionRanges().Len() > 0 ||
		md.Fields().Len() > maxFields {
		return no
	}
	p := &plan{ok: true}
	haveUnknown, haveSize := false, false
	goFields := map[protowire.Number]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if hidden(sf) {
			if sf.Name == "unknownFields" {
				if sf.Type.Kind() != reflect.Slice || sf.Type.Elem().Kind() != reflect.Uint8 {
					return no
				}
				p.unknown, haveUnknown = sf.Offset, true
			}
			if sf.Name == "sizeCache" {
				if sf.Type.Kind() != reflect.Int32 {
					return no
				}
				p.size, haveSize = sf.Offset, true
			}
			continue
		}
		tag := sf.Tag.Get("protobuf")
		if !sf.IsExported() || sf.Anonymous || tag == "" {
			return no // XXX_ fields, the opaque API's hidden fields, anything unforeseen
		}
		parts := strings.Split(tag, ",")
		if len(parts) < 2 {
			return no
		}
		n, err := strconv.ParseInt(parts[1], 10, 32)
		if err != nil || n < 1 {
			return no
		}
		goFields[protowire.Number(n)] = sf
	}
	if !haveUnknown || !haveSize || len(goFields) != md.Fields().Len() {
		return no
	}
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		if fd.Cardinality() == protoreflect.Repeated || fd.HasPresence() || fd.ContainingOneof() != nil {
			return no
		}
		goKind, ok := goKinds[fd.Kind()]
		sf, found := goFields[fd.Number()]
		if !ok || !found || sf.Type.Kind() != goKind {
			return no
		}
		if goKind == reflect.Slice && sf.Type.Elem().Kind() != reflect.Uint8 {
			return no
		}
		wt, fixed := wireTypes[fd.Kind()]
		if !fixed {
			wt = protowire.VarintType
		}
		p.fields = append(p.fields, field{
			num:    fd.Number(),
			kind:   fd.Kind(),
			wire:   wt,
			tag:    protowire.AppendTag(nil, fd.Number(), wt),
			offset: sf.Offset,
		})
	}
	// proto encodes fields in the order of their numbers
	slices.SortFunc(p.fields, func(a, b field) int { return cmp.Compare(a.num, b.num) })
	for i, f := range p.fields {
		if f.num < smallNumbers {
			p.index[f.num] = uint8(i + 1)
		}
	}
	return p
}

// clear zeroes the message at base as its Reset method does, field by field: Reset also
// stores the message's type in its state with an atomic write (a full barrier, the
// dearest part of decoding a small message), which the state holds already or learns
// when it is first asked for.
func (p *plan) clear(base unsafe.Pointer) {
	for i := range p.fields {
		f := &p.fields[i]
		at := unsafe.Add(base, f.offset)
		switch f.kind {
		case protoreflect.StringKind:
			*(*string)(at) = ""
		case protoreflect.BytesKind:
			*(*[]byte)(at) = nil
		case protoreflect.BoolKind:
			*(*bool)(at) = false
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
			protoreflect.Uint64Kind, protoreflect.Fixed64Kind, protoreflect.DoubleKind:
			*(*uint64)(at) = 0
		default: // the 32-bit kinds
			*(*uint32)(at) = 0
		}
	}
	*(*[]byte)(unsafe.Add(base, p.unknown)) = nil
	*(*int32)(unsafe.Add(base, p.size)) = 0
}

// Append appends the encoding of m, exactly as proto.MarshalOptions{}.MarshalAppend would
// write it, and reports true; or it returns dst unchanged and false, and the caller
// encodes m with proto.
func Append(dst []byte, m proto.Message) ([]byte, bool) {
	p, base, ok := messageOf(m)
	if !ok || len(*(*[]byte)(unsafe.Add(base, p.unknown))) > 0 {
		return dst, false
	}
	start := len(dst)
	for i := range p.fields {
		f := &p.fields[i]
		at := unsafe.Add(base, f.offset)
		switch f.kind {
		case protoreflect.StringKind:
			s := *(*string)(at)
			if s == "" {
				continue
			}
			if !utf8.ValidString(s) {
				return dst[:start], false // proto's error names the field
			}
			dst = protowire.AppendString(append(dst, f.tag...), s)
		case protoreflect.BytesKind:
			b := *(*[]byte)(at)
			if len(b) == 0 {
				continue
			}
			dst = protowire.AppendBytes(append(dst, f.tag...), b)
		case protoreflect.BoolKind:
			if !*(*bool)(at) {
				continue
			}
			dst = append(append(dst, f.tag...), 1)
		case protoreflect.Int32Kind, protoreflect.EnumKind:
			if v := *(*int32)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), uint64(int64(v)))
			}
		case protoreflect.Int64Kind:
			if v := *(*int64)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), uint64(v))
			}
		case protoreflect.Uint32Kind:
			if v := *(*uint32)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), uint64(v))
			}
		case protoreflect.Uint64Kind:
			if v := *(*uint64)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), v)
			}
		case protoreflect.Sint32Kind:
			if v := *(*int32)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), protowire.EncodeZigZag(int64(v)))
			}
		case protoreflect.Sint64Kind:
			if v := *(*int64)(at); v != 0 {
				dst = protowire.AppendVarint(append(dst, f.tag...), protowire.EncodeZigZag(v))
			}
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
			if v := *(*uint32)(at); v != 0 {
				dst = protowire.AppendFixed32(append(dst, f.tag...), v)
			}
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
			if v := *(*uint64)(at); v != 0 {
				dst = protowire.AppendFixed64(append(dst, f.tag...), v)
			}
		case protoreflect.FloatKind:
			// a zero is left out, but not a negative zero
			if v := *(*float32)(at); v != 0 || math.Signbit(float64(v)) {
				dst = protowire.AppendFixed32(append(dst, f.tag...), math.Float32bits(v))
			}
		case protoreflect.DoubleKind:
			if v := *(*float64)(at); v != 0 || math.Signbit(v) {
				dst = protowire.AppendFixed64(append(dst, f.tag...), math.Float64bits(v))
			}
		}
	}
	return dst, true
}

// Decode replaces m's fields with those encoded in b, as proto.Unmarshal would, and
// reports true; or it reports false, and the caller decodes b with proto, which resets m
// first (a Decode that declines may have set some of m's fields).
func Decode(b []byte, m proto.Message) bool {
	p, base, ok := messageOf(m)
	if !ok {
		return false
	}
	p.clear(base)
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		f := p.lookup(num)
		if f == nil || f.wire != wt {
			return false // an unknown field: proto keeps it
		}
		b = b[n:]
		at := unsafe.Add(base, f.offset)
		switch wt {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch f.kind {
			case protoreflect.BoolKind:
				*(*bool)(at) = v != 0
			case protoreflect.Int32Kind, protoreflect.EnumKind:
				*(*int32)(at) = int32(v)
			case protoreflect.Sint32Kind:
				*(*int32)(at) = int32(protowire.DecodeZigZag(v & math.MaxUint32))
			case protoreflect.Int64Kind:
				*(*int64)(at) = int64(v)
			case protoreflect.Sint64Kind:
				*(*int64)(at) = protowire.DecodeZigZag(v)
			case protoreflect.Uint32Kind:
				*(*uint32)(at) = uint32(v)
			case protoreflect.Uint64Kind:
				*(*uint64)(at) = v
			}
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			*(*uint32)(at) = v // fixed32, sfixed32 and float alike: the bits
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			*(*uint64)(at) = v
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			if f.kind == protoreflect.StringKind {
				if !utf8.Valid(v) {
					return false // proto's error names the field
				}
				*(*string)(at) = string(v)
			} else {
				*(*[]byte)(at) = append([]byte(nil), v...)
			}
		}
	}
	return true
}
