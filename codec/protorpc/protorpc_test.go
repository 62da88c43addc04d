package protorpc_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/codec"
	"github.com/seed-b3892490/micro/codec/protorpc"
	"github.com/seed-b3892490/micro/internal/testproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rwc struct{ *bytes.Buffer }

func (rwc) Close() error { return nil }

func TestRoundTrip(t *testing.T) {
	buf := rwc{new(bytes.Buffer)}
	c := protorpc.NewCodec(buf)
	if err := c.Write(&codec.Message{Type: codec.Request, Endpoint: "Greeter.Hello", Id: "42"}, &testproto.Request{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&codec.Message{Type: codec.Response, Endpoint: "Greeter.Hello", Id: "42", Error: "boom"}, &testproto.Response{Message: "ignored"}); err != nil {
		t.Fatal(err)
	}
	var m codec.Message
	var r testproto.Request
	if err := c.ReadHeader(&m, codec.Request); err != nil || m.Endpoint != "Greeter.Hello" || m.Id != "42" {
		t.Fatalf("%+v %v", m, err)
	}
	if err := c.ReadBody(&r); err != nil || r.Name != "alice" {
		t.Fatal(err)
	}
	if err := c.ReadHeader(&m, codec.Response); err != nil || m.Error != "boom" {
		t.Fatalf("%+v %v", m, err)
	}
	var rsp testproto.Response
	if err := c.ReadBody(&rsp); err != nil || rsp.Message != "" {
		t.Fatal("an error response carried a body")
	}
}

// TestLyingLengths: a netstring claiming 4 GiB is refused before allocation; a truncated
// one is an unexpected EOF.
func TestLyingLengths(t *testing.T) {
	if _, err := protorpc.ReadNetString(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})); !errors.Is(err, protorpc.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := protorpc.ReadNetString(bytes.NewReader([]byte{0, 0, 0, 9, 1})); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	var seed bytes.Buffer
	_ = protorpc.NewCodec(rwc{&seed}).Write(&codec.Message{Type: codec.Request, Endpoint: "A.B", Id: "1"}, &testproto.Request{Name: "x"})
	for _, s := range [][]byte{seed.Bytes(), {}, {0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 2, 0x0a, 0xff}, {0, 0, 0, 3, 0x11, 1, 2}, {0, 0, 0, 5, 0x0a, 3, 'A', '.', 'B', 0, 0, 0, 1, 0xff}, {0, 0, 0, 1, 0x7f}, {0, 0, 0, 2, 0x0a, 0x00, 0, 0, 0, 0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := protorpc.NewCodec(rwc{bytes.NewBuffer(data)})
		var m codec.Message
		if err := c.ReadHeader(&m, codec.Request); err != nil {
			return
		}
		var r testproto.Request
		_ = c.ReadBody(&r)
	})
}

func ExampleWriteNetString() {
	var b bytes.Buffer
	_, _ = protorpc.WriteNetString(&b, []byte("hi"))
	data, _ := protorpc.ReadNetString(&b)
	fmt.Println(string(data))
	// Output: hi
}
