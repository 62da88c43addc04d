package selector

import (
	"github.com/seed-b3892490/micro/registry"
)

// FilterEndpoint keeps the services that have the endpoint name.
func FilterEndpoint(name string) Filter {
	return func(old []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range old {
			for _, e := range s.Endpoints {
				if e.Name == name {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
}

// FilterLabel keeps the nodes whose metadata has key set to val.
func FilterLabel(key, val string) Filter {
	return func(old []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range old {
			var nodes []*registry.Node
			for _, n := range s.Nodes {
				if n.Metadata != nil && n.Metadata[key] == val {
					nodes = append(nodes, n)
				}
			}
			if len(nodes) == 0 {
				continue
			}
			c := *s
			c.Nodes = nodes
			out = append(out, &c)
		}
		return out
	}
}

// FilterVersion keeps the services of one version.
func FilterVersion(version string) Filter {
	return func(old []*registry.Service) []*registry.Service {
		var out []*registry.Service
		for _, s := range old {
			if s.Version == version {
				out = append(out, s)
			}
		}
		return out
	}
}
