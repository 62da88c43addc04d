// Command runner builds every benchmark peer, runs each one's server and client as
// separate processes at each number of concurrent callers, and prints a markdown table:
// calls/s, latency quantiles, allocations per call (client and server together) and
// the ratio of each row to micro's row at the same callers. Run it from bench/:
//
//	go run ./cmd/runner -duration 3s -callers 1,16,128
//	go run ./cmd/runner -smoke
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peer is one row kind of the table: a binary and the payload its client sends.
type peer struct {
	name    string
	dir     string // module directory, relative to bench/
	pkg     string // package to build, relative to dir
	payload string
	ref     string // the micro row this one is compared to
	about   string
}

var peers = []peer{
	{"micro-json", "micro", ".", "json", "micro-json", "Go Micro v5 Greeter code built against micro, JSON"},
	{"micro-proto", "micro", ".", "proto", "micro-proto", "Go Micro v5 Greeter code built against micro, protobuf"},
	{"gomicro-json", "gomicro", ".", "json", "micro-json", "the same code against go-micro.dev/v5 v5.12.0, JSON"},
	{"gomicro-proto", "gomicro", ".", "proto", "micro-proto", "the same code against go-micro.dev/v5 v5.12.0, protobuf"},
	{"grpc-json", ".", "./peers/grpc", "json", "micro-json", "grpc-go, JSON codec"},
	{"grpc-proto", ".", "./peers/grpc", "proto", "micro-proto", "grpc-go, protobuf"},
	{"nethttp", ".", "./peers/nethttp", "json", "micro-json", "net/http, JSON"},
	{"tcp", ".", "./peers/tcp", "json", "micro-json", "raw TCP length-prefixed echo"},
}

const benchModule = "github.com/seed-b3892490/micro/bench"

type options struct {
	dir      string
	duration time.Duration
	warmup   time.Duration
	max      int64
	smoke    bool
}

func main() {
	var o options
	var callersFlag, peersFlag string
	flag.StringVar(&o.dir, "dir", ".", "the bench/ directory")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured window per cell")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each window")
	flag.Int64Var(&o.max, "max", 5_000_000, "most calls per cell")
	flag.StringVar(&callersFlag, "callers", "1,16,128", "concurrent callers, comma-separated")
	flag.StringVar(&peersFlag, "peers", "", "peers to run, comma-separated (default all: "+peerNames()+")")
	flag.BoolVar(&o.smoke, "smoke", false, "quick correctness check: 200 calls per cell at 1 and 4 callers; exit non-zero on any failure")
	flag.Parse()

	if o.smoke {
		callersFlag, o.max, o.duration, o.warmup = "1,4", 200, 20*time.Second, 0
	}
	callers, err := parseInts(callersFlag)
	if err != nil {
		fatal("-callers: %v", err)
	}
	chosen, err := choosePeers(peersFlag)
	if err != nil {
		fatal("-peers: %v", err)
	}
	if err := checkDir(o.dir); err != nil {
		fatal("%v", err)
	}
	start := time.Now()
	tmp, err := os.MkdirTemp("", "micro-bench-")
	if err != nil {
		fatal("%v", err)
	}
	bins, err := build(o.dir, tmp, chosen)
	if err != nil {
		os.RemoveAll(tmp)
		fatal("build: %v", err)
	}
	fmt.Fprintf(os.Stderr, "built in %s\n", time.Since(start).Round(time.Millisecond))

	var rows []row
	failed := false
	for _, n := range callers {
		for _, p := range chosen {
			fmt.Fprintf(os.Stderr, "%-14s callers=%-4d ", p.name, n)
			r, err := runCell(bins[p.dir+"|"+p.pkg], p, n, o)
			if err == nil && r.Errors > 0 {
				err = fmt.Errorf("%d of %d calls failed: %s", r.Errors, r.Calls, r.FirstErr)
			}
			if err == nil && o.smoke && r.Calls < o.max {
				err = fmt.Errorf("only %d of %d calls made", r.Calls, o.max)
			}
			if err != nil {
				failed = true
				fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			} else {
				fmt.Fprintf(os.Stderr, "%.0f calls/s\n", r.rate())
			}
			rows = append(rows, row{peer: p, callers: n, res: r, err: err})
		}
	}
	os.RemoveAll(tmp)
	printTable(os.Stdout, rows, o)
	fmt.Fprintf(os.Stderr, "total %s\n", time.Since(start).Round(time.Millisecond))
	if failed {
		os.Exit(1)
	}
}

