package jsonrpc_test

import (
	"bytes"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/jsonrpc"
	"github.com/seed-b3892490/micro/internal/testproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rwc struct{ *bytes.Buffer }

func (rwc) Close() error { return nil }

func buffer(s string) rwc { return rwc{bytes.NewBufferString(s)} }

func TestRequestRoundTrip(t *testing.T) {
	buf := buffer("")
	c := jsonrpc.NewCodec(buf)
	if err := c.Write(&codec.Message{Type: codec.Request, Endpoint: "Greeter.Hello", Id: "7"}, &testproto.Request{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	var m codec.Message
	if err := c.ReadHeader(&m, codec.Request); err != nil {
		t.Fatal(err)
	}
	var r testproto.Request
	if err := c.ReadBody(&r); err != nil || m.Endpoint != "Greeter.Hello" || m.Id != "7" || r.Name != "alice" {
		t.Fatalf("%+v %v %v", m, r.Name, err)
	}
}

func TestGoMicroShapes(t *testing.T) {
	c := jsonrpc.NewCodec(buffer(`{"method":"Helloworld.Greeting","params":[{"name":"alice"}],"id":1}`))
	var m codec.Message
	if err := c.ReadHeader(&m, codec.Request); err != nil || m.Id != "1" || m.Method != "Helloworld.Greeting" {
		t.Fatalf("%+v %v", m, err)
	}
	out := buffer("")
	w := jsonrpc.NewCodec(out)
	_ = w.Write(&codec.Message{Type: codec.Response, Id: m.Id}, map[string]string{"message": "Hello alice"})
	if got := out.String(); got != "{\"id\":\"1\",\"result\":{\"message\":\"Hello alice\"},\"error\":null}\n" {
		t.Fatalf("%q", got)
	}
	out.Reset()
	_ = w.Write(&codec.Message{Type: codec.Response, Id: "2", Error: "boom"}, map[string]string{"x": "y"})
	if got := out.String(); got != "{\"id\":\"2\",\"result\":null,\"error\":\"boom\"}\n" {
		t.Fatalf("%q", got)
	}
	var rm codec.Message
	if err := jsonrpc.NewCodec(buffer(out.String())).ReadHeader(&rm, codec.Response); err != nil || rm.Error != "boom" || rm.Id != "2" {
		t.Fatalf("%+v %v", rm, err)
	}
}

func TestBadEnvelopes(t *testing.T) {
	for _, s := range []string{``, `{`, `[]`, `{"params":[{}]}`, `{"method":"A.B","params":[1,2]}`, `{"method":5}`} {
		var m codec.Message
		if err := jsonrpc.NewCodec(buffer(s)).ReadHeader(&m, codec.Request); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{`{"method":"A.B","params":[{"name":"x"}],"id":1}`, `{"method":"A.B","params":[],"id":"s"}`, `{"method":"A.B"}`, `{"method":"A.B","params":[null],"id":null}`, `{`, `[]`, `null`, `{"method":"A.B","params":[{"name":5}]}`, `{"id":{"a":1},"method":"x"}`, `{"method":"\u0000","params":[[[[[]]]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := jsonrpc.NewCodec(rwc{bytes.NewBuffer(data)})
		var m codec.Message
		if err := c.ReadHeader(&m, codec.Request); err != nil {
			return
		}
		var r testproto.Request
		_ = c.ReadBody(&r)
		out := buffer("")
		if err := jsonrpc.NewCodec(out).Write(&codec.Message{Type: codec.Response, Id: m.Id}, &r); err != nil {
			t.Fatal(err)
		}
	})
}

func ExampleNewCodec() {
	var out bytes.Buffer
	c := jsonrpc.NewCodec(rwc{&out})
	_ = c.Write(&codec.Message{Type: codec.Response, Id: "1"}, map[string]string{"message": "Hello alice"})
	fmt.Print(out.String())
	// Output: {"id":"1","result":{"message":"Hello alice"},"error":null}
}
