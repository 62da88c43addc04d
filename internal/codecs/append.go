package codecs

import (
	"bytes"
	stdjson "encoding/json"
	"sync"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/proto"
	"github.com/seed-b3892490/micro/internal/fastjson"
	"github.com/seed-b3892490/micro/internal/fastproto"
)

// appender is a wire marshaler that can encode into the caller's buffer.
type appender interface {
	marshalAppend(dst []byte, v interface{}) ([]byte, error)
}

// MarshalAppend encodes v with m. The built-in JSON and protobuf marshalers encode into
// dst's spare room, growing it if need be, and owned is true: body is the caller's, to
// reuse once it has been sent. With other marshalers body is theirs (owned false) and
// dst is untouched.
func MarshalAppend(m codec.Marshaler, dst []byte, v interface{}) (body []byte, owned bool, err error) {
	if a, ok := m.(appender); ok {
		body, err = a.marshalAppend(dst[:0], v)
		return body, err == nil, err
	}
	body, err = m.Marshal(v)
	return body, false, err
}

// maxKept is the largest buffer a caller keeps for reuse; a larger one, grown by a
// large message, is left to the garbage collector.
const maxKept = 64 << 10

// Keep returns body's buffer emptied for the next MarshalAppend, or nil when it is too
// large to keep.
func Keep(body []byte) []byte {
	if cap(body) > maxKept {
		return nil
	}
	return body[:0]
}

// bufPool recycles the buffers unary bodies are encoded into (see GetBuf).
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// GetBuf returns a pooled buffer to MarshalAppend into; PutBuf gives it back once the
// body it holds has been sent and nothing refers to it.
func GetBuf() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuf returns b to the pool. body and owned are what MarshalAppend returned for *b:
// an owned body is b's buffer, perhaps grown, and kept in its place unless too large.
func PutBuf(b *[]byte, body []byte, owned bool) {
	if owned {
		k := Keep(body)
		if k == nil {
			return
		}
		*b = k
	}
	bufPool.Put(b)
}

func (j jsonLine) marshalAppend(dst []byte, v interface{}) ([]byte, error) {
	if _, isProto := v.(protoreflect.ProtoMessage); !isProto {
		if b, ok := fastjson.Append(dst, v); ok {
			return append(b, '\n'), nil
		}
		buf := linePool.Get().(*bytes.Buffer)
		buf.Reset()
		if err := stdjson.NewEncoder(buf).Encode(v); err != nil {
			linePool.Put(buf)
			return nil, err
		}
		dst = append(dst, buf.Bytes()...)
		if buf.Cap() <= maxKept {
			linePool.Put(buf)
		}
		return dst, nil
	}
	b, err := j.Marshaler.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(append(dst, b...), '\n'), nil
}

// protoWire is the protobuf wire marshaler: proto.Marshaler, encoding into the caller's
// buffer.
type protoWire struct{ proto.Marshaler }

var appendOpts = gproto.MarshalOptions{}

func (p protoWire) marshalAppend(dst []byte, v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *proto.Message:
		return append(dst, m.Data...), nil
	case gproto.Message:
		if b, ok := fastproto.Append(dst, m); ok {
			return b, nil
		}
		return appendOpts.MarshalAppend(dst, m)
	}
	return p.Marshal(v) // its error
}
