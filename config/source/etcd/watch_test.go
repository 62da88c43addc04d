package etcd_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/etcd"
	"github.com/seed-b3892490/micro/internal/testutil"
	"go.uber.org/goleak"
)

// TestEtcdWatchWithinOneSecond: 50 sequential changes, then a delete, each reach Next
// within a second.
func TestEtcdWatchWithinOneSecond(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	cli := rawClient(t, ep)
	put(t, cli, "/t/watch1/keep", "x", "/t/watch1/gone", "soon")
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/watch1"))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)

	const changes = 50
	lat := make([]time.Duration, 0, changes+1)
	for i := 0; i < changes; i++ {
		want := fmt.Sprint(i)
		start := time.Now()
		put(t, cli, "/t/watch1/counter", want)
		_, at := waitFor(t, ch, time.Second, nil, func(doc map[string]interface{}) bool {
			return fmt.Sprint(field(doc, "counter")) == want
		})
		lat = append(lat, at.Sub(start))
	}
	start := time.Now()
	del(t, cli, "/t/watch1/gone")
	doc, at := waitFor(t, ch, time.Second, nil, func(doc map[string]interface{}) bool {
		return field(doc, "gone") == nil
	})
	lat = append(lat, at.Sub(start))
	if field(doc, "keep") != "x" {
		t.Fatalf("after the delete: %v", doc)
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	t.Logf("put→Next latency over %d changes: p50 %s, p99 %s, max %s", len(lat), p(0.5), p(0.99), lat[len(lat)-1])
	if lat[len(lat)-1] > time.Second {
		t.Fatalf("a change took %s to reach Next", lat[len(lat)-1])
	}
}

// TestWatchMergesChanges: changes made while nobody calls Next merge into the newest
// document, and a change that restores the last document is not reported.
func TestWatchMergesChanges(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	cli := rawClient(t, ep)
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/watch2"))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 0; i < 20; i++ {
		put(t, cli, "/t/watch2/n", fmt.Sprint(i))
	}
	// The watcher re-reads after each change; give it the time to see the last one.
	time.Sleep(300 * time.Millisecond)
	cs, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"n":19}`)

	// Setting a key to its value again leaves the document as it was: nothing to report.
	put(t, cli, "/t/watch2/n", "19", "/t/watch2/n", "20")
	cs, err = w.Next()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"n":20}`)
	// Siblings of the prefix change nothing either.
	put(t, cli, "/t/watch2sibling", "1", "/t/watch2/n", "21")
	if cs, err = w.Next(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"n":21}`)
}

// TestWatchStop: Stop unblocks a waiting Next, later calls of Next return
// ErrWatcherStopped, Stop can be called again, and nothing is left running.
func TestWatchStop(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/watch3"))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatalf("Next after Stop: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Stop did not unblock Next")
	}
	t.Logf("Stop and unblocked Next in %s", time.Since(start).Round(time.Microsecond))
	if _, err := w.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestWatchersShareClient: watchers and Reads of one source share its client; stopping
// one watcher leaves the other working, and stopping both releases everything.
func TestWatchersShareClient(t *testing.T) {
	ep := testutil.EtcdEndpoint(t)
	cli := rawClient(t, ep)
	put(t, cli, "/t/watch4/a", "0") // connects the test's own client
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := etcd.NewSource(etcd.WithAddress(ep), etcd.WithPrefix("/t/watch4"))
	w1, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	w2, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	put(t, cli, "/t/watch4/a", "1")
	for _, w := range []source.Watcher{w1, w2} {
		cs, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, cs.Data, `{"a":1}`)
	}
	if err := w1.Stop(); err != nil {
		t.Fatal(err)
	}
	put(t, cli, "/t/watch4/a", "2")
	cs, err := w2.Next()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"a":2}`)
	if cs, err := src.Read(); err != nil {
		t.Fatal(err)
	} else {
		sameJSON(t, cs.Data, `{"a":2}`)
	}
	if err := w2.Stop(); err != nil {
		t.Fatal(err)
	}
	// A new watcher after the last one stopped dials again.
	w3, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	put(t, cli, "/t/watch4/a", "3")
	if cs, err = w3.Next(); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, cs.Data, `{"a":3}`)
	_ = w3.Stop()
}

// TestWatchSurvivesFreeze: etcd frozen with SIGSTOP for 2 s. While it is, Next reports
// that etcd does not answer; once it runs again, changes reach Next again.
func TestWatchSurvivesFreeze(t *testing.T) {
	testutil.Scenario(t)
	e := testutil.StartEtcd(t)
	cli := rawClient(t, e.Endpoint())
	src := etcd.NewSource(etcd.WithAddress(e.Endpoint()), etcd.WithPrefix("/t/freeze"),
		etcd.WithDialTimeout(300*time.Millisecond))
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	ch := collect(t, w)
	put(t, cli, "/t/freeze/v", "before")
	waitFor(t, ch, time.Second, nil, func(doc map[string]interface{}) bool { return field(doc, "v") == "before" })

	e.Stop()
	frozen := time.Now()
	var errs []error
	var firstErr time.Duration
	for wait := time.After(2 * time.Second); ; {
		var r result
		select {
		case r = <-ch:
			if r.err == nil {
				t.Fatalf("a document while etcd is frozen: %s", r.cs.Data)
			}
			if len(errs) == 0 {
				firstErr = r.at.Sub(frozen)
			}
			errs = append(errs, r.err)
			continue
		case <-wait:
		}
		break
	}
	e.Cont()
	if len(errs) == 0 {
		t.Error("Next reported nothing while etcd was frozen for 2 s")
	} else {
		t.Logf("%d errors while frozen, the first after %s: %v", len(errs), firstErr.Round(time.Millisecond), errs[0])
		if !strings.Contains(errs[0].Error(), e.Endpoint()) {
			t.Errorf("error does not name %s: %v", e.Endpoint(), errs[0])
		}
	}

	resumed := time.Now()
	put(t, cli, "/t/freeze/v", "after")
	n := 0
	_, at := waitFor(t, ch, 3*time.Second, &n, func(doc map[string]interface{}) bool { return field(doc, "v") == "after" })
	t.Logf("change after SIGCONT reached Next in %s (%d more errors before it)", at.Sub(resumed), n)
	for i := 0; i < 5; i++ {
		want := fmt.Sprint(i)
		start := time.Now()
		put(t, cli, "/t/freeze/v", want)
		_, at := waitFor(t, ch, time.Second, &n, func(doc map[string]interface{}) bool { return fmt.Sprint(field(doc, "v")) == want })
		if d := at.Sub(start); d > time.Second {
			t.Fatalf("change %d took %s", i, d)
		}
	}
}
