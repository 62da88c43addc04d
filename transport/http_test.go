package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// echo serves l, answering every message with its body and an X-Echo header.
func echo(t *testing.T, l transport.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Accept(func(s transport.Socket) {
			var m transport.Message
			if err := s.Recv(&m); err != nil {
				return
			}
			_ = s.Send(&transport.Message{Header: map[string]string{"X-Echo": m.Header["Micro-Endpoint"], "Content-Type": "text/plain"}, Body: m.Body})
		})
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
}

func TestHTTP2RoundTrip(t *testing.T) {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := tr.Dial(l.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			body := []byte(fmt.Sprint("msg-", i))
			if err := c.Send(&transport.Message{Header: map[string]string{"Micro-Endpoint": "A.B"}, Body: body}); err != nil {
				t.Error(err)
				return
			}
			var m transport.Message
			if err := c.Recv(&m); err != nil {
				t.Error(err)
				return
			}
			if string(m.Body) != string(body) || m.Header["X-Echo"] != "A.B" || m.Header[headers.Status] != "200" {
				t.Errorf("got %v %q", m.Header, m.Body)
			}
		}(i)
	}
	wg.Wait()
}

func TestHTTP1FromPlainClient(t *testing.T) {
	tr := transport.NewHTTPTransport()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	conn, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /x HTTP/1.1\r\nHost: a\r\nMicro-Endpoint: C.D\r\nContent-Length: 5\r\n\r\nhello")
	rsp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != 200 || string(b) != "hello" || rsp.Header.Get("X-Echo") != "C.D" || rsp.Header.Get("Date") != "" {
		t.Fatalf("%d %q %v", rsp.StatusCode, b, rsp.Header)
	}
	// GET is refused with 405
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	rsp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.StatusCode != 405 || rsp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", rsp.StatusCode)
	}
}

func TestDialRefusedIsNotSent(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	tr := transport.NewHTTPTransport()
	c, err := tr.Dial(addr, transport.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(&transport.Message{Body: []byte("x")})
	if !transport.IsNotSent(err) {
		t.Fatalf("got %v", err)
	}
}

func TestServerSocketLimits(t *testing.T) {
	tr := transport.NewHTTPTransport()
	l, err := tr.Listen("127.0.0.1:0", transport.ListenLimits(transport.Limits{MaxMsgSize: 10}))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Accept(func(s transport.Socket) {
			var m transport.Message
			errs <- s.Recv(&m)
			_ = s.Send(&transport.Message{Header: map[string]string{headers.Status: "413"}})
		})
	}()
	defer func() { l.Close(); <-done }()
	rsp, err := http.Post("http://"+l.Addr(), "text/plain", strings.NewReader("01234567890"))
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if got := <-errs; got == nil || !strings.Contains(got.Error(), "exceeds 10 bytes") {
		t.Fatalf("got %v", got)
	}
}

func TestDrainWaitsForCalls(t *testing.T) {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Accept(func(s transport.Socket) {
			var m transport.Message
			_ = s.Recv(&m)
			close(started)
			<-release
			_ = s.Send(&transport.Message{Body: []byte("late")})
		})
	}()
	c, _ := tr.Dial(l.Addr())
	reply := make(chan string, 1)
	go func() {
		if err := c.Send(&transport.Message{}); err != nil {
			reply <- err.Error()
			return
		}
		var m transport.Message
		if err := c.Recv(&m); err != nil {
			reply <- err.Error()
			return
		}
		reply <- string(m.Body)
	}()
	<-started
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.(transport.Drainer).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if got := <-reply; got != "late" {
		t.Fatalf("the call in flight got %q", got)
	}
	if _, err := net.Dial("tcp", l.Addr()); err == nil {
		t.Fatal("still accepting after Drain")
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, _ := tr.Listen("127.0.0.1:0")
	go func() {
		_ = l.Accept(func(s transport.Socket) {
			var m transport.Message
			if s.Recv(&m) == nil {
				_ = s.Send(&transport.Message{Body: m.Body})
			}
		})
	}()
	defer l.Close()
	body := []byte(`{"name":"alice"}`)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, _ := tr.Dial(l.Addr())
			if err := c.Send(&transport.Message{Header: map[string]string{"Micro-Endpoint": "A.B"}, Body: body}); err != nil {
				b.Fatal(err)
			}
			var m transport.Message
			if err := c.Recv(&m); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

func ExampleNewHTTPTransport() {
	tr := transport.NewHTTPTransport()
	defer tr.CloseIdleConnections()
	l, _ := tr.Listen("127.0.0.1:0")
	go func() {
		_ = l.Accept(func(s transport.Socket) {
			var m transport.Message
			if s.Recv(&m) == nil {
				_ = s.Send(&transport.Message{Body: append([]byte("echo: "), m.Body...)})
			}
		})
	}()
	defer l.Close()
	c, _ := tr.Dial(l.Addr())
	_ = c.Send(&transport.Message{Body: []byte("hi")})
	var m transport.Message
	_ = c.Recv(&m)
	fmt.Println(string(m.Body))
	// Output: echo: hi
}
