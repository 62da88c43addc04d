package server

import (
	"crypto/tls"
	"net/url"
	"strings"
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

// tlsSocket is a socket of a TLS connection.
type tlsSocket interface {
	ConnectionState() *tls.ConnectionState
}

// peerService returns the service named by the verified client certificate of sock's
// connection.
func peerService(sock interface{}) (string, bool) {
	ts, ok := sock.(tlsSocket)
	if !ok {
		return "", false
	}
	return PeerServiceFromState(ts.ConnectionState())
}

// PeerServiceFromState returns the service named by the first micro:// URI SAN of the
// verified client certificate of a TLS connection; false when the peer presented no
// certificate that chains to the server's client CAs.
func PeerServiceFromState(state *tls.ConnectionState) (string, bool) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return "", false
	}
	return serviceFromURIs(state.VerifiedChains[0][0].URIs)
}

func serviceFromURIs(uris []*url.URL) (string, bool) {
	for _, u := range uris {
		if u != nil && u.Scheme == "micro" && u.Host != "" {
			return u.Host, true
		}
	}
	return "", false
}
