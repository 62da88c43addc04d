package etcd_test

import (
	"fmt"
	"io"
	"time"

	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/registry/etcd"
)

// Constructing a registry connects to nothing: the first call does.
func Example() {
	r := etcd.NewEtcdRegistry(registry.Addrs("10.0.0.1:2379", "10.0.0.2:2379"), registry.Timeout(2*time.Second))
	defer r.(io.Closer).Close()
	fmt.Println(r.String(), r.Options().Addrs, r.Options().Timeout)
	// Output: etcd [10.0.0.1:2379 10.0.0.2:2379] 2s
}

// A node registered with a TTL stays while it is registered again before the TTL passes,
// as a server does every RegisterInterval. (Not run: it needs an etcd server.)
func ExampleNewEtcdRegistry() {
	r := etcd.NewEtcdRegistry(registry.Addrs("127.0.0.1:2379"), etcd.Auth("user", "password"))
	defer r.(io.Closer).Close()
	svc := &registry.Service{Name: "greeter", Version: "1.0", Nodes: []*registry.Node{{Id: "greeter-1", Address: "10.0.0.5:8080"}}}
	if err := r.Register(svc, registry.RegisterTTL(90*time.Second)); err != nil {
		fmt.Println("register:", err)
		return
	}
	defer r.Deregister(svc)
	services, err := r.GetService("greeter")
	if err != nil {
		fmt.Println("lookup:", err)
		return
	}
	fmt.Println(services[0].Nodes[0].Address)
}
