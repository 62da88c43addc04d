// Package registry is service discovery: services register their nodes (address,
// metadata, endpoints) and clients look them up by name.
//
// The interface and types follow Go Micro v5. Implementations: multicast DNS (this
// package, the default: NewMDNSRegistry, also as registry/mdns), memory (this package,
// for tests and single processes), etcd (registry/etcd) and NATS (registry/nats) for
// clusters, and a cache (registry/cache) in front of any of them, which the selector
// reads through.
package registry

import (
	"errors"
	"time"
)

// Registry registers services and finds them. Implementations are safe for concurrent
// use.
type Registry interface {
	Init(...Option) error
	Options() Options
	Register(*Service, ...RegisterOption) error
	Deregister(*Service, ...DeregisterOption) error
	// GetService returns one *Service per version of the named service, or ErrNotFound.
	GetService(string, ...GetOption) ([]*Service, error)
	ListServices(...ListOption) ([]*Service, error)
	Watch(...WatchOption) (Watcher, error)
	String() string
}

// Service is a named, versioned service and the nodes that serve it.
type Service struct {
	Name      string            `json:"name"`
	Version   string            `json:"version"`
	Metadata  map[string]string `json:"metadata"`
	Endpoints []*Endpoint       `json:"endpoints"`
	Nodes     []*Node           `json:"nodes"`
}

// Node is one instance of a service.
type Node struct {
	Metadata map[string]string `json:"metadata"`
	Id       string            `json:"id"`
	Address  string            `json:"address"`
}

// Endpoint describes a handler method or subscriber of a service.
type Endpoint struct {
	Request  *Value            `json:"request"`
	Response *Value            `json:"response"`
	Metadata map[string]string `json:"metadata"`
	Name     string            `json:"name"`
}

// Value describes the shape of a request or response type.
type Value struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Values []*Value `json:"values"`
}

// Watcher delivers registry changes. Next blocks until a change or Stop.
type Watcher interface {
	Next() (*Result, error)
	Stop()
}

// Result is one change seen by a Watcher. Action is "create", "update" or "delete".
type Result struct {
	Service *Service
	Action  string
}

// EventType is the kind of an Event.
type EventType int

// The event types.
const (
	Create EventType = iota
	Delete
	Update
)

// String returns "create", "delete", "update" or "unknown".
func (t EventType) String() string {
	switch t {
	case Create:
		return "create"
	case Delete:
		return "delete"
	case Update:
		return "update"
	default:
		return "unknown"
	}
}

// Event is a registry event, as declared by Go Micro.
type Event struct {
	Timestamp time.Time
	Service   *Service
	Id        string
	Type      EventType
}

var (
	// ErrNotFound is returned by GetService for a name with no registered node.
	ErrNotFound = errors.New("service not found")
	// ErrWatcherStopped is returned by Watcher.Next after Stop.
	ErrWatcherStopped = errors.New("watcher stopped")
)
