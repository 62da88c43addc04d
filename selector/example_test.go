package selector_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/selector"
)

func ExampleNewSelector() {
	r := registry.NewMemoryRegistry()
	_ = r.Register(&registry.Service{Name: "greeter", Version: "1", Nodes: []*registry.Node{
		{Id: "greeter-1", Address: "127.0.0.1:8081", Metadata: map[string]string{"zone": "eu"}},
		{Id: "greeter-2", Address: "127.0.0.1:8082", Metadata: map[string]string{"zone": "us"}},
	}})
	s := selector.NewSelector(selector.Registry(r))
	defer s.Close()

	next, err := s.Select("greeter", selector.WithFilter(selector.FilterLabel("zone", "us")))
	if err != nil {
		fmt.Println(err)
		return
	}
	node, _ := next()
	fmt.Println(node.Address)

	_, err = s.Select("unknown")
	fmt.Println(err)
	// Output:
	// 127.0.0.1:8082
	// not found
}
