package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

const (
	// DefaultValidity is how long a root made by New is valid.
	DefaultValidity = 365 * 24 * time.Hour
	// DefaultIssueTTL is the lifetime of a certificate issued with a ttl of 0.
	DefaultIssueTTL = 24 * time.Hour
	// URIScheme is the scheme of the URI SAN that names a service: micro://<service>.
	URIScheme = "micro"
	// backdate is how far before the issue time a certificate becomes valid, so that
	// peers whose clocks are slightly behind accept it.
	backdate = time.Minute
	// maxServiceLen bounds the length of a service name.
	maxServiceLen = 253
)

// CA is a certificate authority: a root certificate and its private key. It is safe for
// concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	pool    *x509.CertPool
}

// Option configures New.
type Option func(*options)

type options struct {
	validity time.Duration
}

// Validity sets how long the root made by New is valid. Default DefaultValidity; zero
// or less keeps the default.
func Validity(d time.Duration) Option { return func(o *options) { o.validity = d } }

// New makes a CA with a new self-signed root named name: an ECDSA P-256 key, a
// certificate that may sign leaf certificates only (MaxPathLen 0), valid from a minute
// ago for Validity (default one year).
func New(name string, opts ...Option) (*CA, error) {
	if name == "" {
		return nil, errors.New("ca: the CA needs a name")
	}
	o := options{validity: DefaultValidity}
	for _, opt := range opts {
		opt(&o)
	}
	if o.validity <= 0 {
		o.validity = DefaultValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate the root key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"micro"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(o.validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: create the root certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse the root certificate: %w", err)
	}
	return newCA(cert, key), nil
}

// Load returns the CA whose root certificate and private key are in certPEM (a
// "CERTIFICATE" block) and keyPEM (a PKCS#8 "PRIVATE KEY" block, as KeyPEM writes, or
// an "EC PRIVATE KEY" block). The certificate must be a CA certificate that may sign
// certificates, valid now, and match the key.
func Load(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("ca: no CERTIFICATE PEM block in the certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parse the certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: the certificate is not a CA certificate that may sign certificates")
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("ca: the certificate is valid from %s to %s, not now", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("ca: no PEM block in the key")
	}
	var key any
	switch kb.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		return nil, fmt.Errorf("ca: unsupported key PEM block %q", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: parse the key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: a %T key cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("ca: the key does not match the certificate")
	}
	return newCA(cert, signer), nil
}

func newCA(cert *x509.Certificate, key crypto.Signer) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
		pool:    pool,
	}
}