func peerNames() string {
	var s []string
	for _, p := range peers {
		s = append(s, p.name)
	}
	return strings.Join(s, ",")
}

func choosePeers(list string) ([]peer, error) {
	if list == "" {
		return peers, nil
	}
	var out []peer
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, p := range peers {
			if p.name == name {
				out = append(out, p)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown peer %q (known: %s)", name, peerNames())
		}
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "runner: "+format+"\n", args...)
	os.Exit(2)
}

func checkDir(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.Contains(data, []byte("module "+benchModule+"\n")) {
		return fmt.Errorf("%s is not the bench/ directory (run from bench/ or pass -dir)", dir)
	}
	return nil
}

// build compiles each distinct binary the chosen peers need into tmp. For the micro
// peers it first checks the Greeter source is the same as the Go Micro peer's, and
// regenerates micro under the go-micro.dev/v5 path (bench/micro/.gomicro).
func build(dir, tmp string, chosen []peer) (map[string]string, error) {
	bins := map[string]string{}
	for _, p := range chosen {
		key := p.dir + "|" + p.pkg
		if bins[key] != "" {
			continue
		}
		modDir := filepath.Join(dir, p.dir)
		args := []string{"build", "-o", filepath.Join(tmp, strings.ReplaceAll(p.name, "-", "_")), p.pkg}
		if p.dir == "micro" {
			if err := prepareMicro(dir); err != nil {
				return nil, err
			}
			// -mod=mod: micro's dependencies may move ahead of bench/micro/go.sum.
			args = append([]string{"build", "-mod=mod"}, args[1:]...)
		}
		t0 := time.Now()
		cmd := exec.Command("go", args...)
		cmd.Dir = modDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: go %s: %v\n%s", p.dir, strings.Join(args, " "), err, out)
		}
		fmt.Fprintf(os.Stderr, "built %s (%s) in %s\n", p.pkg, p.dir, time.Since(t0).Round(time.Millisecond))
		bins[key] = args[len(args)-2]
	}
	return bins, nil
}

func prepareMicro(dir string) error {
	a, err := os.ReadFile(filepath.Join(dir, "gomicro", "main.go"))
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "micro", "main.go"))
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) {
		return errors.New("bench/micro/main.go differs from bench/gomicro/main.go: the micro figures must come from the same Go Micro code (cp gomicro/main.go micro/)")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "micro-bench", "gomicro-v5")
	root, err := filepath.Abs(filepath.Join(dir, ".."))
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "run", "./cmd/gomicro-compat", "-out", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gomicro-compat: %v\n%s", err, b)
	}
	// gomicro-compat refuses to write inside micro's module, so the copy lives in the
	// user cache and bench/micro/.gomicro (the replace target) links to it.
	link := filepath.Join(dir, "micro", ".gomicro")
	if cur, err := os.Readlink(link); err == nil && cur == out {
		return nil
	}
	os.Remove(link)
	return os.Symlink(out, link)
}

// result is a client's RESULT line.
type result struct {
	Calls    int64   `json:"calls"`
	Errors   int64   `json:"errors"`
	FirstErr string  `json:"first_error"`
	Seconds  float64 `json:"seconds"`
	P50      int64   `json:"p50_ns"`
	P99      int64   `json:"p99_ns"`
	P999     int64   `json:"p999_ns"`
	Max      int64   `json:"max_ns"`
	Mallocs  uint64  `json:"mallocs"`

	serverMallocs uint64
}

func (r result) rate() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Calls) / r.Seconds
}

func (r result) allocs() float64 {
	if r.Calls == 0 {
		return 0
	}
	return float64(r.Mallocs+r.serverMallocs) / float64(r.Calls)
}

type row struct {
	peer    peer
	callers int
	res     result
	err     error
}

