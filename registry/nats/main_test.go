package nats_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/registry"
	natsreg "github.com/seed-b3892490/micro/registry/nats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireNATS skips (or fails, with MICRO_TEST_REQUIRE=1) when the shared server is
// unreachable.
func requireNATS(t testing.TB) {
	t.Helper()
	testutil.RequireNATS(t, false)
}

// natsURL is the shared server's address.
func natsURL() string { return testutil.SharedNATSURL() }

func unique() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// topics returns query and watch topics of the test's own, so tests sharing the server
// cannot see each other.
func topics() []registry.Option { return topicsOf("test.micro." + unique()) }

// topicsOf returns the query and watch topics under prefix.
func topicsOf(prefix string) []registry.Option {
	return []registry.Option{natsreg.QueryTopic(prefix + ".query"), natsreg.WatchTopic(prefix + ".watch")}
}

// serviceName returns a service name unique to the test.
func serviceName(t testing.TB) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name())) + "-" + unique()
}

// newRegistry returns a registry on the test server, closed at the end of the test.
func newRegistry(t testing.TB, opts ...registry.Option) registry.Registry {
	t.Helper()
	requireNATS(t)
	r := natsreg.NewNatsRegistry(append([]registry.Option{registry.Addrs(natsURL())}, opts...)...)
	t.Cleanup(func() { closeRegistry(t, r) })
	return r
}

func closeRegistry(t testing.TB, r registry.Registry) {
	t.Helper()
	c, ok := r.(io.Closer)
	if !ok {
		t.Fatalf("%T does not implement io.Closer", r)
	}
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func node(id string) *registry.Node {
	return &registry.Node{Id: id, Address: "127.0.0.1:" + fmt.Sprint(20000+len(id)), Metadata: map[string]string{"node": id}}
}

func service(name, version string, ids ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Metadata: map[string]string{"k": "v"}}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, node(id))
	}
	return s
}

// event is a watch result and when it was seen.
type event struct {
	res *registry.Result
	at  time.Time
}

// collect reads w until it ends, into the returned channel (closed at the end); the
// watcher is stopped, and the reader waited for, at the end of the test.
func collect(t testing.TB, w registry.Watcher) <-chan event {
	ch := make(chan event, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			select {
			case ch <- event{res, time.Now()}:
			default:
				t.Errorf("event buffer full: %s %s", res.Action, res.Service.Name)
				return
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	return ch
}

// waitEvent returns the first event with action and node id, skipping others, and fails
// the test if none comes within timeout.
func waitEvent(t testing.TB, ch <-chan event, timeout time.Duration, action, id string) event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("watcher ended before %s %s", action, id)
			}
			if e.res.Action == action && hasNode(e.res.Service, id) {
				return e
			}
		case <-deadline.C:
			t.Fatalf("no %s of %s within %s", action, id, timeout)
		}
	}
}

func hasNode(s *registry.Service, id string) bool {
	if s == nil {
		return false
	}
	for _, n := range s.Nodes {
		if n.Id == id {
			return true
		}
	}
	return false
}

// lookupHas reports whether r's lookup of svc holds node id.
func lookupHas(r registry.Registry, svc, id string) (bool, error) {
	got, err := r.GetService(svc)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range got {
		if hasNode(s, id) {
			return true, nil
		}
	}
	return false, nil
}
