//go:build linux

package etcd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/seed-b3892490/micro/client"
	"github.com/seed-b3892490/micro/internal/testproto"
	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
	"github.com/seed-b3892490/micro/registry/etcd"
	"github.com/seed-b3892490/micro/selector"
	"github.com/seed-b3892490/micro/server"
)

// The reliability battery's registry rows for etcd (D1–D3): a heartbeat of 0.5 s and a
// TTL of 2 s, as in the battery.
const (
	batteryTTL      = 2 * time.Second
	batteryInterval = 500 * time.Millisecond
)

// Environment of the helper process: the etcd endpoint, the service name and node id it
// registers.
const (
	helperEtcdEnv = "MICRO_ETCD_HELPER_ENDPOINT"
	helperSvcEnv  = "MICRO_ETCD_HELPER_SERVICE"
	helperIDEnv   = "MICRO_ETCD_HELPER_ID"
)

var quiet = logger.NewLogger(logger.WithOutput(io.Discard))

// TestHelperProcess is the node TestD1 crashes: a server registered in etcd with the
// battery's TTL and interval, which prints "started" and serves until its stdin closes
// (or a minute passes). It does nothing unless re-executed by a test.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperEtcdEnv)
	if addr == "" {
		t.Skip("the helper process of TestD1 runs only when a test re-executes the binary")
	}
	r := newRegistry(t, addr, registry.Timeout(time.Second))
	testutil.NewServer(t, r, os.Getenv(helperSvcEnv), new(testutil.Greeter),
		server.Id(os.Getenv(helperIDEnv)), server.RegisterTTL(batteryTTL), server.RegisterInterval(batteryInterval), server.WithLogger(quiet))
	fmt.Println("started")
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-time.After(time.Minute):
	}
}

// startHelper starts TestHelperProcess in a child process registering node id of svc, and
// returns once the child's server started. The child is killed at the end of the test.
func startHelper(t *testing.T, addr, svc, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEtcdEnv+"="+addr, helperSvcEnv+"="+svc, helperIDEnv+"="+id)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // closed when this process dies: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "started" {
				close(started)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-exited
	})
	select {
	case <-started:
	case <-exited:
		t.Fatal("the helper process exited before its server started")
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process did not start its server within 20 s")
	}
	return cmd
}

// uniqueName returns a service name of its own, so tests may share an etcd.
func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// has reports whether a lookup found node id.
func has(svcs []*registry.Service, id string) bool {
	for _, s := range svcs {
		for _, n := range s.Nodes {
			if n.Id == id {
				return true
			}
		}
	}
	return false
}

// watchDeletes reports on the returned channel when w delivers a delete of node id; it
// ends with w.
func watchDeletes(w registry.Watcher, id string) <-chan time.Time {
	seen := make(chan time.Time, 1)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			if res.Action == "delete" && has([]*registry.Service{res.Service}, id) {
				seen <- time.Now()
				return
			}
		}
	}()
	return seen
}

