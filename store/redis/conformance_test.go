package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// errKeysRefused is what the commandWatch hook returns instead of sending KEYS.
var errKeysRefused = errors.New("test hook: KEYS sent, the store must use SCAN")

// commandWatch is a go-redis hook that counts the commands sent, and refuses KEYS (the
// command is not sent, the call fails, and the test fails).
type commandWatch struct {
	report func(format string, args ...any) // t.Errorf
	mu     sync.Mutex
	counts map[string]int
}

func newCommandWatch(report func(format string, args ...any)) *commandWatch {
	return &commandWatch{report: report, counts: map[string]int{}}
}

func (w *commandWatch) see(cmd goredis.Cmder) error {
	name := strings.ToLower(cmd.Name())
	w.mu.Lock()
	w.counts[name]++
	w.mu.Unlock()
	if name == "keys" {
		w.report("the store sent KEYS: %v", cmd.Args())
		return errKeysRefused
	}
	return nil
}

func (w *commandWatch) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[name]
}

func (w *commandWatch) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (w *commandWatch) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if err := w.see(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (w *commandWatch) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			if err := w.see(cmd); err != nil {
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// TestI1Conformance is battery row I1 (and issue acceptance 1 and 2) for the Redis store:
// the conformance suite against the real server, with a hook on every client that fails
// the test if the store ever sends KEYS.
func TestI1Conformance(t *testing.T) {
	requireRedis(t)
	watch := newCommandWatch(t.Errorf)
	storetest.Run(t, func(testing.TB) store.Store {
		return NewStore(store.Nodes(redisURL()), Hooks(watch))
	}, storetest.Suite{Persistent: true})
	if n := watch.count("keys"); n != 0 {
		t.Fatalf("KEYS sent %d times", n)
	}
	if watch.count("scan") == 0 {
		t.Fatal("no SCAN seen: the hook did not watch the store's commands")
	}
}

// TestNoKeysHook shows that the hook of TestI1Conformance catches KEYS: a KEYS sent
// through a client that carries it is refused and reported.
func TestNoKeysHook(t *testing.T) {
	rdb := rawClient(t)
	var reports []string
	watch := newCommandWatch(func(format string, args ...any) { reports = append(reports, fmt.Sprintf(format, args...)) })
	rdb.AddHook(watch)
	err := rdb.Keys(context.Background(), "no-such-key-"+unique()+"*").Err()
	if !errors.Is(err, errKeysRefused) {
		t.Fatalf("KEYS through the hook: %v, want it refused", err)
	}
	if watch.count("keys") != 1 || len(reports) != 1 || !strings.Contains(reports[0], "KEYS") {
		t.Fatalf("the hook counted %d KEYS and reported %q", watch.count("keys"), reports)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if watch.count("ping") != 1 {
		t.Fatalf("the hook counted %d PING", watch.count("ping"))
	}
}
