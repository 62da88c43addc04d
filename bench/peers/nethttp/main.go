// Command nethttp is the hello-world over plain net/http: POST /greeter/hello with a
// JSON body, a JSON reply, keep-alive connections (one idle connection kept per caller).
// It has no stream mode: -stream is refused.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/seed-b3892490/micro/bench/harness"
)

func hello(w http.ResponseWriter, r *http.Request) {
	var req harness.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(harness.Reply{Message: "Hello " + req.Name})
}

func main() {
	f := harness.ParseFlags()
	switch f.Mode {
	case "server":
		ln, err := net.Listen("tcp", f.Addr)
		if err != nil {
			harness.Fail("listen: %v", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /greeter/hello", hello)
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		harness.Serve(ln.Addr().String(), func() { srv.Close() })
	case "client":
		if f.Stream {
			harness.Fail("nethttp has no stream mode")
		}
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: f.Callers, MaxIdleConns: f.Callers}}
		url := "http://" + f.Addr + "/greeter/hello"
		harness.RunClient(f, func(int) (harness.Call, error) {
			return func() error {
				body, _ := json.Marshal(harness.Request{Name: harness.Name})
				rsp, err := hc.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					return err
				}
				defer rsp.Body.Close()
				if rsp.StatusCode != http.StatusOK {
					io.Copy(io.Discard, rsp.Body)
					return fmt.Errorf("status %s", rsp.Status)
				}
				var rep harness.Reply
				if err := json.NewDecoder(rsp.Body).Decode(&rep); err != nil {
					return err
				}
				io.Copy(io.Discard, rsp.Body)
				if rep.Message != harness.Want {
					return fmt.Errorf("reply %q", rep.Message)
				}
				return nil
			}, nil
		})
	default:
		harness.Fail("unknown -mode %q", f.Mode)
	}
}
