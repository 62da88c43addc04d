package registry

import (
	"maps"
	"sort"
)

// CopyService returns a deep copy of s.
func CopyService(s *Service) *Service {
	if s == nil {
		return nil
	}
	c := &Service{Name: s.Name, Version: s.Version, Metadata: maps.Clone(s.Metadata)}
	if s.Endpoints != nil {
		c.Endpoints = make([]*Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			c.Endpoints[i] = copyEndpoint(e)
		}
	}
	if s.Nodes != nil {
		c.Nodes = make([]*Node, len(s.Nodes))
		for i, n := range s.Nodes {
			c.Nodes[i] = copyNode(n)
		}
	}
	return c
}

// Copy returns deep copies of services.
func Copy(current []*Service) []*Service {
	out := make([]*Service, len(current))
	for i, s := range current {
		out[i] = CopyService(s)
	}
	return out
}

func copyNode(n *Node) *Node {
	if n == nil {
		return nil
	}
	return &Node{Id: n.Id, Address: n.Address, Metadata: maps.Clone(n.Metadata)}
}

func copyEndpoint(e *Endpoint) *Endpoint {
	if e == nil {
		return nil
	}
	return &Endpoint{Name: e.Name, Request: copyValue(e.Request), Response: copyValue(e.Response), Metadata: maps.Clone(e.Metadata)}
}

func copyValue(v *Value) *Value {
	if v == nil {
		return nil
	}
	c := &Value{Name: v.Name, Type: v.Type}
	if v.Values != nil {
		c.Values = make([]*Value, len(v.Values))
		for i, x := range v.Values {
			c.Values[i] = copyValue(x)
		}
	}
	return c
}

// sortServices orders services by name, then version.
func sortServices(out []*Service) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
}
