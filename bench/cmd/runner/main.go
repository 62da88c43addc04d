// Command runner builds every benchmark peer, runs each one's server and client as
// separate processes at each number of concurrent callers, and prints markdown tables,
// one for the unary call and one for the bidirectional stream echo: calls (messages)
// per second, latency quantiles, allocations per call (client and server together) and
// the ratio of each row to micro's row at the same callers. Run it from bench/:
//
//	go run ./cmd/runner -duration 3s -callers 1,16,128
//	go run ./cmd/runner -mode stream -peers micro-json,grpc-json
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peer is one row kind of the tables: a binary and the payload its client sends.
type peer struct {
	name      string
	dir       string // module directory, relative to bench/
	pkg       string // package to build, relative to dir
	payload   string
	ref       string   // the micro row this one is compared to
	stream    bool     // has the stream echo
	clientEnv []string // added to the client's environment
	about     string
}

// nativeEnv is the variable that makes micro's client use its HTTP/2 path instead of
// the native protocol. The runner drops it from the environment it passes on, so that
// only the micro-http-* clients get it.
const nativeEnv = "MICRO_NATIVE"

var peers = []peer{
	{"micro-json", "micro", ".", "json", "micro-json", true, nil, "Go Micro v5 Greeter code built against micro, JSON, micro's default client path"},
	{"micro-proto", "micro", ".", "proto", "micro-proto", true, nil, "the same, protobuf"},
	{"micro-http-json", "micro", ".", "json", "micro-json", true, []string{nativeEnv + "=0"}, "micro-json's binary, client started with MICRO_NATIVE=0 (HTTP/2 path)"},
	{"micro-http-proto", "micro", ".", "proto", "micro-proto", true, []string{nativeEnv + "=0"}, "micro-proto's binary, client started with MICRO_NATIVE=0 (HTTP/2 path)"},
	{"gomicro-json", "gomicro", ".", "json", "micro-json", true, nil, "the same Greeter code against go-micro.dev/v5 v5.12.0, JSON"},
	{"gomicro-proto", "gomicro", ".", "proto", "micro-proto", true, nil, "the same, protobuf"},
	{"grpc-json", ".", "./peers/grpc", "json", "micro-json", true, nil, "grpc-go, hand-written ServiceDesc, JSON codec"},
	{"grpc-proto", ".", "./peers/grpc", "proto", "micro-proto", true, nil, "grpc-go, protobuf"},
	{"nethttp", ".", "./peers/nethttp", "json", "micro-json", false, nil, "net/http, JSON (unary only)"},
	{"tcp", ".", "./peers/tcp", "json", "micro-json", true, nil, "raw TCP length-prefixed echo, one connection per caller (the floor)"},
}

// modes are the two tables: "unary" calls and "stream" echo messages.
var modes = []string{"unary", "stream"}

const benchModule = "github.com/seed-b3892490/micro/bench"

type options struct {
	dir      string
	duration time.Duration
	warmup   time.Duration
	max      int64
	smoke    bool
	rounds   int
}

