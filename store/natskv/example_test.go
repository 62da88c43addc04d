package natskv_test

import (
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/natskv"
)

// A store on the NATS server at 127.0.0.1:4222 (started with JetStream: nats-server -js).
// Records of the database "shop" live in the bucket "shop"; each table is a part of its
// subjects.
func ExampleNewStore() {
	s := natskv.NewStore(
		store.Nodes("nats://127.0.0.1:4222"),
		store.Database("shop"),
		store.Table("orders"),
		natskv.Timeout(2*time.Second),
	)
	defer s.Close()

	if err := s.Write(&store.Record{Key: "order/1", Value: []byte(`{"total":12}`)}); err != nil {
		fmt.Println(err) // names the operation; errors.Is(err, natskv.ErrUnavailable) without a server
		return
	}
	_ = s.Write(&store.Record{Key: "order/2", Value: []byte(`{"total":30}`)}, store.WriteTTL(time.Hour))

	recs, _ := s.Read("order/", store.ReadPrefix())
	for _, r := range recs {
		fmt.Printf("%s=%s expires in %s\n", r.Key, r.Value, r.Expiry.Round(time.Hour))
	}
	if _, err := s.Read("order/3"); err == store.ErrNotFound {
		fmt.Println("order/3 not found")
	}
	// remove the whole database
	_ = s.Delete("shop", natskv.DeleteBucket())
}

// Linking the store into a program's --store flag: a main adds it to
// cmd.DefaultStores before the service parses its flags,
//
//	cmd.DefaultStores["natskv"] = natskv.NewStore
//
// or gives it to the Cmd it makes, as here; then --store natskv --store_address <url>
// picks it. Nothing connects until the store is used.
func ExampleNewStore_flag() {
	var st store.Store = store.NewMemoryStore()
	c := cmd.NewCmd(cmd.NewStore("natskv", natskv.NewStore))
	err := c.Init(cmd.Args("orders-service", "--store", "natskv", "--store_address", "127.0.0.1:4222", "--store_table", "orders"), cmd.Store(&st))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	o := st.Options()
	fmt.Println(st, o.Nodes, o.Database, o.Table)
	// Output: natskv [127.0.0.1:4222] micro orders
}
