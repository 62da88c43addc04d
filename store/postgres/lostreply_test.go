package postgres

import (
	"errors"
	"net/url"
	"testing"

	"github.com/seed-b3892490/micro/internal/testutil"
	"github.com/seed-b3892490/micro/store"
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
	p.Arm()
	err = s.(store.Creator).Create(&store.Record{Key: key, Value: []byte("mine")})
	if p.Cut() != 1 {
		t.Fatalf("the proxy swallowed %d replies, want 1 (the test did not cause the fault)", p.Cut())
	}
	if err != nil {
		t.Fatalf("Create whose first answer was lost = %v, want nil: the record it wrote is its own", err)
	}
	recs, err := s.Read(key)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "mine" {
		t.Fatalf("Read after Create = %v, %v", recs, err)
	}
	if err := s.(store.Creator).Create(&store.Record{Key: key, Value: []byte("other")}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second Create of another value = %v, want ErrExists", err)
	}
}
