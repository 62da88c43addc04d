package nats

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/seed-b3892490/micro/registry"
)

// The messages are Go Micro's: JSON of a registry.Result (queries and announcements) or
// of a registry.Service (answers). Nodes carry one field more, "ttl": the milliseconds
// until the node expires unless renewed (0 or absent: never). Go Micro ignores it.

type wireNode struct {
	Metadata map[string]string `json:"metadata"`
	Id       string            `json:"id"`
	Address  string            `json:"address"`
	TTL      int64             `json:"ttl,omitempty"`
}

type wireService struct {
	Name      string               `json:"name"`
	Version   string               `json:"version"`
	Metadata  map[string]string    `json:"metadata"`
	Endpoints []*registry.Endpoint `json:"endpoints"`
	Nodes     []*wireNode          `json:"nodes"`
}

type wireResult struct {
	Action  string       `json:"Action"`
	Service *wireService `json:"Service"`
}

// maxTTL bounds the TTL a message may give a node; longer ones are cut to it.
const maxTTL = 365 * 24 * time.Hour

var errMalformed = errors.New("nats registry: malformed message")

// announcement is a decoded message of the watch subject.
type announcement struct {
	action  string            // "delete", or a registration ("create", "update", "put", …)
	service *registry.Service // Name set; Nodes without nils
	ttls    []time.Duration   // per node; 0: no expiry
}

// query is a decoded message of the query subject.
type query struct {
	list bool
	name string // of a get
}

func decodeAnnouncement(data []byte) (announcement, error) {
	var r wireResult
	if err := json.Unmarshal(data, &r); err != nil {
		return announcement{}, errors.Join(errMalformed, err)
	}
	if r.Action == "" || r.Service == nil {
		return announcement{}, errMalformed
	}
	s, ttls, err := fromWire(r.Service)
	if err != nil {
		return announcement{}, err
	}
	return announcement{action: r.Action, service: s, ttls: ttls}, nil
}

func decodeQuery(data []byte) (query, error) {
	var r wireResult
	if err := json.Unmarshal(data, &r); err != nil {
		return query{}, errors.Join(errMalformed, err)
	}
	switch r.Action {
	case "list":
		return query{list: true}, nil
	case "get":
		if r.Service == nil || r.Service.Name == "" {
			return query{}, errMalformed
		}
		return query{name: r.Service.Name}, nil
	}
	return query{}, errMalformed
}

func decodeAnswer(data []byte) (*registry.Service, []time.Duration, error) {
	var w wireService
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, nil, errors.Join(errMalformed, err)
	}
	return fromWire(&w)
}

// fromWire checks w and converts it, dropping null nodes and endpoints.
func fromWire(w *wireService) (*registry.Service, []time.Duration, error) {
	if w.Name == "" {
		return nil, nil, errMalformed
	}
	s := &registry.Service{Name: w.Name, Version: w.Version, Metadata: w.Metadata}
	for _, e := range w.Endpoints {
		if e != nil {
			s.Endpoints = append(s.Endpoints, e)
		}
	}
	ttls := make([]time.Duration, 0, len(w.Nodes))
	for _, n := range w.Nodes {
		if n == nil {
			continue
		}
		if n.TTL < 0 {
			return nil, nil, errMalformed
		}
		ttl := maxTTL
		if n.TTL < int64(maxTTL/time.Millisecond) {
			ttl = time.Duration(n.TTL) * time.Millisecond
		}
		s.Nodes = append(s.Nodes, &registry.Node{Id: n.Id, Address: n.Address, Metadata: n.Metadata})
		ttls = append(ttls, ttl)
	}
	return s, ttls, nil
}

// millis returns d in whole milliseconds, rounded up: a node that is live has a TTL of at
// least 1.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func wireNodeOf(n *registry.Node, ttl time.Duration) *wireNode {
	return &wireNode{Id: n.Id, Address: n.Address, Metadata: n.Metadata, TTL: millis(ttl)}
}

// encodeAnnouncement encodes a registration of node n of s (action != "delete", with the
// service's metadata and endpoints), or its deletion (name, version and node only).
func encodeAnnouncement(action string, s *registry.Service, n *registry.Node, ttl time.Duration) ([]byte, error) {
	ws := &wireService{Name: s.Name, Version: s.Version, Nodes: []*wireNode{wireNodeOf(n, ttl)}}
	if action != "delete" {
		ws.Metadata, ws.Endpoints = s.Metadata, s.Endpoints
	}
	return json.Marshal(&wireResult{Action: action, Service: ws})
}

// encodeQuery encodes a get of name, or a list when name is empty.
func encodeQuery(name string) []byte {
	r := wireResult{Action: "list"}
	if name != "" {
		r = wireResult{Action: "get", Service: &wireService{Name: name}}
	}
	b, _ := json.Marshal(&r) // strings only: cannot fail
	return b
}

// encodeAnswer encodes w as one message, or as several holding parts of its nodes when
// one would exceed max bytes (the asker merges them by version and node id). A single
// node that does not fit is left out.
func encodeAnswer(w *wireService, max int64) [][]byte {
	data, err := json.Marshal(w)
	if err != nil {
		return nil
	}
	if int64(len(data)) <= max {
		return [][]byte{data}
	}
	if len(w.Nodes) <= 1 {
		return nil
	}
	half := len(w.Nodes) / 2
	a, b := *w, *w
	a.Nodes, b.Nodes = w.Nodes[:half], w.Nodes[half:]
	return append(encodeAnswer(&a, max), encodeAnswer(&b, max)...)
}
