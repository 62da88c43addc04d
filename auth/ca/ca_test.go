package ca_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/auth/ca"
)

func newCA(t testing.TB, opts ...ca.Option) *ca.CA {
	t.Helper()
	c, err := ca.New("micro test root", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newIdentity(t testing.TB, c *ca.CA, service string, opts ...ca.IdentityOption) *ca.Identity {
	t.Helper()
	id, err := c.NewIdentity(service, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNewRoot(t *testing.T) {
	c := newCA(t, ca.Validity(48*time.Hour))
	root := c.Certificate()
	if !root.IsCA || root.KeyUsage&x509.KeyUsageCertSign == 0 || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Fatalf("root: IsCA %v, key usage %v, MaxPathLen %d (zero %v)", root.IsCA, root.KeyUsage, root.MaxPathLen, root.MaxPathLenZero)
	}
	if root.PublicKeyAlgorithm != x509.ECDSA || root.Subject.CommonName != "micro test root" {
		t.Fatalf("root: %v key, subject %v", root.PublicKeyAlgorithm, root.Subject)
	}
	if d := time.Until(root.NotAfter); d < 47*time.Hour || d > 48*time.Hour {
		t.Fatalf("root valid for %s more, want 48 h", d)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Fatalf("root is not self-signed: %v", err)
	}
	if d := time.Until(newCA(t).Certificate().NotAfter); d < 364*24*time.Hour || d > ca.DefaultValidity {
		t.Fatalf("default validity %s, want a year", d)
	}
	if _, err := ca.New(""); err == nil {
		t.Fatal("New accepted an empty name")
	}
}

func TestLoadRoundTrip(t *testing.T) {
	c := newCA(t)
	keyPEM, err := c.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("KeyPEM is not a PKCS#8 block: %q", keyPEM)
	}
	loaded, err := ca.Load(c.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(c.Certificate()) {
		t.Fatal("the loaded root differs")
	}
	// a certificate issued by the loaded CA verifies against the original pool
	leaf, err := loaded.Issue("svc-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: c.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}

	other := newCA(t)
	otherKey, _ := other.KeyPEM()
	leafKey, _ := pemKey(t, leaf)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	for name, tc := range map[string][2][]byte{
		"key of another CA": {c.CertPEM(), otherKey},
		"leaf certificate":  {leafPEM, leafKey},
		"no certificate":    {[]byte("junk"), keyPEM},
		"no key":            {c.CertPEM(), []byte("junk")},
		"key as cert":       {keyPEM, keyPEM},
	} {
		if _, err := ca.Load(tc[0], tc[1]); err == nil {
			t.Errorf("%s: Load accepted it", name)
		}
	}
}

func pemKey(t testing.TB, cert *tls.Certificate) ([]byte, error) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func TestIssue(t *testing.T) {
	c := newCA(t)
	before := time.Now()
	cert, err := c.Issue("go.micro.srv.Greeter", 2*time.Hour, ca.DNSNames("greeter.local"), ca.IPAddresses(net.IPv4(10, 0, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "micro://go.micro.srv.Greeter" || leaf.Subject.CommonName != "go.micro.srv.Greeter" {
		t.Fatalf("names: URIs %v, CN %q", leaf.URIs, leaf.Subject.CommonName)
	}
	if name, ok := ca.ServiceName(leaf); !ok || name != "go.micro.srv.Greeter" {
		t.Fatalf("ServiceName = %q, %v", name, ok)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "greeter.local" || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(10, 0, 0, 1)) {
		t.Fatalf("extra SANs: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if leaf.IsCA || leaf.PublicKeyAlgorithm != x509.ECDSA || len(leaf.ExtKeyUsage) != 2 ||
		leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("leaf: IsCA %v, %v key, EKU %v", leaf.IsCA, leaf.PublicKeyAlgorithm, leaf.ExtKeyUsage)
	}
	if nb := before.Sub(leaf.NotBefore); nb < 59*time.Second || nb > 61*time.Second {
		t.Fatalf("NotBefore %s before the issue, want a minute", nb)
	}
	if na := leaf.NotAfter.Sub(before); na < 2*time.Hour-time.Second || na > 2*time.Hour+5*time.Second {
		t.Fatalf("NotAfter %s after the issue, want 2 h", na)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("usage %v: %v", usage, err)
		}
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), mustPEM(pemKey(t, cert))); err != nil {
		t.Fatalf("key and certificate do not pair: %v", err)
	}

	def, err := c.Issue("svc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if na := time.Until(def.Leaf.NotAfter); na < ca.DefaultIssueTTL-time.Minute || na > ca.DefaultIssueTTL+time.Second {
		t.Fatalf("default ttl: valid for %s more, want 24 h", na)
	}
	if def.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("two certificates share a serial number")
	}
	// never beyond the root
	short := newCA(t, ca.Validity(time.Hour))
	long, err := short.Issue("svc", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if long.Leaf.NotAfter.After(short.Certificate().NotAfter) {
		t.Fatal("a certificate outlives its root")
	}
	if _, err := c.Issue("svc", -time.Second); err == nil {
		t.Fatal("Issue accepted a negative ttl")
	}
}

func mustPEM(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestServiceNames(t *testing.T) {
	c := newCA(t)
	for _, good := range []string{"a", "svc-a", "go.micro.srv.greeter", "Greeter", "x_y~z", strings.Repeat("a", 253)} {
		cert, err := c.Issue(good, time.Minute)
		if err != nil {
			t.Errorf("%q: %v", good, err)
			continue
		}
		if name, ok := ca.ServiceName(cert.Leaf); !ok || name != good {
			t.Errorf("%q: ServiceName = %q, %v", good, name, ok)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", "/", ".a", "a.", "a..b", "a:1", "a?b", "a#b", "a@b", "é", strings.Repeat("a", 254)} {
		if _, err := c.Issue(bad, time.Minute); err == nil {
			t.Errorf("%q: Issue accepted it", bad)
		}
	}
	if _, ok := ca.ServiceName(nil); ok {
		t.Error("ServiceName(nil) reported a name")
	}
	for _, uri := range []string{"spiffe://svc", "micro://svc/path", "micro://svc:80", "micro://u@svc", "micro://svc?q", "micro:svc", "micro://"} {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := ca.ServiceName(&x509.Certificate{URIs: []*url.URL{u}}); ok {
			t.Errorf("%s: ServiceName = %q", uri, name)
		}
	}
	second, _ := url.Parse("micro://second")
	first, _ := url.Parse("https://first")
	if name, ok := ca.ServiceName(&x509.Certificate{URIs: []*url.URL{first, second}}); !ok || name != "second" {
		t.Errorf("first micro:// SAN: %q, %v", name, ok)
	}
}

func TestPeerServiceNeedsAVerifiedChain(t *testing.T) {
	cert, err := newCA(t).Issue("svc-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ca.PeerService(nil); ok {
		t.Error("nil state")
	}
	if _, ok := ca.PeerService(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}); ok {
		t.Error("an unverified peer certificate named a service")
	}
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}, VerifiedChains: [][]*x509.Certificate{{cert.Leaf}}}
	if name, ok := ca.PeerService(state); !ok || name != "svc-a" {
		t.Errorf("verified: %q, %v", name, ok)
	}
}

func TestIdentityOptions(t *testing.T) {
	c := newCA(t)
	for name, opts := range map[string][]ca.IdentityOption{
		"RenewAt(0)":             {ca.RenewAt(0)},
		"RenewAt(1)":             {ca.RenewAt(1)},
		"RenewBefore(ttl)":       {ca.TTL(time.Minute), ca.RenewBefore(time.Minute)},
		"RenewBefore(negative)":  {ca.RenewBefore(-time.Second)},
		"bad service":            nil,
		"RenewAt(1.5) last wins": {ca.RenewBefore(time.Second), ca.RenewAt(1.5)},
	} {
		svc := "svc"
		if name == "bad service" {
			svc = "a b"
		}
		if _, err := c.NewIdentity(svc, opts...); err == nil {
			t.Errorf("%s: NewIdentity accepted it", name)
		}
	}
	id := newIdentity(t, c, "svc", ca.WithIssueOptions(ca.DNSNames("svc.local")))
	first := id.Current()
	if id.Service() != "svc" || id.CA() != c || first.Leaf.DNSNames[0] != "svc.local" {
		t.Fatalf("identity: %q, DNS %v", id.Service(), first.Leaf.DNSNames)
	}
	if d := time.Until(first.Leaf.NotAfter); d < ca.DefaultIdentityTTL-time.Minute || d > ca.DefaultIdentityTTL+time.Second {
		t.Fatalf("default identity ttl: %s left", d)
	}
	if err := id.Rotate(); err != nil {
		t.Fatal(err)
	}
	if id.Current().Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("Rotate kept the certificate")
	}
}

// The TLS configurations require what the package promises, whatever a handshake does.
func TestTLSConfigShape(t *testing.T) {
	id := newIdentity(t, newCA(t), "svc")
	s := id.ServerTLSConfig()
	if s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil || s.GetCertificate == nil || s.VerifyConnection == nil ||
		s.MinVersion != tls.VersionTLS12 || s.InsecureSkipVerify || strings.Join(s.NextProtos, ",") != "h2,http/1.1" {
		t.Fatalf("server config: %+v", s)
	}
	for name, c := range map[string]*tls.Config{"client": id.ClientTLSConfig(), "peer": id.PeerTLSConfig()} {
		// InsecureSkipVerify only ever comes with the callback that verifies the chain
		if !c.InsecureSkipVerify || c.VerifyConnection == nil || c.RootCAs == nil || c.GetClientCertificate == nil || c.MinVersion != tls.VersionTLS12 {
			t.Fatalf("%s config: %+v", name, c)
		}
	}
	peer, err := id.PeerTLSConfig().GetConfigForClient(nil)
	if err != nil || peer.ClientAuth != tls.RequireAndVerifyClientCert || peer.VerifyConnection == nil {
		t.Fatalf("peer config, serving: %+v, %v", peer, err)
	}
}
