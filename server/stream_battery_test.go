package server_test

import (
	"context"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/server"
)

// TestA2StreamingLoad runs echo streams carrying 1–64 KiB messages (crossing HTTP/2 frame
// boundaries) with sequence numbers and checksums: nothing is lost, reordered or
// corrupted.
func TestA2StreamingLoad(t *testing.T) {
	testutil.Scenario(t)
	streams, dur := 20, 3*time.Second
	if testutil.Long() {
		streams, dur = 200, 60*time.Second
	}
	reg := registry.NewMemoryRegistry()
	testutil.NewServer(t, reg, "streamer", new(testutil.Streamer))
	c := testutil.NewClient(t, reg)
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := c.Stream(context.Background(), c.NewRequest("streamer", "Streamer.Echo", nil, client.WithContentType("application/protobuf")))
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			sentAt := sync.Map{}
			go func() {
				rng := rand.New(rand.NewPCG(uint64(i), 1))
				tick := time.NewTicker(20 * time.Millisecond) // 50 messages/s
				defer tick.Stop()
				end := time.Now().Add(dur)
				for seq := int64(1); time.Now().Before(end); seq++ {
					payload := make([]byte, 1024+rng.IntN(63*1024))
					for j := range payload {
						payload[j] = byte(rng.Uint32())
					}
					sentAt.Store(seq, time.Now())
					if err := st.Send(&testproto.Echo{Seq: seq, Payload: payload, Text: strconv.FormatUint(uint64(crc32.ChecksumIEEE(payload)), 10)}); err != nil {
						t.Error(err)
						return
					}
					<-tick.C
				}
				_ = st.CloseSend()
			}()
			for want := int64(1); ; want++ {
				var m testproto.Echo
				err := st.Recv(&m)
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if m.Seq != want {
					t.Errorf("stream %d: message %d arrived as %d", i, want, m.Seq)
					return
				}
				if strconv.FormatUint(uint64(crc32.ChecksumIEEE(m.Payload)), 10) != m.Text {
					t.Errorf("stream %d: message %d corrupted", i, want)
					return
				}
				if v, ok := sentAt.Load(m.Seq); ok {
					mu.Lock()
					latencies = append(latencies, time.Since(v.(time.Time)))
					mu.Unlock()
				}
			}
		}(i)
	}
	wg.Wait()
	if len(latencies) == 0 {
		t.Fatal("no message went through")
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d messages, p99 %s", len(latencies), p99)
	if !testutil.Race && p99 > 50*time.Millisecond {
		t.Fatalf("p99 %s over 50 ms", p99)
	}
}

// TestC3StopWithOpenStreams stops a server with 50 open streams: each client stream
// ends with a typed error within the drain timeout.
func TestC3StopWithOpenStreams(t *testing.T) {
	reg := registry.NewMemoryRegistry()
	srv := testutil.NewServer(t, reg, "streamer", new(testutil.Streamer), server.DrainTimeout(time.Second))
	c := testutil.NewClient(t, reg)
	var sts []client.Stream
	for i := 0; i < 50; i++ {
		st := openStream(t, c, context.Background(), "Streamer.Echo", nil, "application/json")
		if err := st.Send(&testproto.Echo{Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if err := st.Recv(new(testproto.Echo)); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	start := time.Now()
	ended := make(chan error, len(sts))
	for _, st := range sts {
		go func(st client.Stream) { ended <- st.Recv(new(testproto.Echo)) }(st)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for range sts {
		select {
		case err := <-ended:
			if err != io.EOF && errors.Code(err) != 503 {
				t.Fatalf("a stream ended with %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("a stream did not end")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("streams ended %s after the stop began", d)
	}
}
