// Package codecs maps Content-Types to the codecs the RPC client and server use.
package codecs

import (
	"bytes"
	stdjson "encoding/json"
	"io"
	"mime"
	"sort"
	"strings"
	"sync"

	"github.com/seed-b3892490/micro/codec"
	mbytes "github.com/seed-b3892490/micro/codec/bytes"
	"github.com/seed-b3892490/micro/codec/json"
	"github.com/seed-b3892490/micro/codec/proto"
	"github.com/seed-b3892490/micro/codec/text"
	"github.com/seed-b3892490/micro/internal/fastjson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Builtin returns the NewCodec of every built-in Content-Type.
func Builtin() map[string]codec.NewCodec {
	return map[string]codec.NewCodec{
		"application/json":         json.NewCodec,
		"application/protobuf":     proto.NewCodec,
		"application/x-protobuf":   proto.NewCodec,
		"application/octet-stream": mbytes.NewCodec,
		"text/plain":               text.NewCodec,
	}
}

// builtinNew is Builtin's map, made once for lookups (Builtin returns a copy callers
// may change).
var builtinNew = Builtin()

// wire marshalers of the built-in Content-Types. JSON bodies end with a newline, as Go
// Micro's JSON codec writes them.
var builtin = map[string]codec.Marshaler{
	"application/json":         jsonLine{},
	"application/protobuf":     protoWire{},
	"application/x-protobuf":   protoWire{},
	"application/octet-stream": mbytes.Marshaler{},
	"text/plain":               text.Marshaler{},
}

type jsonLine struct{ json.Marshaler }

// linePool recycles the buffers JSON bodies are encoded into.
var linePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (j jsonLine) Marshal(v interface{}) ([]byte, error) {
	if _, isProto := v.(protoreflect.ProtoMessage); !isProto {
		if b, ok := fastjson.Append(make([]byte, 0, 64), v); ok {
			return append(b, '\n'), nil
		}
		// encoding/json's Encoder ends the value with the newline itself: one copy out
		// of a pooled buffer instead of Marshal's result grown by a byte
		buf := linePool.Get().(*bytes.Buffer)
		buf.Reset()
		enc := stdjson.NewEncoder(buf)
		if err := enc.Encode(v); err != nil {
			linePool.Put(buf)
			return nil, err
		}
		out := bytes.Clone(buf.Bytes())
		if buf.Cap() <= 64<<10 {
			linePool.Put(buf)
		}
		return out, nil
	}
	b, err := j.Marshaler.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// MediaType returns the media type of a Content-Type header value: lower case, without
// parameters. It returns "" for an empty or unparsable value.
func MediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
	if i := strings.IndexByte(contentType, ';'); i < 0 {
		// fast path for the common case without parameters
		if _, ok := builtin[contentType]; ok {
			return contentType
		}
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// Lookup returns the marshaler for a media type: custom codecs first, then the built-in
// ones, then extra (a package's Default codecs, which users may add to).
func Lookup(mediaType string, custom, extra map[string]codec.NewCodec) (codec.Marshaler, bool) {
	if nc, ok := custom[mediaType]; ok && nc != nil {
		return Adapt(nc), true
	}
	if m, ok := builtin[mediaType]; ok {
		return m, true
	}
	if nc, ok := extra[mediaType]; ok && nc != nil {
		return Adapt(nc), true
	}
	return nil, false
}

// NewCodec returns the NewCodec for a media type, looked up as Lookup does.
func NewCodec(mediaType string, custom, extra map[string]codec.NewCodec) (codec.NewCodec, bool) {
	if nc, ok := custom[mediaType]; ok && nc != nil {
		return nc, true
	}
	if nc, ok := builtinNew[mediaType]; ok {
		return nc, true
	}
	nc, ok := extra[mediaType]
	return nc, ok && nc != nil
}

// Supported lists the media types Lookup knows, sorted.
func Supported(custom, extra map[string]codec.NewCodec) []string {
	seen := map[string]bool{}
	for k := range builtin {
		seen[k] = true
	}
	for k := range custom {
		seen[k] = true
	}
	for k := range extra {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Adapt turns a streaming codec into a Marshaler over an in-memory buffer.
func Adapt(nc codec.NewCodec) codec.Marshaler { return adapter{nc} }

type adapter struct{ nc codec.NewCodec }

func (a adapter) Marshal(v interface{}) ([]byte, error) {
	var b Buffer
	c := a.nc(&b)
	if err := c.Write(&codec.Message{Type: codec.Response}, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (a adapter) Unmarshal(data []byte, v interface{}) error {
	b := Buffer{Buffer: bytes.NewBuffer(data)}
	c := a.nc(&b)
	var m codec.Message
	if err := c.ReadHeader(&m, codec.Request); err != nil {
		return err
	}
	return c.ReadBody(v)
}

func (a adapter) String() string { return a.nc(&Buffer{}).String() }

// Buffer is a bytes.Buffer with a no-op Close, so codecs can run over it.
type Buffer struct{ *bytes.Buffer }

// Read reads from the buffer; an unset buffer reads as empty.
func (b *Buffer) Read(p []byte) (int, error) {
	if b.Buffer == nil {
		return 0, io.EOF
	}
	return b.Buffer.Read(p)
}

// Write appends to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	if b.Buffer == nil {
		b.Buffer = new(bytes.Buffer)
	}
	return b.Buffer.Write(p)
}

// Bytes returns the buffer's unread bytes.
func (b *Buffer) Bytes() []byte {
	if b.Buffer == nil {
		return nil
	}
	return b.Buffer.Bytes()
}

// Close does nothing.
func (b *Buffer) Close() error { return nil }

// NewBuffer returns a Buffer reading b.
func NewBuffer(b []byte) *Buffer { return &Buffer{Buffer: bytes.NewBuffer(b)} }