// CertPEM returns the root certificate, PEM-encoded: what peers need to trust the CA.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// KeyPEM returns the root's private key as a PKCS#8 "PRIVATE KEY" PEM block. Keep it
// secret: whoever holds it can issue certificates for any service.
func (c *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Pool returns a new certificate pool holding only the root certificate.
func (c *CA) Pool() *x509.CertPool { return c.pool.Clone() }

// Certificate returns the root certificate. Callers must not modify it.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// IssueOption configures Issue.
type IssueOption func(*issueOptions)

type issueOptions struct {
	dns []string
	ips []net.IP
	// notBefore and notAfter, when set, replace the validity window (tests issue expired
	// certificates with them).
	notBefore, notAfter time.Time
}

// DNSNames adds DNS SANs to an issued certificate, so that clients that check hostnames
// (curl, browsers) can reach the service by name. Services check each other by the
// micro:// URI SAN, not by these.
func DNSNames(names ...string) IssueOption {
	return func(o *issueOptions) { o.dns = append(o.dns, names...) }
}

// IPAddresses adds IP SANs to an issued certificate, for clients that check the address
// they dialled. Services check each other by the micro:// URI SAN, not by these.
func IPAddresses(ips ...net.IP) IssueOption {
	return func(o *issueOptions) { o.ips = append(o.ips, ips...) }
}

// validityWindow replaces the validity window of an issued certificate; for tests.
func validityWindow(notBefore, notAfter time.Time) IssueOption {
	return func(o *issueOptions) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// Issue issues a certificate for service, valid from a minute ago until ttl from now
// (DefaultIssueTTL when ttl is 0; rounded up to a whole second, as certificates record
// whole seconds; never beyond the root's expiry), with a new ECDSA
// P-256 key. The certificate names the service with the URI SAN micro://<service> and
// the CommonName, and may be used by TLS servers and clients. A service name is one or
// more dot-separated labels of ASCII letters, digits, '-', '_' and '~'.
func (c *CA) Issue(service string, ttl time.Duration, opts ...IssueOption) (*tls.Certificate, error) {
	if err := checkService(service); err != nil {
		return nil, err
	}
	if ttl < 0 {
		return nil, fmt.Errorf("ca: negative ttl %s", ttl)
	}
	if ttl == 0 {
		ttl = DefaultIssueTTL
	}
	var o issueOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-backdate), ceilSecond(now.Add(ttl))
	if !o.notBefore.IsZero() || !o.notAfter.IsZero() {
		notBefore, notAfter = o.notBefore, o.notAfter
	} else if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
		if !notAfter.After(now) {
			return nil, errors.New("ca: the root certificate has expired")
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate a key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: service},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{serviceURI(service)},
		DNSNames:              o.dns,
		IPAddresses:           o.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: issue a certificate for %s: %w", service, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse the certificate of %s: %w", service, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ceilSecond rounds t up to a whole second: certificates record whole seconds, and a
// certificate must not expire sooner than its ttl says.
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); s.Before(t) {
		return s.Add(time.Second)
	}
	return t
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("ca: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func serviceURI(service string) *url.URL {
	return &url.URL{Scheme: URIScheme, Host: service}
}

// checkService returns an error unless service is a valid service name (see Issue).
func checkService(service string) error {
	if service == "" {
		return errors.New("ca: empty service name")
	}
	if len(service) > maxServiceLen {
		return fmt.Errorf("ca: service name of %d bytes, longer than %d", len(service), maxServiceLen)
	}
	label := 0
	for i := 0; i < len(service); i++ {
		b := service[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_', b == '~':
			label++
		case b == '.':
			if label == 0 {
				return fmt.Errorf("ca: service name %q has an empty label", service)
			}
			label = 0
		default:
			return fmt.Errorf("ca: service name %q has the character %q: use letters, digits, '.', '-', '_' and '~'", service, b)
		}
	}
	if label == 0 {
		return fmt.Errorf("ca: service name %q has an empty label", service)
	}
	return nil
}

// ServiceName returns the service that cert names: the host of its first micro:// URI
// SAN. It reports false when cert has no such SAN or the first one is not exactly
// micro://<valid service name>. It does not verify the certificate: use PeerService on
// the state of a verified connection to learn who a peer is.
func ServiceName(cert *x509.Certificate) (string, bool) {
	if cert == nil {
		return "", false
	}
	for _, u := range cert.URIs {
		if u == nil || u.Scheme != URIScheme {
			continue
		}
		if u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
			return "", false
		}
		if checkService(u.Host) != nil {
			return "", false
		}
		return u.Host, true
	}
	return "", false
}

// PeerService returns the service named by the verified peer certificate of a TLS
// connection: the leaf of state.VerifiedChains[0]. It reports false when state is nil or
// holds no verified chain, that is when the peer's certificate was not verified by the
// TLS stack; a server using ServerTLSConfig always has one. (On the dialling side of
// ClientTLSConfig the chain is verified by its own callback, so the TLS stack records
// none; use ExpectService there to require a server's name.)
func PeerService(state *tls.ConnectionState) (string, bool) {
	if state == nil || len(state.VerifiedChains) == 0 {
		return "", false
	}
	var leaf *x509.Certificate
	switch {
	case len(state.VerifiedChains[0]) > 0:
		leaf = state.VerifiedChains[0][0]
	case len(state.PeerCertificates) > 0:
		leaf = state.PeerCertificates[0]
	}
	return ServiceName(leaf)
}
