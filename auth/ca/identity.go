package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	// DefaultIdentityTTL is the lifetime of the certificates of an Identity.
	DefaultIdentityTTL = time.Hour
	// DefaultRenewAt is the fraction of a certificate's lifetime after which an Identity
	// renews it.
	DefaultRenewAt = 2.0 / 3.0
)

// Identity is a service's rotating certificate, issued by a CA. Its TLS configurations
// ask it for the certificate at every handshake, and it issues a new one when the
// current one is due for renewal (see the package documentation). It is safe for
// concurrent use.
type Identity struct {
	ca          *CA
	service     string
	ttl         time.Duration
	renewAt     float64
	renewBefore time.Duration
	issueOpts   []IssueOption

	mu      sync.Mutex
	cur     *tls.Certificate
	renewBy time.Time // when cur is due for renewal
}

// IdentityOption configures NewIdentity.
type IdentityOption func(*Identity)

// TTL sets the lifetime of the identity's certificates. Default DefaultIdentityTTL;
// zero or less keeps the default.
func TTL(d time.Duration) IdentityOption { return func(id *Identity) { id.ttl = d } }

// RenewAt renews a certificate once fraction (between 0 and 1, exclusive) of its
// lifetime has passed. Default DefaultRenewAt (two thirds). It replaces RenewBefore.
func RenewAt(fraction float64) IdentityOption {
	return func(id *Identity) { id.renewAt, id.renewBefore = fraction, 0 }
}

// RenewBefore renews a certificate when less than d of its lifetime remains; d must be
// shorter than the TTL. It replaces RenewAt.
func RenewBefore(d time.Duration) IdentityOption {
	return func(id *Identity) { id.renewBefore, id.renewAt = d, 0 }
}

// WithIssueOptions applies opts (DNSNames, IPAddresses) to every certificate of the
// identity.
func WithIssueOptions(opts ...IssueOption) IdentityOption {
	return func(id *Identity) { id.issueOpts = append(id.issueOpts, opts...) }
}

// NewIdentity returns the identity of service, with its first certificate issued.
func (c *CA) NewIdentity(service string, opts ...IdentityOption) (*Identity, error) {
	id := &Identity{ca: c, service: service, ttl: DefaultIdentityTTL, renewAt: DefaultRenewAt}
	for _, o := range opts {
		o(id)
	}
	if id.ttl <= 0 {
		id.ttl = DefaultIdentityTTL
	}
	switch {
	case id.renewBefore < 0 || (id.renewBefore > 0 && id.renewBefore >= id.ttl):
		return nil, fmt.Errorf("ca: RenewBefore(%s) must be positive and shorter than the TTL %s", id.renewBefore, id.ttl)
	case id.renewBefore == 0 && (id.renewAt <= 0 || id.renewAt >= 1):
		return nil, fmt.Errorf("ca: RenewAt(%v) must be between 0 and 1", id.renewAt)
	}
	if err := id.Rotate(); err != nil {
		return nil, err
	}
	return id, nil
}

// Service returns the name of the identity's service.
func (id *Identity) Service() string { return id.service }

// CA returns the CA that issues the identity's certificates.
func (id *Identity) CA() *CA { return id.ca }

// Rotate issues a new certificate at once; new connections present it.
func (id *Identity) Rotate() error {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.rotateLocked(time.Now())
}

func (id *Identity) rotateLocked(now time.Time) error {
	cert, err := id.ca.Issue(id.service, id.ttl, id.issueOpts...)
	if err != nil {
		return err
	}
	life := cert.Leaf.NotAfter.Sub(now)
	if id.renewBefore > 0 {
		id.renewBy = cert.Leaf.NotAfter.Add(-id.renewBefore)
	} else {
		id.renewBy = now.Add(time.Duration(float64(life) * id.renewAt))
	}
	id.cur = cert
	return nil
}

// Current returns the certificate in use, without renewing it. Callers must not modify
// it.
func (id *Identity) Current() *tls.Certificate {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.cur
}