func main() {
	var o options
	var callersFlag, peersFlag, modeFlag string
	flag.StringVar(&o.dir, "dir", ".", "the bench/ directory")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured window per cell")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each window")
	flag.Int64Var(&o.max, "max", 5_000_000, "most calls per cell")
	flag.StringVar(&callersFlag, "callers", "1,16,128", "concurrent callers, comma-separated")
	flag.StringVar(&peersFlag, "peers", "", "peers to run, comma-separated (default all: "+peerNames()+")")
	flag.StringVar(&modeFlag, "mode", "both", "unary, stream or both: the unary call, the bidirectional stream echo, or both tables")
	flag.IntVar(&o.rounds, "rounds", 1, "times every cell is measured, round-robin (every cell once, then again): the table shows each cell's fastest round and the range of its rates, so that a machine whose speed drifts does not decide a ratio")
	flag.BoolVar(&o.smoke, "smoke", false, "quick correctness check: 200 calls (messages) per cell at 1 and 4 callers; exit non-zero on any failure")
	flag.Parse()

	if o.smoke {
		callersFlag, o.max, o.duration, o.warmup, o.rounds = "1,4", 200, 20*time.Second, 0, 1
	}
	if o.rounds < 1 {
		fatal("-rounds: %d is not a positive count", o.rounds)
	}
	callers, err := parseInts(callersFlag)
	if err != nil {
		fatal("-callers: %v", err)
	}
	chosen, err := choosePeers(peersFlag)
	if err != nil {
		fatal("-peers: %v", err)
	}
	var runModes []string
	switch modeFlag {
	case "both":
		runModes = modes
	case "unary", "stream":
		runModes = []string{modeFlag}
	default:
		fatal("-mode: %q is not unary, stream or both", modeFlag)
	}
	type cell struct {
		mode    string
		callers int
		peer    peer
	}
	var cells []cell
	for _, mode := range runModes {
		for _, n := range callers {
			for _, p := range chosen {
				if mode == "stream" && !p.stream {
					continue
				}
				cells = append(cells, cell{mode, n, p})
			}
		}
	}
	if len(cells) == 0 {
		fatal("nothing to run: none of the chosen peers has -mode %s", modeFlag)
	}
	if v, ok := os.LookupEnv(nativeEnv); ok {
		fmt.Fprintf(os.Stderr, "runner: ignoring %s=%s from the environment: only the micro-http-* clients get %s=0\n", nativeEnv, v, nativeEnv)
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

	measured := make([][]row, len(cells)) // each cell's rounds
	failed := false
	for round := 1; round <= o.rounds; round++ {
		for i, c := range cells {
			p, n := c.peer, c.callers
			unit := unitOf(c.mode)
			if o.rounds > 1 {
				fmt.Fprintf(os.Stderr, "round %d/%d ", round, o.rounds)
			}
			fmt.Fprintf(os.Stderr, "%-6s %-16s callers=%-4d ", c.mode, p.name, n)
			r, err := runCell(bins[p.dir+"|"+p.pkg], p, c.mode, n, o)
			if err == nil && r.Errors > 0 {
				err = fmt.Errorf("%d of %d %s failed: %s", r.Errors, r.Calls, unit, r.FirstErr)
			}
			if err == nil && o.smoke && r.Calls < o.max {
				err = fmt.Errorf("only %d of %d %s made", r.Calls, o.max, unit)
			}
			if err != nil {
				failed = true
				fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			} else {
				fmt.Fprintf(os.Stderr, "%.0f %s/s\n", r.rate(), unit)
			}
			measured[i] = append(measured[i], row{peer: p, mode: c.mode, callers: n, res: r, err: err})
		}
	}
	rows := make([]row, len(cells))
	for i, rounds := range measured {
		rows[i] = fastest(rounds)
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

// build compiles each distinct binary the chosen peers need into tmp, all at once. For
// the micro peers it first checks the Greeter source is the same as the Go Micro peer's,
// and regenerates micro under the go-micro.dev/v5 path (bench/micro/.gomicro).
func build(dir, tmp string, chosen []peer) (map[string]string, error) {
	bins := map[string]string{}
	var jobs [][]string // module dir, then go's arguments
	for _, p := range chosen {
		key := p.dir + "|" + p.pkg
		if bins[key] != "" {
			continue
		}
		out := filepath.Join(tmp, filepath.Base(filepath.Join(p.dir, p.pkg))) // micro, gomicro, grpc, …
		args := []string{"build", "-o", out, p.pkg}
		if p.dir == "micro" {
			if err := prepareMicro(dir); err != nil {
				return nil, err
			}
			// -mod=mod: micro's dependencies may move ahead of bench/micro/go.sum.
			args = []string{"build", "-mod=mod", "-o", out, p.pkg}
		}
		bins[key] = out
		jobs = append(jobs, append([]string{p.dir}, args...))
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			cmd := exec.Command("go", job[1:]...)
			cmd.Dir = filepath.Join(dir, job[0])
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s: go %s: %v\n%s", job[0], strings.Join(job[1:], " "), err, out)
				return
			}
			fmt.Fprintf(os.Stderr, "built %s (%s) in %s\n", job[len(job)-1], job[0], time.Since(t0).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
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
	Go       string  `json:"go"`
	Procs    int     `json:"gomaxprocs"`
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
	mode    string
	callers int
	res     result
	err     error
	// lo and hi are the lowest and highest rates of the cell's rounds (rounds > 1)
	lo, hi float64
}

// fastest returns the round of a cell with the highest rate, with the range of the
// rates; a failed round is the cell's result instead. What disturbs a run on a shared
// machine (a busy neighbour, a slower clock) only ever slows it, so the fastest round is
// the least disturbed one, for every peer alike.
func fastest(rounds []row) row {
	for _, r := range rounds {
		if r.err != nil {
			return r
		}
	}
	m := rounds[0]
	m.lo, m.hi = m.res.rate(), m.res.rate()
	for _, r := range rounds[1:] {
		rate := r.res.rate()
		lo, hi := min(m.lo, rate), max(m.hi, rate)
		if rate > m.res.rate() {
			m = r
		}
		m.lo, m.hi = lo, hi
	}
	return m
}

// proc is a running peer process speaking the harness protocol.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *tailBuffer
	done   chan struct{}
}

// start runs bin with the runner's environment, less MICRO_NATIVE, plus env.
func start(bin string, env []string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, nativeEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
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

func runCell(bin string, p peer, mode string, callers int, o options) (result, error) {
	var r result
	srv, err := start(bin, nil, "-mode", "server", "-addr", "127.0.0.1:0", "-payload", p.payload)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	addr, err := srv.expect("ADDR ", 30*time.Second)
	if err != nil {
		return r, fmt.Errorf("server: %v", err)
	}
	args := []string{"-mode", "client", "-addr", addr, "-payload", p.payload,
		"-callers", strconv.Itoa(callers), "-duration", o.duration.String(),
		"-max", strconv.FormatInt(o.max, 10), "-warmup", o.warmup.String()}
	if mode == "stream" {
		args = append(args, "-stream")
	}
	cli, err := start(bin, p.clientEnv, args...)
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

// unitOf names what one measured operation is in a mode.
func unitOf(mode string) string {
	if mode == "stream" {
		return "msgs"
	}
	return "calls"
}

func printTable(w io.Writer, rows []row, o options) {
	// The Go version and GOMAXPROCS are the peers' own, from their results.
	var gos, procs []string
	for _, r := range rows {
		if r.res.Go != "" && !slices.Contains(gos, r.res.Go) {
			gos = append(gos, r.res.Go)
		}
		if p := strconv.Itoa(r.res.Procs); r.res.Procs > 0 && !slices.Contains(procs, p) {
			procs = append(procs, p)
		}
	}
	if len(gos) == 0 {
		gos = []string{runtime.Version()}
		if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
			gos = []string{strings.TrimSpace(string(out))}
		}
	}
	if len(procs) == 0 {
		procs = []string{strconv.Itoa(runtime.GOMAXPROCS(0))}
	}
	rounds := ""
	if o.rounds > 1 {
		rounds = fmt.Sprintf(", each cell the fastest of %d rounds run one after another", o.rounds)
	}
	fmt.Fprintf(w, "%s, %s/%s, GOMAXPROCS=%s (%d CPUs), %s window per cell (at most %d calls or messages), %s warm-up%s\n",
		strings.Join(gos, "+"), runtime.GOOS, runtime.GOARCH, strings.Join(procs, "+"), runtime.NumCPU(), o.duration, o.max, o.warmup, rounds)

	ref := map[string]row{}
	for _, r := range rows {
		if r.err == nil {
			ref[r.mode+"|"+r.peer.name+"|"+strconv.Itoa(r.callers)] = r
		}
	}
	for _, mode := range modes {
		var these []row
		for _, r := range rows {
			if r.mode == mode {
				these = append(these, r)
			}
		}
		if len(these) == 0 {
			continue
		}
		unit, per, rangeHead, rangeRule, rangeEmpty := "calls", "call", "", "", ""
		if o.rounds > 1 {
			rangeHead, rangeRule, rangeEmpty = " range |", "---:|", " |"
		}
		if mode == "unary" {
			fmt.Fprintln(w, "\n### Unary: one call = one request and its reply")
		} else {
			unit, per = "msgs", "msg"
			fmt.Fprintln(w, "\n### Stream: one bidirectional stream per caller, one message = one send and its echo received")
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| peer | callers | %s/s |%s p50 | p99 | p99.9 | max | allocs/%s | %s/s ÷ micro | allocs ÷ micro |\n", unit, rangeHead, per, unit)
		fmt.Fprintf(w, "|---|---:|---:|%s---:|---:|---:|---:|---:|---:|---:|\n", rangeRule)
		for _, r := range these {
			if r.err != nil {
				fmt.Fprintf(w, "| %s | %d | FAILED: %s | | | | | | | |%s\n", r.peer.name, r.callers, oneLine(r.err.Error()), rangeEmpty)
				continue
			}
			rateRatio, allocRatio := "–", "–"
			if m, ok := ref[mode+"|"+r.peer.ref+"|"+strconv.Itoa(r.callers)]; ok && m.res.rate() > 0 {
				rateRatio = fmt.Sprintf("%.2f×", r.res.rate()/m.res.rate())
				if m.res.allocs() > 0 {
					allocRatio = fmt.Sprintf("%.2f×", r.res.allocs()/m.res.allocs())
				}
			}
			spread := ""
			if o.rounds > 1 {
				spread = fmt.Sprintf(" %.0f–%.0f |", r.lo, r.hi)
			}
			fmt.Fprintf(w, "| %s | %d | %.0f |%s %s | %s | %s | %s | %.1f | %s | %s |\n",
				r.peer.name, r.callers, r.res.rate(), spread, dur(r.res.P50), dur(r.res.P99), dur(r.res.P999), dur(r.res.Max),
				r.res.allocs(), rateRatio, allocRatio)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios compare with micro's row of the same table and payload (micro-proto for *-proto rows, micro-json for the rest) at the same callers. Allocations are client and server together.")
	fmt.Fprintln(w)
	var seen []string
	for _, r := range rows {
		if !slices.Contains(seen, r.peer.name) {
			seen = append(seen, r.peer.name)
			fmt.Fprintf(w, "- `%s`: %s\n", r.peer.name, r.peer.about)
		}
	}
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
