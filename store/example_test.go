package store_test

import (
	"fmt"
	"os"
	"time"

	"github.com/seed-b3892490/micro/store"
)

func ExampleNewFileStore() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s := store.NewFileStore(store.DirOption(dir), store.Table("users"))
	defer s.Close()

	_ = s.Write(&store.Record{Key: "user/1", Value: []byte("alice")})
	_ = s.Write(&store.Record{Key: "user/2", Value: []byte("bob")})
	_ = s.Write(&store.Record{Key: "session/9", Value: []byte("token")}, store.WriteTTL(time.Hour))

	recs, _ := s.Read("user/", store.ReadPrefix())
	for _, r := range recs {
		fmt.Printf("%s=%s\n", r.Key, r.Value)
	}
	keys, _ := s.List()
	fmt.Println(keys)
	_, err = s.Read("user/3")
	fmt.Println(err == store.ErrNotFound)
	// Output:
	// user/1=alice
	// user/2=bob
	// [session/9 user/1 user/2]
	// true
}

func ExampleNewRecord() {
	type profile struct {
		Name string `json:"name"`
	}
	s := store.NewMemoryStore()
	_ = s.Write(store.NewRecord("profile/1", profile{Name: "alice"}))

	recs, _ := s.Read("profile/1")
	var p profile
	_ = recs[0].Decode(&p)
	fmt.Println(p.Name, string(recs[0].Value))
	// Output: alice {"name":"alice"}
}

func ExampleScope() {
	s := store.NewMemoryStore()
	orders := store.Scope(s, "shop", "orders")
	_ = orders.Write(&store.Record{Key: "o-1", Value: []byte("3 apples")})

	recs, _ := s.Read("o-1", store.ReadFrom("shop", "orders"))
	fmt.Println(string(recs[0].Value))
	_, err := s.Read("o-1") // the store's own table, micro/micro
	fmt.Println(err)
	// Output:
	// 3 apples
	// not found
}

func ExampleCreator() {
	s := store.NewMemoryStore()
	claim := func(node string) error {
		return s.(store.Creator).Create(&store.Record{Key: "leader", Value: []byte(node)}, store.WriteTTL(10*time.Second))
	}
	fmt.Println(claim("node-1"))
	fmt.Println(claim("node-2") == store.ErrExists)
	recs, _ := s.Read("leader")
	fmt.Println(string(recs[0].Value))
	// Output:
	// <nil>
	// true
	// node-1
}
