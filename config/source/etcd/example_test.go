package etcd_test

import (
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/config/source/etcd"
)

// Example reads the keys under /micro/config of a local etcd, then follows their
// changes. It needs a running etcd, so it is compiled but not run.
func Example() {
	src := etcd.NewSource(
		etcd.WithAddress("127.0.0.1:2379"),
		etcd.WithPrefix("/micro/config"),
		etcd.WithDialTimeout(2*time.Second),
	)
	cs, err := src.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	// With /micro/config/database/host = db1: {"database":{"host":"db1"}}
	fmt.Println(string(cs.Data))

	w, err := src.Watch()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Stop()
	for {
		cs, err := w.Next()
		if err != nil {
			fmt.Println(err) // transient, or source.ErrWatcherStopped after Stop
			return
		}
		fmt.Println(string(cs.Data))
	}
}
