package postgres

import (
	"net/url"
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/storetest"
)

// TestCreateLostReply: a Create whose INSERT ran on the server but whose answer was lost
// with its connection is sent again, finds its own value under the key, and succeeds: the
// caller created the record and is told so, not ErrExists. A Create of another value
// then still gets ErrExists.
func TestCreateLostReply(t *testing.T) {
	dsn := requireServer(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := unique("lost")
	dropAtEnd(t, db)
	key := "lost-reply-" + db
	p := testutil.StartReplyCutter(t, u.Host, []byte(key))
	u.Host = p.Addr()
	s := NewStore(store.Nodes(u.String()), store.Database(db))
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Write(&store.Record{Key: "warm", Value: []byte("x")}); err != nil {
		t.Fatalf("Write through the proxy: %v", err)
	}
	storetest.LostReply(t, s, key, p.Arm, p.Cut)
}