// certificate returns the certificate to present in a handshake, renewing it first when
// it is due. When renewal fails the current certificate is kept while it is valid.
func (id *Identity) certificate() (*tls.Certificate, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	now := time.Now()
	if now.Before(id.renewBy) {
		return id.cur, nil
	}
	err := id.rotateLocked(now)
	if err != nil && !now.Before(id.cur.Leaf.NotAfter) {
		return nil, fmt.Errorf("ca: the certificate of %s expired and cannot be renewed: %w", id.service, err)
	}
	return id.cur, nil
}

// ServerTLSConfig returns a TLS configuration for the listeners of the service: it
// presents the identity's current certificate, requires every client to present a
// certificate that chains to the CA, is valid and usable for client auth, and names a
// service with a micro:// URI SAN, and offers HTTP/2 and HTTP/1.1 (ALPN), TLS 1.2 at
// least (TLS 1.3 is preferred when both sides have it). Session tickets are off, so that
// every connection presents and verifies current certificates. Each call returns a new
// configuration.
func (id *Identity) ServerTLSConfig() *tls.Config {
	pool := id.ca.Pool()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return id.certificate()
		},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              pool,
		NextProtos:             []string{"h2", "http/1.1"},
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: errors.New("ca: the client certificate was not verified")}
			}
			_, err := verifyPeer(cs.PeerCertificates, pool, x509.ExtKeyUsageClientAuth, "")
			return err
		},
	}
}

// ClientOption configures ClientTLSConfig and PeerTLSConfig.
type ClientOption func(*clientOptions)

type clientOptions struct {
	expect string
}

// ExpectService requires the server to be the service name, besides holding a valid
// certificate of the CA.
func ExpectService(name string) ClientOption {
	return func(o *clientOptions) { o.expect = name }
}

// ClientTLSConfig returns a TLS configuration for dialling other services: it presents
// the identity's current certificate when the server asks for one, and accepts a server
// only if its certificate chains to the CA, is valid now, is usable for server auth and
// names a service with a micro:// URI SAN (the one ExpectService names, if given).
//
// Services are dialled by IP:port, which a certificate does not name, so the
// configuration sets InsecureSkipVerify to turn off Go's hostname-matching check. It
// does so only together with a VerifyConnection callback that verifies the chain itself,
// as described: certificate verification is never skipped, only the hostname check is
// replaced by the CA and micro:// URI SAN checks. Do not remove VerifyConnection from
// the returned configuration.
//
// The dialling side records no verified chains (the TLS stack did not verify), so
// PeerService reports false on its connection state; ExpectService is the way to
// require a particular server. Each call returns a new configuration.
func (id *Identity) ClientTLSConfig(opts ...ClientOption) *tls.Config {
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	pool := id.ca.Pool()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.certificate()
		},
		RootCAs: pool,
		// Hostname matching off; the chain is verified by VerifyConnection below.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := verifyPeer(cs.PeerCertificates, pool, x509.ExtKeyUsageServerAuth, o.expect)
			return err
		},
	}
}

// PeerTLSConfig returns one TLS configuration for components that listen and dial with
// the same configuration, such as the HTTP broker: dialling, it is ClientTLSConfig;
// serving, its GetConfigForClient hands each handshake a ServerTLSConfig. Each call
// returns a new configuration.
func (id *Identity) PeerTLSConfig(opts ...ClientOption) *tls.Config {
	cfg := id.ClientTLSConfig(opts...)
	srv := id.ServerTLSConfig()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return srv, nil }
	return cfg
}

// verifyPeer verifies a peer's certificate chain against pool at the current time for
// usage, and returns the service it names, which must be expect when expect is not
// empty. Its errors are *tls.CertificateVerificationError.
func verifyPeer(certs []*x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage, expect string) (string, error) {
	fail := func(err error) (string, error) {
		return "", &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	if len(certs) == 0 {
		return fail(errors.New("ca: the peer presented no certificate"))
	}
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return fail(err)
	}
	name, ok := ServiceName(certs[0])
	if !ok {
		return fail(errors.New("ca: the peer certificate names no service (no micro:// URI SAN)"))
	}
	if expect != "" && name != expect {
		return fail(fmt.Errorf("ca: the peer is %q, not the expected %q", name, expect))
	}
	return name, nil
}
