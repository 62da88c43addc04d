package registry_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/registry"
)

// A watcher sees registrations and deregistrations in order.
func ExampleWatch() {
	r := registry.NewMemoryRegistry()
	w, _ := r.Watch(registry.WatchService("greeter"))
	defer w.Stop()

	s := &registry.Service{Name: "greeter", Version: "1", Nodes: []*registry.Node{{Id: "greeter-1", Address: "127.0.0.1:8080"}}}
	_ = r.Register(s)
	_ = r.Register(s) // unchanged: no event
	_ = r.Deregister(s)

	for i := 0; i < 2; i++ {
		res, _ := w.Next()
		fmt.Println(res.Action, res.Service.Name, res.Service.Nodes[0].Id)
	}
	// Output:
	// create greeter greeter-1
	// delete greeter greeter-1
}

func ExampleCopyService() {
	s := &registry.Service{Name: "greeter", Nodes: []*registry.Node{{Id: "1", Metadata: map[string]string{"zone": "eu"}}}}
	c := registry.CopyService(s)
	c.Nodes[0].Metadata["zone"] = "us"
	fmt.Println(s.Nodes[0].Metadata["zone"], c.Nodes[0].Metadata["zone"])
	// Output: eu us
}
