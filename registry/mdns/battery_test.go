package mdns_test

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	imdns "github.com/seed-b3892490/micro/internal/mdns"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/mdns"
)

const helperEnv = "MICRO_MDNS_HELPER"

// TestHelperProcess is a node in a process of its own, for the tests that kill or flood
// one: re-executed with MICRO_MDNS_HELPER=<service>/<node>/<ttl>[/<address>], it
// registers, renews a quarter TTL, says "registered" and waits to be killed (at most a
// minute).
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	parts := strings.Split(spec, "/")
	ttl, _ := time.ParseDuration(parts[2])
	r := mdns.NewRegistry()
	addr := "10.253.0.1:7000"
	if len(parts) > 3 {
		addr = parts[3]
	}
	s := node(parts[0], parts[1], addr)
	end := time.After(time.Minute)
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for i := 0; ; i++ {
		if err := r.Register(s, registry.RegisterTTL(ttl)); err != nil {
			fmt.Println("register:", err)
			return
		}
		if i == 0 {
			fmt.Println("registered")
		}
		select {
		case <-tick.C:
		case <-end:
			return
		}
	}
}

// startNode runs TestHelperProcess in a child process and waits until it registered.
func startNode(t *testing.T, service, id string, ttl time.Duration) *exec.Cmd {
	t.Helper()
	return startNodeOn(t, nil, service, id, ttl, "10.253.0.1:7000")
}

// startNodeOn runs TestHelperProcess on a host of LinkedHosts (nil: here).
func startNodeOn(t *testing.T, h *testutil.Host, service, id string, ttl time.Duration, addr string) *exec.Cmd {
	t.Helper()
	args := []string{"-test.run=^TestHelperProcess$", "-test.count=1"}
	cmd := exec.Command(os.Args[0], args...)
	if h != nil {
		cmd = h.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s/%s/%s/%s", helperEnv, service, id, ttl, addr))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-ready:
		if l != "registered" {
			t.Fatalf("helper: %s", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the helper process did not register")
	}
	return cmd
}

func watch(t *testing.T, r registry.Registry, service string) <-chan *registry.Result {
	t.Helper()
	w, err := r.Watch(registry.WatchService(service))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	events := make(chan *registry.Result, 1024)
	go func() {
		defer close(events)
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			events <- res
		}
	}()
	return events
}

// TestOversizedMetadataRefused: a node whose records cannot fit in one mDNS message is
// refused at Register with an error that says why and what to do; nothing is announced.
func TestOversizedMetadataRefused(t *testing.T) {
	testutil.NeedNetns(t)
	r, other := newRegistry(t), newRegistry(t)
	s := node("big", "big-1", "10.253.0.1:1")
	for i := 0; i < 2000; i++ { // random-looking values compress badly
		s.Nodes[0].Metadata[fmt.Sprint("key", i)] = strconv.FormatUint(uint64(i)*2654435761%1000003, 36) + fmt.Sprintf("%x", i*7919)
	}
	err := r.Register(s)
	if err == nil || !strings.Contains(err.Error(), "over the") || !strings.Contains(err.Error(), "limit of an mDNS message") || !strings.Contains(err.Error(), "--registry=etcd") {
		t.Fatalf("got %v, want an error about the message limit", err)
	}
	if _, err := other.GetService("big"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the refused node was announced: %v", err)
	}
	bad := node("bad name", "n", "10.253.0.1:1")
	if err := r.Register(bad); err == nil || !strings.Contains(err.Error(), "cannot be part of an mDNS name") {
		t.Fatalf("a name with a space: %v", err)
	}
	if err := r.Register(&registry.Service{Name: "empty"}); err == nil {
		t.Fatal("a service without nodes was accepted")
	}
	if err := r.Register(nil); err == nil {
		t.Fatal("nil was accepted")
	}
}

// TestNoMulticastWarnsOnce: where no interface can multicast, the first use logs one
// warning naming the registries that need none, and the registry still works within
// the process.
func TestNoMulticastWarnsOnce(t *testing.T) {
	testutil.NeedNetns(t)
	var logs testutil.SyncBuffer
	r := newRegistry(t, mdns.Interfaces("no-such-interface0"), registry.Logger(logger.NewLogger(logger.WithOutput(&logs))))
	s := node("alone", "alone-1", "127.0.0.1:1")
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := r.GetService("alone")
	if err != nil || len(got) != 1 {
		t.Fatalf("lookup within the process: %v %v", got, err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("a lookup without multicast waited %s for answers that cannot come", d)
	}
	for i := 0; i < 3; i++ {
		_, _ = r.GetService("alone")
	}
	out := logs.String()
	if n := strings.Count(out, "registry: mdns:"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, out)
	}
	for _, want := range []string{"level=WARN", "--registry=etcd", "--registry=nats", "--registry=memory", "MICRO_REGISTRY"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the warning lacks %q:\n%s", want, out)
		}
	}
	if err := r.Deregister(s); err != nil {
		t.Fatal(err)
	}
}

