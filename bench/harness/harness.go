// Package harness is the part every benchmark peer shares: the server side's control
// protocol (announce the address, report allocation counts, exit when stdin closes) and
// the client side's measured loop (callers, latency histogram, allocation count, one
// JSON line of results). It depends on the standard library only, so each peer module
// can replace it in without adding to its go.sum.
//
// Protocol, one line each way, on the peer's stdin and stdout (other stdout lines, such
// as a framework's log, are ignored by the runner):
//
//	server: prints "ADDR host:port" once listening; on each "M" line read prints
//	        "M <mallocs>" (runtime.MemStats.Mallocs); exits when stdin reaches EOF.
//	client: warms up, prints "READY", waits for one line, runs the measured window,
//	        prints "RESULT {json}" and exits.
//
// A client started with -stream measures the stream echo instead of the unary call:
// each caller opens one bidirectional stream while it is set up, and each of its calls
// is one message sent on that stream and its echo received and checked. The measured
// loop is the same; only what one Call does differs.
package harness

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// Request and Reply are the hello-world call's JSON bodies.
type Request struct {
	Name string `json:"name"`
}

// Reply is the hello-world reply: {"message":"Hello alice"}.
type Reply struct {
	Message string `json:"message"`
}

// Name is the name every client sends; Want is the message every reply must carry.
const (
	Name = "alice"
	Want = "Hello alice"
)

// Flags are the command line every peer binary takes.
type Flags struct {
	Mode     string
	Addr     string
	Payload  string
	Stream   bool
	Callers  int
	Duration time.Duration
	Max      int64
	Warmup   time.Duration
}

// ParseFlags parses the common command line.
func ParseFlags() Flags {
	var f Flags
	flag.StringVar(&f.Mode, "mode", "server", "server or client")
	flag.StringVar(&f.Addr, "addr", "127.0.0.1:0", "server: address to listen on; client: address to call")
	flag.StringVar(&f.Payload, "payload", "json", "json or proto (peers that offer both)")
	flag.BoolVar(&f.Stream, "stream", false, "client: one bidirectional stream per caller, each call one message echoed on it")
	flag.IntVar(&f.Callers, "callers", 1, "client: concurrent callers")
	flag.DurationVar(&f.Duration, "duration", 3*time.Second, "client: measured window")
	flag.Int64Var(&f.Max, "max", 5_000_000, "client: most calls in the measured window")
	flag.DurationVar(&f.Warmup, "warmup", 300*time.Millisecond, "client: warm-up before the window")
	flag.Parse()
	return f
}

// Fail prints an error and exits non-zero.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// ProfileEnv names the environment variable that turns on CPU profiling: a peer started
// with BENCH_CPUPROFILE=path writes a CPU profile there, a server over its whole life and
// a client over its measured window.
const ProfileEnv = "BENCH_CPUPROFILE"

