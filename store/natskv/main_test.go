package natskv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
)

func TestMain(m *testing.M) {
	bucketCreated = created.add
	goleak.VerifyTestMain(cleanupM{m})
}

// cleanupM deletes, once the tests have run, the buckets they created on the shared
// server and did not delete themselves (a test that failed half-way, say).
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	if bigStore.s != nil {
		_ = bigStore.s.Close()
	}
	if err := created.deleteAll(natsURL()); err != nil {
		os.Stderr.WriteString("natskv tests: deleting the test buckets: " + err.Error() + "\n")
	}
	return code
}

// created records the buckets the package's stores create during the tests.
var created = &bucketSet{names: map[string]bool{}}

type bucketSet struct {
	mu    sync.Mutex
	names map[string]bool
}

func (b *bucketSet) add(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.names[name] = true
}

// deleteAll deletes the recorded buckets that are on the server at url and forgets them
// all (those of private servers are gone with their servers).
func (b *bucketSet) deleteAll(url string) error {
	b.mu.Lock()
	names := b.names
	b.names = map[string]bool{}
	b.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var errs []error
	for name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := js.DeleteKeyValue(ctx, name)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// requireNATS skips (or fails, with MICRO_TEST_REQUIRE=1) when the shared server (with JetStream) is
// unreachable.
func requireNATS(t testing.TB) {
	t.Helper()
	natsMaxPayload = testutil.RequireNATS(t, true)
}

// natsMaxPayload is the shared server's max payload, once requireNATS has run.
var natsMaxPayload int64

// natsURL is the shared server's address.
func natsURL() string { return testutil.SharedNATSURL() }

func unique() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newStore returns a store on the test server whose database is unique to the test; the
// store is closed and its database's bucket deleted at the end of the test.
func newStore(t testing.TB, opts ...store.Option) (store.Store, string) {
	t.Helper()
	requireNATS(t)
	db := "test_" + unique()
	s := NewStore(append([]store.Option{store.Nodes(natsURL()), store.Database(db)}, opts...)...)
	t.Cleanup(func() {
		if err := s.Delete(db, DeleteBucket()); err != nil {
			t.Errorf("delete the test bucket: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, db
}

// admin returns a JetStream context of its own on url, closed at the end of the test,
// to look at what the store left on the server.
func admin(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ctxT returns a context bounded by d, cancelled at the end of the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
