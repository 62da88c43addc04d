package connmux_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/connmux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestHTTPBesideAnotherProtocol serves HTTP and a toy protocol ("MICR" + line echo) on
// one port.
func TestHTTPBesideAnotherProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := connmux.New(ln, time.Second)
	toy := m.Match(func(p []byte) bool { return bytes.Equal(p, []byte("MICR")) }, 4)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "http ok "+r.Proto) })}
	done := make(chan struct{}, 3)
	go func() { _ = srv.Serve(m.Fallback()); done <- struct{}{} }()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			c, err := toy.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "toy:"+line)
			}()
		}
	}()
	go func() { _ = m.Serve(); done <- struct{}{} }()

	rsp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if string(b) != "http ok HTTP/1.1" {
		t.Fatalf("http: %q", b)
	}
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: h2}
	rsp, err = (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rsp.Body)
	rsp.Body.Close()
	tr.CloseIdleConnections()
	if string(b) != "http ok HTTP/2.0" {
		t.Fatalf("h2c: %q", b)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "MICRhello\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if line != "toy:MICRhello\n" {
		t.Fatalf("toy: %q", line)
	}
	// a silent connection goes to the fallback after the timeout; Close cuts it off
	silent, _ := net.Dial("tcp", ln.Addr().String())
	defer silent.Close()
	http.DefaultClient.CloseIdleConnections()
	_ = m.Close()
	_ = srv.Close()
	for i := 0; i < 3; i++ {
		<-done
	}
	if !strings.Contains(ln.Addr().String(), "127.0.0.1") {
		t.Fatal(ln.Addr())
	}
}
