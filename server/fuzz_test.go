package server_test

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// memSocket feeds one message to the server and records its reply.
type memSocket struct {
	in    *transport.Message
	reply *transport.Message
}

func (s *memSocket) Recv(m *transport.Message) error {
	if s.in == nil {
		return io.EOF
	}
	*m = *s.in
	s.in = nil
	return nil
}

func (s *memSocket) Send(m *transport.Message) error {
	s.reply = m
	return nil
}

func (s *memSocket) Close() error   { return nil }
func (s *memSocket) Local() string  { return "local" }
func (s *memSocket) Remote() string { return "remote" }

// FuzzServeRequest feeds arbitrary headers and bodies to the request path: every input
// gets a reply, errors are well-formed, nothing panics.
func FuzzServeRequest(f *testing.F) {
	seeds := []struct{ ct, ep, timeout, body string }{
		{"application/json", "Greeter.Hello", "", `{"name":"alice"}`},
		{"application/json", "Greeter.Hello", "1000000000", `{"name":`},
		{"application/json", "Greeter.Meta", "-1", `{"name":"Timeout"}`},
		{"application/protobuf", "Greeter.Hello", "", "\n\x05alice"},
		{"application/protobuf", "Greeter.Hello", "", "\xff\xff\xff\xff"},
		{"application/x-protobuf", "Greeter.Fail", "", ""},
		{"application/octet-stream", "Greeter.Hello", "", "raw"},
		{"text/plain", "Greeter.Hello", "", "text"},
		{"application/json; charset=utf-8", "Greeter.Panic", "", `{}`},
		{"", "Greeter.Hello", "", ""},
		{"application/xml", "Greeter.Hello", "", "<a/>"},
		{"application/json", "Hello", "x", "{}"},
		{"application/json", "A.B.C", "", "[]"},
		{"application/json", "", "", "null"},
		{"multipart/form-data; boundary=\x00", "Greeter.Hello", "", ""},
		{"application/json", "Greeter.Hello", "99999999999999999999", `{"name":"\ud800"}`},
	}
	for _, s := range seeds {
		f.Add(s.ct, s.ep, s.timeout, []byte(s.body))
	}
	srv := server.NewServer(server.Name("fuzz"), server.WithLogger(quiet), server.MaxTimeout(5*time.Millisecond))
	if err := srv.Handle(srv.NewHandler(new(testutil.Greeter))); err != nil {
		f.Fatal(err)
	}
	conn := srv.(interface{ ServeConn(transport.Socket) })
	f.Fuzz(func(t *testing.T, ct, ep, timeout string, body []byte) {
		hdr := map[string]string{headers.ContentType: ct, headers.Endpoint: ep}
		if timeout != "" {
			hdr[headers.Timeout] = timeout
		}
		sock := &memSocket{in: &transport.Message{Header: hdr, Body: body}}
		conn.ServeConn(sock)
		if sock.reply == nil {
			t.Fatal("no reply")
		}
		if v := sock.reply.Header[headers.Error]; v != "" {
			e := errors.Parse(v)
			status, _ := strconv.Atoi(sock.reply.Header[headers.Status])
			if e.Code < 400 || int(e.Code) != status {
				t.Fatalf("error %s with status %d", v, status)
			}
		}
	})
}
