package nats_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/cache"
	natsreg "github.com/seed-b3892490/micro/registry/nats"
	"github.com/seed-b3892490/micro/selector"
)

const (
	helperEnv   = "MICRO_NATS_REGISTRY_HELPER"
	d1TTL       = 2 * time.Second
	d1Interval  = 500 * time.Millisecond
	d1Bound     = d1TTL + d1Interval + 500*time.Millisecond // 3 s: the D1 pass figure
	helperLimit = 60 * time.Second                          // a helper outlives no test run
)

// TestHelperProcess is the crashing node of TestD1: re-executed by it, it registers a
// node with TTL 2 s, says "registered" on stdout, and renews every 0.5 s until killed (or
// helperLimit). Run normally, it does nothing.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	r := natsreg.NewNatsRegistry(append([]registry.Option{registry.Addrs(natsURL())}, topicsOf(os.Getenv(helperEnv+"_TOPICS"))...)...)
	defer closeRegistry(t, r)
	s := service(os.Getenv(helperEnv+"_SERVICE"), "1", os.Getenv(helperEnv+"_NODE"))
	renew := time.NewTicker(d1Interval)
	defer renew.Stop()
	end := time.After(helperLimit)
	for i := 0; i < int(helperLimit/d1Interval); i++ {
		if err := r.Register(s, registry.RegisterTTL(d1TTL)); err != nil {
			fmt.Fprintln(os.Stderr, "helper: register:", err)
		} else if i == 0 {
			fmt.Println("registered")
		}
		select {
		case <-renew.C:
		case <-end:
			return
		}
	}
}

// TestD1CrashedNodeExpires: a node renewing every 0.5 s with TTL 2 s is SIGKILLed; within
// TTL + interval + 0.5 s (3 s) of the kill it is gone from GetService, a watcher started
// before the kill has seen its delete, and a selector no longer returns it.
func TestD1CrashedNodeExpires(t *testing.T) {
	testutil.Scenario(t)
	requireNATS(t)
	prefix := "test.micro." + unique()
	r := newRegistry(t, topicsOf(prefix)...)
	svc, id := serviceName(t), "crash-"+unique()
	events := collect(t, mustWatch(t, r, registry.WatchService(svc)))
	sel := selector.NewSelector(selector.Registry(r))
	t.Cleanup(func() { _ = sel.Close() })

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperEnv+"_TOPICS="+prefix, helperEnv+"_SERVICE="+svc, helperEnv+"_NODE="+id, "MICRO_TEST_NATS="+natsURL())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	ready := make(chan struct{})
	go func() {
		defer close(waited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "registered" {
				close(ready)
				break
			}
		}
		for sc.Scan() { // drain until the child exits
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-waited:
		t.Fatal("the helper exited before registering")
	case <-time.After(20 * time.Second):
		t.Fatal("the helper did not register within 20 s")
	}

	waitEvent(t, events, 5*time.Second, "create", id)
	if ok, err := lookupHas(r, svc, id); !ok {
		t.Fatalf("lookup before the kill: %v %v", ok, err)
	}
	selects := func() bool {
		next, err := sel.Select(svc)
		if err != nil {
			return false
		}
		n, err := next()
		return err == nil && n.Id == id
	}
	if !selects() {
		t.Fatal("the selector does not return the node before the kill")
	}

	// Kill by PID, then watch the node go everywhere.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	kill := time.Now()
	<-waited
	killed = true

	deadline := kill.Add(d1Bound)
	var lookupGone, selectorGone time.Duration
	for lookupGone == 0 || selectorGone == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("within %s of the kill: lookup gone after %s, selector gone after %s (0: not gone)", d1Bound, lookupGone, selectorGone)
		}
		if lookupGone == 0 {
			has, err := lookupHas(r, svc, id)
			if err != nil {
				t.Fatal(err)
			}
			if !has {
				lookupGone = time.Since(kill)
			}
		}
		if selectorGone == 0 && !selects() {
			selectorGone = time.Since(kill)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	e := waitEvent(t, events, time.Until(deadline), "delete", id)
	watcherGone := e.at.Sub(kill)
	if watcherGone > d1Bound {
		t.Fatalf("the watcher saw the delete %s after the kill, bound %s", watcherGone, d1Bound)
	}
	t.Logf("after SIGKILL: lookup gone %s, watcher delete %s, selector gone %s (bound %s)",
		lookupGone.Round(time.Millisecond), watcherGone.Round(time.Millisecond), selectorGone.Round(time.Millisecond), d1Bound)
}

// TestD2GracefulDeregister: a Deregister is seen within 0.5 s by a watcher of another
// instance and by a registry/cache in front of it.
func TestD2GracefulDeregister(t *testing.T) {
	opts := topics()
	owner, client := newRegistry(t, opts...), newRegistry(t, opts...)
	svc := serviceName(t)
	events := collect(t, mustWatch(t, client, registry.WatchService(svc)))
	c := cache.New(client)
	t.Cleanup(c.Stop)

	s := service(svc, "1", "a")
	if err := owner.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, 2*time.Second, "create", "a")
	if ok, err := lookupHas(c, svc, "a"); !ok {
		t.Fatalf("cache lookup before the deregistration: %v %v", ok, err)
	}

	start := time.Now()
	if err := owner.Deregister(s); err != nil {
		t.Fatal(err)
	}
	const bound = 500 * time.Millisecond
	e := waitEvent(t, events, bound, "delete", "a")
	var cacheGone time.Duration
	for cacheGone == 0 {
		has, err := lookupHas(c, svc, "a")
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			t.Fatal(err)
		}
		if !has {
			cacheGone = time.Since(start)
			break
		}
		if time.Since(start) > bound {
			t.Fatalf("the cache still has the node %s after the deregistration", bound)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	if cacheGone > bound {
		t.Fatalf("the cache lost the node %s after the deregistration, bound %s", cacheGone, bound)
	}
	t.Logf("after Deregister: watcher delete %s, cache gone %s (bound %s)", e.at.Sub(start).Round(time.Millisecond), cacheGone.Round(time.Millisecond), bound)
}
