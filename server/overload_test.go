package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
	"github.com/seed-b3892490/micro/transport/headers"
)

// Busy holds each call for Delay, counting the handlers running at once.
type Busy struct {
	Delay        time.Duration
	running, top atomic.Int64
}

// Work takes Delay.
func (b *Busy) Work(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	n := b.running.Add(1)
	defer b.running.Add(-1)
	for {
		top := b.top.Load()
		if n <= top || b.top.CompareAndSwap(top, n) {
			break
		}
	}
	select {
	case <-time.After(b.Delay):
	case <-ctx.Done():
	}
	rsp.Message = "done"
	return nil
}

// pct returns the p-th percentile of d (sorting it).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)*p/100]
}

func p99(d []time.Duration) time.Duration { return pct(d, 99) }

// TestB9Overload is battery row B9: a server capped at 100 concurrent handlers, with a
// 100 ms handler, under more callers than that (CI 200 for 2 s, the long tier 500 for
// 20 s): no more than 100 handlers ever run at once; the excess is refused at once with
// 503 and Micro-Not-Started, so that clients can take it elsewhere (a refused caller here
// waits 50 ms before it calls again, as it would while another node served it). That a
// refusal never waits for a slot is TestB9RefusedWithoutQueueing. The battery's latency
// figures (refusals under 5 ms and admitted calls under 150 ms at
// p99) are for callers in another process; here they share two cores with the server,
// so the test logs them and does not judge them.
func TestB9Overload(t *testing.T) {
	testutil.Scenario(t)
	callers, run := 200, 2*time.Second
	if testutil.Long() {
		callers, run = 500, 20*time.Second
	}
	b := &Busy{Delay: 100 * time.Millisecond}
	srv := testutil.NewServer(t, registry.NewMemoryRegistry(), "busy", b, server.MaxConcurrent(100), server.WithLogger(quiet))
	addr := srv.Options().Address
	tr := &http.Transport{MaxIdleConnsPerHost: callers, MaxConnsPerHost: callers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var mu sync.Mutex
	var admitted, refused []time.Duration
	var other atomic.Int64
	stop := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 1000 && time.Now().Before(stop); n++ {
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr, bytes.NewReader([]byte(`{"name":"x"}`)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Micro-Endpoint", "Busy.Work")
				start := time.Now()
				rsp, err := hc.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, rsp.Body)
				rsp.Body.Close()
				d := time.Since(start)
				mu.Lock()
				switch {
				case rsp.StatusCode == 200:
					admitted = append(admitted, d)
				case rsp.StatusCode == 503 && rsp.Header.Get(headers.NotStarted) == "overloaded":
					refused = append(refused, d)
					mu.Unlock()
					time.Sleep(50 * time.Millisecond) // a refused client goes elsewhere a while
					continue
				default:
					other.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d admitted (p99 %s), %d refused (p50 %s, p99 %s), %d other; at most %d handlers at once",
		len(admitted), p99(admitted), len(refused), pct(refused, 50), p99(refused), other.Load(), b.top.Load())
	if top := b.top.Load(); top > 100 {
		t.Fatalf("%d handlers ran at once, over the cap of 100", top)
	}
	if other.Load() > 0 {
		t.Fatalf("%d requests neither served nor refused as overloaded", other.Load())
	}
	if len(admitted) == 0 || len(refused) == 0 {
		t.Fatalf("%d admitted, %d refused: the cap did not shape the load", len(admitted), len(refused))
	}
}

// Held holds each call until released, counting the handlers running.
type Held struct {
	release chan struct{}
	running atomic.Int64
}

// Work waits for the release.
func (h *Held) Work(ctx context.Context, req *testproto.Request, rsp *testproto.Response) error {
	h.running.Add(1)
	defer h.running.Add(-1)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil
}

// A server at its cap refuses the excess at once, never queueing it for a free slot:
// with every slot held, each extra request is answered 503 overloaded while the slots
// are still held (B9's "refused at once", without a clock).
func TestB9RefusedWithoutQueueing(t *testing.T) {
	const limit = 20
	h := &Held{release: make(chan struct{})}
	srv := testutil.NewServer(t, registry.NewMemoryRegistry(), "held", h, server.MaxConcurrent(limit), server.WithLogger(quiet))
	addr := srv.Options().Address
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * limit}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	call := func() (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr, bytes.NewReader([]byte(`{"name":"x"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Micro-Endpoint", "Held.Work")
		rsp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer rsp.Body.Close()
		_, _ = io.Copy(io.Discard, rsp.Body)
		return rsp.StatusCode, rsp.Header.Get(headers.NotStarted), nil
	}
	held := make(chan error, limit)
	for i := 0; i < limit; i++ {
		go func() {
			code, _, err := call()
			if err == nil && code != 200 {
				err = fmt.Errorf("a held call answered %d", code)
			}
			held <- err
		}()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return h.running.Load() == limit }, "every slot taken")
	for i := 0; i < 10; i++ {
		code, why, err := call()
		if err != nil || code != 503 || why != "overloaded" {
			t.Fatalf("extra call %d with every slot held: %d %q %v", i, code, why, err)
		}
		if n := h.running.Load(); n != limit {
			t.Fatalf("%d handlers running, want the %d held", n, limit)
		}
	}
	close(h.release)
	for i := 0; i < limit; i++ {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
}