// TestD4Discovery: five services registered by five registries (each with sockets of
// its own) are all found by a sixth within 1 s of their start.
func TestD4Discovery(t *testing.T) {
	testutil.NeedNetns(t)
	observer := newRegistry(t)
	start := time.Now()
	for i := 0; i < 5; i++ {
		r := newRegistry(t)
		if err := r.Register(node(fmt.Sprint("d4-svc-", i), fmt.Sprint("d4-node-", i), fmt.Sprintf("10.253.0.1:%d", 7100+i))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, time.Second-time.Since(start), func() bool {
		list, err := observer.ListServices()
		if err != nil {
			return false
		}
		n := 0
		for _, s := range list {
			if strings.HasPrefix(s.Name, "d4-svc-") && s.Version == "1.0" {
				n++
			}
		}
		return n == 5
	}, "ListServices finds all five services")
	found := time.Since(start)
	for i := 0; i < 5; i++ {
		got, err := observer.GetService(fmt.Sprint("d4-svc-", i))
		if err != nil || len(got) != 1 || got[0].Nodes[0].Address != fmt.Sprintf("10.253.0.1:%d", 7100+i) {
			t.Fatalf("service %d: %v %v", i, got, err)
		}
	}
	t.Logf("five services found %s after they started", found.Round(time.Millisecond))
}

// TestD4CrashedNode: a node whose process is SIGKILLed (no goodbye) answers no more
// lookups at once, and watchers drop it within its record TTL + 1 s.
func TestD4CrashedNode(t *testing.T) {
	testutil.Scenario(t)
	testutil.NeedNetns(t)
	const ttl = 2 * time.Second
	observer := newRegistry(t)
	events := watch(t, observer, "d4-crash")
	child := startNode(t, "d4-crash", "d4-crash-1", ttl)
	waitEvent(t, events, "create", 2*time.Second)
	if got, err := observer.GetService("d4-crash"); err != nil || len(got[0].Nodes) != 1 {
		t.Fatalf("before the kill: %v %v", got, err)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed := time.Now()
	if _, err := observer.GetService("d4-crash"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a dead node answered a lookup: %v", err)
	}
	waitEvent(t, events, "delete", ttl+time.Second)
	t.Logf("watcher dropped the killed node %s after the kill", time.Since(killed).Round(time.Millisecond))
}

// counter is a bystander on the link that counts mDNS traffic, but for the packets it
// sends itself (own).
type counter struct {
	queries, responses, replies atomic.Int64
	own                         map[string]bool
}

func listenCounter(t *testing.T, c *counter, ifaces ...string) *imdns.Conn {
	t.Helper()
	conn, err := imdns.Listen(imdns.Config{Interfaces: ifaces, Handler: func(p imdns.Packet) {
		if c.own[string(p.Data)] {
			return
		}
		var m dns.Msg
		if m.Unpack(p.Data) != nil {
			return
		}
		switch {
		case p.Reply:
			c.replies.Add(1)
		case m.Response:
			c.responses.Add(1)
		default:
			c.queries.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestD4IdleTraffic: five registered services, idle, send at most 2 packets a second
// each on the LAN, both families counted (announcements every half record TTL, here
// 4 s, so that the window holds some).
func TestD4IdleTraffic(t *testing.T) {
	testutil.Scenario(t)
	testutil.NeedNetns(t)
	var c counter
	listenCounter(t, &c, "mdns0") // the LAN: IPv4 and IPv6
	for i := 0; i < 5; i++ {
		r := newRegistry(t)
		if err := r.Register(node(fmt.Sprint("idle-", i), fmt.Sprint("idle-node-", i), "10.253.0.1:1"), registry.RegisterTTL(4*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // the two start-up announcements
	before := c.responses.Load() + c.queries.Load()
	const window = 3 * time.Second
	time.Sleep(window) // measuring a rate over a window: the sleep is the measurement
	sent := c.responses.Load() + c.queries.Load() - before
	rate := float64(sent) / window.Seconds() / 5
	t.Logf("idle: %d packets in %s from 5 services (%.2f/s per service)", sent, window, rate)
	if rate > 2 || sent == 0 {
		t.Fatalf("idle traffic %.2f packets/s per service: want some, at most 2", rate)
	}
}

func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestD4HostilePackets floods a node's process with malformed packets, a 60 KiB TXT, a
// zlib bomb, announcements spoofing its own node, responses and queries from the mDNS
// port: it keeps answering correctly, sends no more replies than it got queries, its
// multicast answers stay at one a second per record, and its RSS grows < 5 MiB.
func TestD4HostilePackets(t *testing.T) {
	testutil.Scenario(t)
	testutil.NeedNetns(t)
	victim := startNode(t, "victim", "victim-1", 10*time.Second)
	observer := newRegistry(t)
	if got, err := observer.GetService("victim"); err != nil || got[0].Nodes[0].Address != "10.253.0.1:7000" {
		t.Fatalf("before: %v %v", got, err)
	}
	mk := func(in *imdns.Instance, ttl uint32) []byte {
		b, err := imdns.Announcement("micro", in, ttl).Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// the same node, announced by someone else with another address
	spoof := mk(&imdns.Instance{Service: "victim", Node: "victim-1", Text: []string{"00"}, TTL: 90}, 90)
	bye := mk(&imdns.Instance{Service: "victim", Node: "victim-1", Text: []string{"00"}, TTL: 0}, 0)
	var huge []string
	for i := 0; i < 236; i++ {
		huge = append(huge, strings.Repeat("f", 255))
	}
	big := mk(&imdns.Instance{Service: "victim", Node: "other", Text: huge, TTL: 90}, 90)
	bomb := zlibBomb(t)
	query, _ := imdns.Query("victim.micro.").Pack()
	garbage := []byte("\x00\x00\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00\xc0\x0c\x00\x0c")
	flood := [][]byte{spoof, bye, big, bomb, garbage, {}, query[:7]}
	c := counter{own: map[string]bool{string(query): true}}
	for _, p := range flood {
		c.own[string(p)] = true
	}
	attacker := listenCounter(t, &c, "mdns0")
	send := func(rounds int) {
		for i := 0; i < rounds; i++ {
			for _, p := range flood {
				_ = attacker.Multicast(p) // from the mDNS port
			}
			_ = attacker.Multicast(query) // asks for multicast answers
			_ = attacker.Query(query)     // asks for unicast answers
		}
	}
	// the baseline is taken once the victim has run a GC cycle and answered queries
	send(20)
	time.Sleep(300 * time.Millisecond)
	base := rss(t, victim.Process.Pid)
	c.replies.Store(0)
	c.responses.Store(0)

	const rounds = 300
	send(rounds)
	// the flood overflows socket buffers, so some queries are lost: then ten more, calmly
	for i := 0; i < 10; i++ {
		_ = attacker.Query(query)
		time.Sleep(10 * time.Millisecond)
	}
	sentQueries := int64((rounds + 10) * 2) // each Query goes out on mdns0 over IPv4 and IPv6
	testutil.Eventually(t, 2*time.Second, func() bool { return c.replies.Load() >= 10 }, "unicast replies arrive after the flood")
	time.Sleep(200 * time.Millisecond) // let stragglers arrive before counting
	replies, multicast := c.replies.Load(), c.responses.Load()
	t.Logf("%d unicast queries: %d replies; %d multicast queries: %d multicast responses", sentQueries, replies, rounds*2, multicast)
	if replies > sentQueries {
		t.Fatalf("%d replies to %d queries", replies, sentQueries)
	}
	// one multicast answer per record, interface and family a second, and announcements
	// (the warm-up took this second's answers)
	if multicast > 8 {
		t.Fatalf("%d multicast responses to a query flood: a reply storm", multicast)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the victim died: %v", err)
	}
	got, err := observer.GetService("victim")
	if err != nil || len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].Address != "10.253.0.1:7000" {
		t.Fatalf("after the flood the victim answers %v %v", got, err)
	}
	grown := rss(t, victim.Process.Pid) - base
	limit := int64(5 << 20)
	if testutil.Race {
		limit *= 4 // the race detector shadows every byte the flood's garbage touches
	}
	t.Logf("victim RSS grew %d KiB (limit %d KiB)", grown>>10, limit>>10)
	if grown > limit {
		t.Fatalf("victim RSS grew %d KiB under the flood, over %d KiB", grown>>10, limit>>10)
	}
}

// zlibBomb is an announcement whose TXT inflates to 8 MiB of zeros.
func zlibBomb(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	h := fmt.Sprintf("%x", b.Bytes())
	var txt []string
	for len(h) > 255 {
		txt, h = append(txt, h[:255]), h[255:]
	}
	txt = append(txt, h)
	m, err := imdns.Announcement("micro", &imdns.Instance{Service: "victim", Node: "bomb", Text: txt, TTL: 90}, 90).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestD4AcrossNamespaces is the long form of D4 (MICRO_TEST_LONG=1): five services in
// processes spread over three hosts (network namespaces) on a bridge are found from a
// fourth within 1 s; idle, they send at most 2 packets a second each on the LAN; one
// SIGKILLed is gone from lookups at once and from watchers within its TTL + 1 s; a
// hostile flood from the fourth leaves the others answering.
func TestD4AcrossNamespaces(t *testing.T) {
	testutil.NeedNetns(t)
	if !testutil.Long() {
		t.Skip("long tier (MICRO_TEST_LONG=1): three namespaces on a bridge")
	}
	const ttl = 4 * time.Second
	hosts := testutil.LinkedHosts(t, 3)
	observer := newRegistry(t, mdns.Interfaces("lanbr"))
	events := watch(t, observer, "")
	var c counter
	attacker := listenCounter(t, &c, "lanbr")
	nodes := make([]*exec.Cmd, 5)
	start := time.Now()
	for i := range nodes {
		h := hosts[i%len(hosts)]
		nodes[i] = startNodeOn(t, &h, fmt.Sprint("lan-svc-", i), fmt.Sprint("lan-node-", i), ttl, fmt.Sprintf("%s:%d", h.Addr, 7200+i))
	}
	registered := time.Now()
	testutil.Eventually(t, time.Second, func() bool {
		list, err := observer.ListServices()
		n := 0
		for _, s := range list {
			if strings.HasPrefix(s.Name, "lan-svc-") {
				n++
			}
		}
		return err == nil && n == 5
	}, "the observer finds all five services")
	t.Logf("five services on three hosts found %s after the last registered (%s after the first started)",
		time.Since(registered).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for i := range nodes {
		got, err := observer.GetService(fmt.Sprint("lan-svc-", i))
		if err != nil || got[0].Nodes[0].Address != fmt.Sprintf("%s:%d", hosts[i%len(hosts)].Addr, 7200+i) {
			t.Fatalf("service %d: %v %v", i, got, err)
		}
	}

	time.Sleep(1500 * time.Millisecond) // past the start-up announcements
	before := c.responses.Load() + c.queries.Load()
	const window = 4 * time.Second
	time.Sleep(window) // measuring a rate: the sleep is the measurement
	rate := float64(c.responses.Load()+c.queries.Load()-before) / window.Seconds() / 5
	t.Logf("idle: %.2f packets/s per service on the LAN", rate)
	if rate > 2 {
		t.Fatalf("idle traffic %.2f packets/s per service, over 2", rate)
	}

	if err := nodes[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = nodes[0].Wait()
	killed := time.Now()
	if _, err := observer.GetService("lan-svc-0"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a killed node answered: %v", err)
	}
	for {
		r := waitEvent(t, events, "delete", ttl+time.Second-time.Since(killed))
		if r.Service.Name == "lan-svc-0" {
			break
		}
	}
	t.Logf("watcher dropped the killed node %s after the kill", time.Since(killed).Round(time.Millisecond))

	base := rss(t, nodes[1].Process.Pid)
	bomb := zlibBomb(t)
	garbage := []byte("\x00\x00\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00\xc0\x0c\x00\x0c")
	query, _ := imdns.Query("lan-svc-1.micro.").Pack()
	for i := 0; i < 1000; i++ {
		_ = attacker.Multicast(bomb)
		_ = attacker.Multicast(garbage)
		_ = attacker.Multicast(query)
	}
	for i := 1; i < len(nodes); i++ {
		if _, err := observer.GetService(fmt.Sprint("lan-svc-", i)); err != nil {
			t.Fatalf("service %d after the flood: %v", i, err)
		}
	}
	grown := rss(t, nodes[1].Process.Pid) - base
	limit := int64(5 << 20)
	if testutil.Race {
		limit *= 4
	}
	t.Logf("a flooded node's RSS grew %d KiB", grown>>10)
	if grown > limit {
		t.Fatalf("RSS grew %d KiB, over %d", grown>>10, limit>>10)
	}
}
