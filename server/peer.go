package server

import (
	"strings"

	"github.com/seed-b3892490/micro/auth/ca"
	"github.com/seed-b3892490/micro/transport"
)

// PeerServiceKey is the metadata key holding the service name of the caller's verified
// TLS client certificate (its micro:// URI SAN, as auth/ca issues them). The server sets
// it; a caller cannot: the server drops it, like Local and Remote, from what callers
// send, on requests and on messages for subscribers alike.
const PeerServiceKey = "Micro-Peer-Service"

// serverOwned reports whether a header names metadata only the server sets.
func serverOwned(k string) bool {
	return strings.EqualFold(k, "Local") || strings.EqualFold(k, "Remote") || strings.EqualFold(k, PeerServiceKey)
}

// peerService returns the service named by the verified client certificate of sock's
// connection.
func peerService(sock interface{}) (string, bool) {
	ts, ok := sock.(transport.TLSSocket)
	if !ok {
		return "", false
	}
	return ca.PeerService(ts.ConnectionState())
}
