package redis

import (
	"net/url"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// TestCreateLostReply: a Create whose SET NX ran on the server but whose reply was lost
// is tried again by the client, finds the key holding its own record, and succeeds: the
// caller created the record and is told so, not ErrExists. A Create of another value
// then still gets ErrExists.
func TestCreateLostReply(t *testing.T) {
	requireRedis(t)
	u, err := url.Parse(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	db := "rt_" + unique()
	cleanupScope(t, db, "")
	key := "lost-reply-" + unique()
	p := testutil.StartReplyCutter(t, u.Host, []byte(key))
	u.Host = p.Addr()
	s := NewStore(store.Nodes(u.String()), store.Database(db), Timeout(2*time.Second))
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Write(&store.Record{Key: "warm", Value: []byte("x")}); err != nil {
		t.Fatalf("Write through the proxy: %v", err)
	}
	storetest.LostReply(t, s, key, p.Arm, p.Cut)
}
