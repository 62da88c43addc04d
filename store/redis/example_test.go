package redis_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/store"
	"github.com/seed-b3892490/micro/store/redis"
)

// A store in Redis: records with a TTL expire by Redis's own expiry, and prefix reads
// are sorted by key. (It needs a server, so it is compiled but not run by go test.)
func ExampleNewStore() {
	s := redis.NewStore(
		store.Nodes("redis://127.0.0.1:6379/0"),
		store.Database("shop"), store.Table("carts"),
		redis.Timeout(2*time.Second),
	)
	defer s.Close()

	if err := s.Write(&store.Record{Key: "cart/alice", Value: []byte("3 apples")}, store.WriteTTL(time.Hour)); err != nil {
		if errors.Is(err, redis.ErrUnavailable) {
			fmt.Println("Redis is down:", err)
			return
		}
		panic(err)
	}
	_ = s.Write(&store.Record{Key: "cart/bob", Value: []byte("1 pear")})

	recs, _ := s.Read("cart/", store.ReadPrefix())
	for _, r := range recs {
		fmt.Printf("%s=%s (expires in about %s)\n", r.Key, r.Value, r.Expiry.Round(time.Hour))
	}
	_, err := s.Read("cart/carol")
	fmt.Println(err == store.ErrNotFound)
}
