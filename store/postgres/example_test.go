package postgres_test

import (
	"fmt"
	"log"
	"time"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/postgres"
)

// A store in the schema "shop" of a local server's database "app", table "carts". It
// needs the server, so it is compiled and not run.
func ExampleNewStore() {
	s := postgres.NewStore(
		store.Nodes("postgres://app@127.0.0.1:5432/app?sslmode=disable"),
		store.Database("shop"), store.Table("carts"),
		postgres.Timeout(2*time.Second),
	)
	defer s.Close()

	if err := s.Write(&store.Record{Key: "cart/alice", Value: []byte(`["book"]`)}, store.WriteTTL(24*time.Hour)); err != nil {
		log.Fatal(err)
	}
	recs, err := s.Read("cart/", store.ReadPrefix()) // a range of the primary key
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("%s=%s (expires in %s)\n", r.Key, r.Value, r.Expiry.Round(time.Hour))
	}
	if _, err := s.Read("cart/bob"); err == store.ErrNotFound {
		fmt.Println("bob has no cart")
	}
}