// proc is a running peer process speaking the harness protocol.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *tailBuffer
	done   chan struct{}
}

func start(bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	setDeathSignal(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, lines: make(chan string, 16), stderr: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			// Only protocol lines; a framework's log lines are dropped.
			if strings.HasPrefix(line, "ADDR ") || strings.HasPrefix(line, "M ") || line == "READY" || strings.HasPrefix(line, "RESULT ") {
				p.lines <- line
			}
		}
		close(p.lines)
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// expect waits for the next protocol line with the prefix.
func (p *proc) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				return "", fmt.Errorf("exited (%v) waiting for %q; stderr: %s", p.cmd.ProcessState, prefix, p.stderr.String())
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix)), nil
			}
		case <-t.C:
			return "", fmt.Errorf("no %q within %s; stderr: %s", prefix, timeout, p.stderr.String())
		}
	}
}

func (p *proc) send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// stop closes stdin (a server exits on EOF), and kills the process if it is still
// there after a grace period.
func (p *proc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) mallocs() (uint64, error) {
	if err := p.send("M"); err != nil {
		return 0, err
	}
	s, err := p.expect("M ", 10*time.Second)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

func runCell(bin string, p peer, callers int, o options) (result, error) {
	var r result
	srv, err := start(bin, "-mode", "server", "-addr", "127.0.0.1:0", "-payload", p.payload)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	addr, err := srv.expect("ADDR ", 30*time.Second)
	if err != nil {
		return r, fmt.Errorf("server: %v", err)
	}
	cli, err := start(bin, "-mode", "client", "-addr", addr, "-payload", p.payload,
		"-callers", strconv.Itoa(callers), "-duration", o.duration.String(),
		"-max", strconv.FormatInt(o.max, 10), "-warmup", o.warmup.String())
	if err != nil {
		return r, err
	}
	defer cli.stop()
	if _, err := cli.expect("READY", o.warmup+30*time.Second); err != nil {
		return r, fmt.Errorf("client: %v", err)
	}
	m0, err := srv.mallocs()
	if err != nil {
		return r, fmt.Errorf("server: %v", err)
	}
	if err := cli.send("GO"); err != nil {
		return r, err
	}
	line, err := cli.expect("RESULT ", o.duration+60*time.Second)
	if err != nil {
		return r, fmt.Errorf("client: %v", err)
	}
	m1, err := srv.mallocs()
	if err != nil {
		return r, fmt.Errorf("server: %v", err)
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return r, fmt.Errorf("client result %q: %v", line, err)
	}
	r.serverMallocs = m1 - m0
	return r, nil
}

// tailBuffer keeps the last few KB a process wrote to stderr, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4096:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func printTable(w io.Writer, rows []row, o options) {
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs, %s window per cell (at most %d calls), %s warm-up\n\n",
		goVersion, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.duration, o.max, o.warmup)
	fmt.Fprintln(w, "| peer | callers | calls/s | p50 | p99 | p99.9 | max | allocs/call | calls/s ÷ micro | allocs ÷ micro |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	ref := map[string]row{}
	for _, r := range rows {
		if r.err == nil {
			ref[r.peer.name+"|"+strconv.Itoa(r.callers)] = r
		}
	}
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | %d | FAILED: %s | | | | | | | |\n", r.peer.name, r.callers, oneLine(r.err.Error()))
			continue
		}
		rateRatio, allocRatio := "–", "–"
		if m, ok := ref[r.peer.ref+"|"+strconv.Itoa(r.callers)]; ok && m.res.rate() > 0 {
			rateRatio = fmt.Sprintf("%.2f×", r.res.rate()/m.res.rate())
			if m.res.allocs() > 0 {
				allocRatio = fmt.Sprintf("%.2f×", r.res.allocs()/m.res.allocs())
			}
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %.1f | %s | %s |\n",
			r.peer.name, r.callers, r.res.rate(), dur(r.res.P50), dur(r.res.P99), dur(r.res.P999), dur(r.res.Max),
			r.res.allocs(), rateRatio, allocRatio)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios compare with micro's row of the same payload (micro-proto for *-proto rows, micro-json for the rest) at the same callers.")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}
