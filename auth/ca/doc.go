// Package ca is micro's built-in certificate authority: it gives each service a
// short-lived X.509 certificate that names it, so that services authenticate each other
// with mutual TLS.
//
// # Model
//
// A CA is a self-signed root (New, or Load from PEM). Every service trusts the root and
// nothing else: a certificate is accepted only when it chains to that root. Issue signs
// a leaf certificate for one service: ECDSA P-256, usable as a TLS server and client
// certificate, whose identity is the URI SAN micro://<service> (the CommonName repeats
// it for people; it is not used for decisions). ServiceName reads the service back from
// a certificate, PeerService from the verified peer of a TLS connection: a server turns
// the caller's service into an account from that.
//
// Services are dialled by IP address and port, found in the registry, so hostnames say
// nothing about who a peer is. Peers are therefore checked by chain and name, never by
// hostname: the peer certificate must chain to the CA, be valid now, carry the right
// extended key usage, and name a service with a micro:// URI SAN.
//
// # Rotation
//
// An Identity is a service's rotating certificate (CA.NewIdentity). Certificates are
// short-lived (TTL, default one hour) and renewed before they expire (by default once
// two thirds of the lifetime has passed; see RenewAt and RenewBefore). Renewal is lazy:
// the TLS configurations of an Identity ask it for the certificate at every handshake,
// and the handshake that finds the certificate due issues the next one, so there is no
// background goroutine and an idle service does no work. Connections already open keep
// the certificate they were made with; every new connection presents the current one.
// Rotate renews at once.
//
// # Verification is never skipped
//
// ServerTLSConfig requires and verifies a client certificate against the CA.
// ClientTLSConfig sets tls.Config.InsecureSkipVerify, because Go's built-in check of the
// server certificate also matches the dialled hostname, which for an IP:port out of the
// registry would always fail; it sets it only together with a VerifyConnection callback
// that performs the complete verification itself (chain to the CA pool, validity at the
// current time, server auth usage, a micro:// URI SAN, and the expected service when
// ExpectService is given). A connection whose peer fails any of these is refused during
// the handshake, before a request is sent. Never use InsecureSkipVerify without such a
// callback; the zero tls.Config verifies against the system roots and the hostname,
// which refuses the certificates of this CA.
//
// With the HTTP transport, listen with TLSConfig(id.ServerTLSConfig()) and dial with
// TLSConfig(id.ClientTLSConfig()); the HTTP broker, which listens and dials with one
// configuration, takes id.PeerTLSConfig(). The transport's server sockets implement
// transport.TLSSocket, whose ConnectionState goes to PeerService.
package ca
