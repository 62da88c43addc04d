// Command tcp is the floor: a raw TCP server that echoes 4-byte length-prefixed frames,
// and a client that sends the hello-world request body in one frame per call over one
// connection per caller and checks the echo is byte-for-byte the request. No framework,
// no codec on the server: what any RPC stack over TCP pays at least. A connection per
// caller carrying one frame after another already is a stream, so -stream changes
// nothing: the same client is the floor of the stream table too.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/seed-b3892490/micro/bench/harness"
)

const maxFrame = 1 << 20

func main() {
	f := harness.ParseFlags()
	switch f.Mode {
	case "server":
		ln, err := net.Listen("tcp", f.Addr)
		if err != nil {
			harness.Fail("listen: %v", err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go echo(c)
			}
		}()
		harness.Serve(ln.Addr().String(), func() { ln.Close() })
	case "client":
		body := []byte(`{"name":"` + harness.Name + `"}`)
		harness.RunClient(f, func(int) (harness.Call, error) {
			c, err := net.Dial("tcp", f.Addr)
			if err != nil {
				return nil, err
			}
			out := make([]byte, 4+len(body))
			binary.BigEndian.PutUint32(out, uint32(len(body)))
			copy(out[4:], body)
			in := make([]byte, 4+len(body))
			return func() error {
				if _, err := c.Write(out); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, in[:4]); err != nil {
					return err
				}
				if n := binary.BigEndian.Uint32(in); int(n) != len(body) {
					return fmt.Errorf("echo of %d bytes, sent %d", n, len(body))
				}
				if _, err := io.ReadFull(c, in[4:]); err != nil {
					return err
				}
				if !bytes.Equal(in[4:], body) {
					return errors.New("echo differs from the request")
				}
				return nil
			}, nil
		})
	default:
		harness.Fail("unknown -mode %q", f.Mode)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4+256)
	for {
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(buf)
		if n > maxFrame {
			return
		}
		if int(n)+4 > len(buf) {
			nb := make([]byte, 4+n)
			copy(nb, buf[:4])
			buf = nb
		}
		if _, err := io.ReadFull(c, buf[4:4+n]); err != nil {
			return
		}
		if _, err := c.Write(buf[:4+n]); err != nil {
			return
		}
	}
}
