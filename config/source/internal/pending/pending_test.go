package pending

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/config/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewestWinsErrorsAfterDocuments(t *testing.T) {
	b := New()
	b.Fail(errors.New("e1"))
	b.Publish(&source.ChangeSet{Data: []byte("1")})
	b.Publish(&source.ChangeSet{Data: []byte("2")})
	if cs, err := b.Next(); err != nil || string(cs.Data) != "2" {
		t.Fatalf("%v %v", cs, err)
	}
	b.Publish(&source.ChangeSet{Data: []byte("3")})
	b.Fail(errors.New("e2"))
	if cs, err := b.Next(); err != nil || string(cs.Data) != "3" {
		t.Fatalf("document first: %v %v", cs, err)
	}
	if _, err := b.Next(); err == nil || err.Error() != "e2" {
		t.Fatalf("then the error: %v", err)
	}
	got := make(chan error, 1)
	go func() { _, err := b.Next(); got <- err }()
	if !b.Close() || b.Close() {
		t.Fatal("Close reports the first call only")
	}
	select {
	case err := <-got:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Next")
	}
	b.Publish(&source.ChangeSet{})
	b.Fail(errors.New("late"))
	if _, err := b.Next(); !errors.Is(err, source.ErrWatcherStopped) {
		t.Fatal(err)
	}
	<-b.Done()
}
