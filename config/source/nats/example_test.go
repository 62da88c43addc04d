package nats_test

import (
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/config/source/nats"
)

// Example reads the document at the key micro_config of the bucket "default" of a local
// NATS server with JetStream, then follows its changes. It needs a running server, so
// it is compiled but not run.
func Example() {
	src := nats.NewSource(
		nats.WithUrl("nats://127.0.0.1:4222"),
		nats.WithBucket("default"),
		nats.WithKey("micro_config"),
		nats.WithTimeout(2*time.Second),
	)
	cs, err := src.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	// {} until something is put at the key, e.g. with
	// nats kv put default micro_config '{"database":{"host":"db1"}}'
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
