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

// LeastLoaded learns the load of nodes from the calls that clients report through
// Tracker (the micro client does it for every attempt). With a call in flight on
// greeter-1 and none yet measured, the next calls go to greeter-2.
func ExampleLeastLoaded() {
	r := registry.NewMemoryRegistry()
	_ = r.Register(&registry.Service{Name: "greeter", Version: "1", Nodes: []*registry.Node{
		{Id: "greeter-1", Address: "127.0.0.1:8081"},
		{Id: "greeter-2", Address: "127.0.0.1:8082"},
	}})
	s := selector.NewSelector(selector.Registry(r), selector.SetStrategy(selector.LeastLoaded))
	defer s.Close()

	next, _ := s.Select("greeter")
	done := s.(selector.Tracker).Track("greeter", &registry.Node{Id: "greeter-1"}) // a call begins
	for i := 0; i < 3; i++ {
		node, _ := next()
		fmt.Println(node.Id)
	}
	done(nil) // the call ended well
	// Output:
	// greeter-2
	// greeter-2
	// greeter-2
}