// startProfile starts the CPU profile ProfileEnv asks for and returns its stop function
// (a no-op when the variable is unset).
func startProfile() func() {
	path := os.Getenv(ProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		Fail("profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		Fail("profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// Serve runs the server side of the protocol: addr is where the peer listens, stop
// (may be nil) is called when stdin closes, before the process exits.
func Serve(addr string, stop func()) {
	stopProfile := startProfile()
	fmt.Printf("ADDR %s\n", addr)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "M" {
			fmt.Printf("M %d\n", mallocs())
		}
	}
	if stop != nil {
		stop()
	}
	stopProfile()
	os.Exit(0)
}

// Result is what a client reports for its measured window.
type Result struct {
	Go         string  `json:"go"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	Stream     bool    `json:"stream"`
	Callers    int     `json:"callers"`
	Calls      int64   `json:"calls"`
	Errors     int64   `json:"errors"`
	FirstErr   string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	P50        int64   `json:"p50_ns"`
	P99        int64   `json:"p99_ns"`
	P999       int64   `json:"p999_ns"`
	Max        int64   `json:"max_ns"`
	Mallocs    uint64  `json:"mallocs"`
	CPU        int64   `json:"cpu_ns"` // the client process's user and system CPU time in the window
}

// Call makes one call and checks its reply; an error counts the call as failed. With
// -stream, one call is one message sent on the caller's stream and its echo received.
type Call func() error

// NewCaller returns caller i's Call (a peer may give each caller its own connection;
// with -stream it opens caller i's stream).
type NewCaller func(i int) (Call, error)

// Histogram buckets: values below 128 ns are exact; above, 64 buckets per power of two
// (under 1.6% error).
const nBuckets = 64 * 60

type histogram [nBuckets]uint64

func bucket(d int64) int {
	if d < 128 {
		if d < 0 {
			return 0
		}
		return int(d)
	}
	e := bits.Len64(uint64(d)) - 7
	m := int(d >> e) // in [64, 128)
	return e*64 + m
}

func bucketValue(b int) int64 {
	if b < 128 {
		return int64(b)
	}
	e := b/64 - 1
	m := int64(b - e*64)
	return m<<e + (int64(1)<<e)/2
}

// RunClient runs the client side of the protocol with f.Callers callers and exits.
func RunClient(f Flags, newCaller NewCaller) {
	if f.Callers < 1 {
		Fail("callers must be at least 1")
	}
	calls := make([]Call, f.Callers)
	for i := range calls {
		c, err := newCaller(i)
		if err != nil {
			Fail("caller %d: %v", i, err)
		}
		calls[i] = c
	}
	// Warm-up: every caller calls until the warm-up time is over (at least once), so
	// connections are open and pools are filled before the window.
	var wg sync.WaitGroup
	warmEnd := time.Now().Add(f.Warmup)
	var warmErr atomic.Value
	for i := range calls {
		wg.Add(1)
		go func(c Call) {
			defer wg.Done()
			for {
				if err := c(); err != nil {
					warmErr.CompareAndSwap(nil, err.Error())
				}
				if !time.Now().Before(warmEnd) {
					return
				}
			}
		}(calls[i])
	}
	wg.Wait()
	hists := make([]*histogram, f.Callers)
	for i := range hists {
		hists[i] = new(histogram)
	}
	errs := make([]int64, f.Callers)
	maxes := make([]int64, f.Callers)
	firstErrs := make([]string, f.Callers)
	runtime.GC()
	fmt.Println("READY")
	bufio.NewReader(os.Stdin).ReadString('\n')

	var n atomic.Int64
	var stop atomic.Bool
	stopProfile := startProfile()
	before := mallocs()
	cpu0 := cpuTime()
	start := time.Now()
	timer := time.AfterFunc(f.Duration, func() { stop.Store(true) })
	for i := range calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, h := calls[i], hists[i]
			for !stop.Load() && n.Add(1) <= f.Max {
				t0 := time.Now()
				err := c()
				d := int64(time.Since(t0))
				h[bucket(d)]++
				if d > maxes[i] {
					maxes[i] = d
				}
				if err != nil {
					if errs[i] == 0 {
						firstErrs[i] = err.Error()
					}
					errs[i]++
				}
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := mallocs()
	cpu := cpuTime() - cpu0
	timer.Stop()
	stopProfile()

	var total histogram
	var r Result
	for i, h := range hists {
		for b, c := range h {
			total[b] += c
		}
		r.Errors += errs[i]
		r.Max = max(r.Max, maxes[i])
		if r.FirstErr == "" && firstErrs[i] != "" {
			r.FirstErr = firstErrs[i]
		}
	}
	for _, c := range total {
		r.Calls += int64(c)
	}
	if r.FirstErr == "" {
		if s, ok := warmErr.Load().(string); ok {
			r.FirstErr = "warm-up: " + s
		}
	}
	r.Go = runtime.Version()
	r.GOMAXPROCS = runtime.GOMAXPROCS(0)
	r.Stream = f.Stream
	r.Callers = f.Callers
	r.Seconds = elapsed.Seconds()
	r.Mallocs = after - before
	r.CPU = cpu
	r.P50 = quantile(&total, r.Calls, 0.50)
	r.P99 = quantile(&total, r.Calls, 0.99)
	r.P999 = quantile(&total, r.Calls, 0.999)
	// A bucket's midpoint may lie above the slowest call in it.
	r.P50, r.P99, r.P999 = min(r.P50, r.Max), min(r.P99, r.Max), min(r.P999, r.Max)
	out, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", out)
	os.Exit(0)
}

func quantile(h *histogram, n int64, q float64) int64 {
	if n == 0 {
		return 0
	}
	rank := int64(q * float64(n))
	if rank >= n {
		rank = n - 1
	}
	var seen int64
	for b, c := range h {
		seen += int64(c)
		if seen > rank {
			return bucketValue(b)
		}
	}
	return bucketValue(nBuckets - 1)
}