// pollUntil calls cond until it is true and returns when that was, or the zero time if
// deadline passed first.
func pollUntil(deadline time.Time, cond func() bool) time.Time {
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			return time.Time{}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestD1TTLExpiryOfCrashedNode: a node in another process, renewing a 2 s TTL every 0.5 s,
// is SIGKILLed; within TTL + interval + 0.5 s it is gone from GetService, a watcher
// started before the kill saw its delete, and a client selector stopped returning it.
func TestD1TTLExpiryOfCrashedNode(t *testing.T) {
	testutil.Scenario(t)
	addr := testutil.EtcdEndpoint(t)
	svc, id := uniqueName("d1"), "crashing"
	r := newRegistry(t, addr)
	w, err := r.Watch(registry.WatchService(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sel := selector.NewSelector(selector.Registry(r), selector.WithLogger(quiet))
	defer sel.Close()

	cmd := startHelper(t, addr, svc, id)
	nodeID := svc + "-" + id
	selects := func() bool {
		next, err := sel.Select(svc)
		if err != nil {
			return false
		}
		n, err := next()
		return err == nil && n.Id == nodeID
	}
	testutil.Eventually(t, 5*time.Second, selects, "the selector returns the helper's node")
	deleted := watchDeletes(w, nodeID)

	// It stays registered past its TTL: the child renews it.
	alive := time.Now().Add(batteryTTL + batteryInterval)
	for time.Now().Before(alive) {
		svcs, err := r.GetService(svc)
		if err != nil || !has(svcs, nodeID) {
			t.Fatalf("the renewed node vanished: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	bound := batteryTTL + batteryInterval + 500*time.Millisecond
	deadline := killed.Add(bound)
	var wg sync.WaitGroup
	var goneLookup, goneSelector time.Time
	wg.Add(2)
	go func() {
		defer wg.Done()
		goneLookup = pollUntil(deadline, func() bool {
			svcs, err := r.GetService(svc)
			return errors.Is(err, registry.ErrNotFound) || (err == nil && !has(svcs, nodeID))
		})
	}()
	go func() {
		defer wg.Done()
		goneSelector = pollUntil(deadline, func() bool { return !selects() })
	}()
	var sawDelete time.Time
	select {
	case sawDelete = <-deleted:
	case <-time.After(time.Until(deadline)):
	}
	wg.Wait()
	for what, at := range map[string]time.Time{"GetService": goneLookup, "the watcher": sawDelete, "the selector": goneSelector} {
		if at.IsZero() {
			t.Errorf("%s still had the killed node %s after the kill", what, bound)
			continue
		}
		t.Logf("%s: node gone %s after the kill", what, at.Sub(killed).Round(time.Millisecond))
	}
}

// TestD2GracefulDeregister: a server that stops deregisters; a watcher and a registry
// cache see it within 0.5 s.
func TestD2GracefulDeregister(t *testing.T) {
	addr := testutil.EtcdEndpoint(t)
	svc := uniqueName("d2")
	srv := testutil.NewServer(t, newRegistry(t, addr), svc, new(testutil.Greeter),
		server.RegisterTTL(batteryTTL), server.RegisterInterval(batteryInterval), server.WithLogger(quiet))
	nodeID := svc + "-" + srv.Options().Id
	r := newRegistry(t, addr)
	w, err := r.Watch(registry.WatchService(svc))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c := cache.New(r, cache.WithLogger(quiet))
	defer c.Stop()
	testutil.Eventually(t, 5*time.Second, func() bool {
		svcs, err := c.GetService(svc)
		return err == nil && has(svcs, nodeID)
	}, "the cache has the node")
	deleted := watchDeletes(w, nodeID)

	stopped := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	const bound = 500 * time.Millisecond
	gone := pollUntil(stopped.Add(bound), func() bool {
		svcs, err := c.GetService(svc)
		return errors.Is(err, registry.ErrNotFound) || (err == nil && !has(svcs, nodeID))
	})
	if gone.IsZero() {
		t.Fatalf("the cache still had the node %s after Stop", bound)
	}
	select {
	case at := <-deleted:
		t.Logf("watcher: delete %s after Stop; cache: gone after %s", at.Sub(stopped).Round(time.Millisecond), gone.Sub(stopped).Round(time.Millisecond))
	case <-time.After(time.Until(stopped.Add(bound))):
		t.Fatalf("the watcher saw no delete within %s of Stop", bound)
	}
}

// TestD3RegistryOutage: etcd is frozen (SIGSTOP) for 2 × TTL under two servers and a
// calling client. Calls keep succeeding from the client's cache, the servers log their
// failed registrations and keep serving, and after SIGCONT every node is in etcd again
// within interval + 1 s, under a new lease: the old one expired meanwhile.
func TestD3RegistryOutage(t *testing.T) {
	testutil.Scenario(t)
	e := testutil.StartEtcd(t)
	addr := e.Endpoint()
	const svc = "d3"
	logs := &testutil.SyncBuffer{}
	serverLog := logger.NewLogger(logger.WithOutput(logs))
	// a short timeout, so that registrations fail (and are logged) during the outage
	rs := newRegistry(t, addr, registry.Timeout(500*time.Millisecond))
	var ids []string
	for i := 0; i < 2; i++ {
		srv := testutil.NewServer(t, rs, svc, &testutil.Greeter{Node: fmt.Sprint(i)},
			server.RegisterTTL(batteryTTL), server.RegisterInterval(batteryInterval), server.WithLogger(serverLog))
		ids = append(ids, svc+"-"+srv.Options().Id)
	}
	raw := rawClient(t, addr)
	leases := func() map[string]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := raw.Get(ctx, etcd.Prefix+svc+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]int64)
		for _, kv := range resp.Kvs {
			out[strings.TrimPrefix(string(kv.Key), etcd.Prefix+svc+"/")] = kv.Lease
		}
		return out
	}
	before := leases()
	if len(before) != 2 {
		t.Fatalf("registered before the outage: %v", before)
	}

	cl := testutil.NewClient(t, newRegistry(t, addr, registry.Timeout(time.Second)))
	call := func() error {
		var rsp testproto.Response
		return cl.Call(context.Background(), cl.NewRequest(svc, "Greeter.Hello", &testproto.Request{Name: "d3"}), &rsp, client.WithRequestTimeout(time.Second))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return call() == nil }, "a first call succeeds")

	// phase: 0 before the outage, 1 during, 2 after
	var phase atomic.Int32
	var calls, failed [3]atomic.Int64
	var firstErr [3]atomic.Value
	var streak atomic.Int64 // successful calls since the last failure
	var failuresMu sync.Mutex
	var failures []string // after the outage, the first few
	var resumedAt atomic.Int64
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := phase.Load()
			calls[p].Add(1)
			err := call()
			if err == nil {
				streak.Add(1)
			} else {
				streak.Store(0)
				failed[p].Add(1)
				firstErr[p].CompareAndSwap(nil, err.Error())
				if p == 2 {
					failuresMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%s after SIGCONT: %v", time.Since(time.Unix(0, resumedAt.Load())).Round(time.Millisecond), err))
					}
					failuresMu.Unlock()
				}
			}
		}
	}()
	stopLoop := sync.OnceFunc(func() {
		close(stop)
		<-loopDone
	})
	defer stopLoop()
	testutil.Eventually(t, 5*time.Second, func() bool { return calls[0].Load() >= 20 }, "calls run")

	e.Stop()
	phase.Store(1)
	stoppedAt := time.Now()
	outage := 2 * batteryTTL
	registerFailed := func() bool { return strings.Contains(logs.String(), "server: register") }
	loggedAt := pollUntil(stoppedAt.Add(outage), registerFailed)
	<-time.After(time.Until(stoppedAt.Add(outage))) // the fault's length
	resumedAt.Store(time.Now().UnixNano())
	phase.Store(2)
	e.Cont()
	resumed := time.Now()

	fresh := newRegistry(t, addr, registry.Timeout(time.Second))
	bound := batteryInterval + time.Second
	back := pollUntil(resumed.Add(bound), func() bool {
		svcs, err := fresh.GetService(svc)
		return err == nil && has(svcs, ids[0]) && has(svcs, ids[1])
	})
	// Calls may fail after the return while etcd has no node: it revokes the expired
	// leases, deleting the nodes, before the servers register again. Then they succeed.
	<-time.After(time.Second) // traffic after the return
	recovered := pollUntil(time.Now().Add(5*time.Second), func() bool { return streak.Load() >= 200 })
	stopLoop()

	for p, name := range []string{"before", "during", "after"} {
		first, _ := firstErr[p].Load().(string)
		t.Logf("%s the outage: %d calls, %d failed %s", name, calls[p].Load(), failed[p].Load(), first)
	}
	if calls[1].Load() < 10 {
		t.Errorf("only %d calls during the outage", calls[1].Load())
	}
	if n := failed[1].Load(); n != 0 {
		t.Errorf("%d calls failed during the outage", n)
	}
	if loggedAt.IsZero() {
		t.Errorf("no failed registration was logged during the outage; logs:\n%s", logs.String())
	}
	if back.IsZero() {
		svcs, err := fresh.GetService(svc)
		t.Fatalf("not every node was registered again within %s of the return: %v %v", bound, svcs, err)
	}
	t.Logf("failed registration logged %s into the outage; every node back %s after SIGCONT", loggedAt.Sub(stoppedAt).Round(time.Millisecond), back.Sub(resumed).Round(time.Millisecond))
	if failed[2].Load() > 0 {
		t.Logf("failures after the return:\n%s", strings.Join(failures, "\n"))
	}
	if recovered.IsZero() {
		t.Errorf("calls did not recover after the return; failures:\n%s\nserver logs:\n%s", strings.Join(failures, "\n"), logs.String())
	}
	after := leases()
	for id, lease := range before {
		if after[id] == 0 || after[id] == lease {
			t.Errorf("node %s: lease %x before the outage, %x after", id, lease, after[id])
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ttl, err := raw.TimeToLive(ctx, clientv3.LeaseID(lease))
		cancel()
		if err != nil || ttl.TTL != -1 {
			t.Errorf("node %s: its old lease did not expire: %+v %v", id, ttl, err)
		}
	}
}
