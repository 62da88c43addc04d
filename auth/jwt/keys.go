package jwt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/seed-b3892490/micro/store"
)

// ErrInvalidKey is wrapped by the errors of keys that cannot be used: not base64, not
// PEM, of an unsupported type or size, or a public key that is not the private key's.
// The errors name the problem and never include key material.
var ErrInvalidKey = errors.New("auth/jwt: invalid key")

// MinRSABits is the size of the smallest RSA key accepted.
const MinRSABits = 2048

// StoreKey is the key of the record in which NewAuth keeps the generated key pair when
// it is given a store and no key.
const StoreKey = "auth/jwt/keys"

// signingKey is the key tokens are signed with.
type signingKey struct {
	method gojwt.SigningMethod
	key    crypto.Signer
	kid    string
}

// verifyingKey is a public key tokens may be signed with, and the parser that accepts
// only its algorithm.
type verifyingKey struct {
	alg    string
	key    crypto.PublicKey
	parser *gojwt.Parser
}

func keyError(which, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidKey, which, fmt.Sprintf(format, args...))
}

// decodePEM decodes a base64-encoded PEM key and returns its first block, skipping EC
// PARAMETERS blocks (which openssl writes before an EC private key).
func decodePEM(which, b64 string) (*pem.Block, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, keyError(which, "not valid base64 (the key must be base64-encoded PEM)")
	}
	rest := raw
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, keyError(which, "no PEM block found after base64 decoding")
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, keyError(which, "encrypted PEM keys are not supported")
		}
		return block, nil
	}
}

// pemType quotes a PEM block type for an error, shortened: it is not key material, but
// it need not be long either.
func pemType(t string) string {
	if len(t) > 32 {
		t = t[:32] + "…"
	}
	return fmt.Sprintf("%q", t)
}

// parsePrivateKey parses a base64-encoded PEM private key: Ed25519 (PKCS#8), ECDSA P-256
// (PKCS#8 or SEC 1) or RSA of at least MinRSABits (PKCS#1 or PKCS#8).
func parsePrivateKey(b64 string) (*signingKey, error) {
	const which = "private key"
	block, err := decodePEM(which, b64)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return nil, keyError(which, "PKCS#8 PEM block does not parse")
		}
	case "EC PRIVATE KEY":
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, keyError(which, "EC PRIVATE KEY PEM block does not parse")
		}
	case "RSA PRIVATE KEY":
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, keyError(which, "RSA PRIVATE KEY PEM block does not parse")
		}
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, keyError(which, "PEM block %s is a public key", pemType(block.Type))
	default:
		return nil, keyError(which, "unsupported PEM block type %s (want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", pemType(block.Type))
	}
	return newSigningKey(which, key)
}

func newSigningKey(which string, key any) (*signingKey, error) {
	var s signingKey
	switch k := key.(type) {
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, keyError(which, "Ed25519 key has the wrong length")
		}
		s.method, s.key = gojwt.SigningMethodEdDSA, k
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, keyError(which, "ECDSA key on curve %s, only P-256 is supported", k.Curve.Params().Name)
		}
		s.method, s.key = gojwt.SigningMethodES256, k
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, keyError(which, "RSA key of %d bits, at least %d are required", bits, MinRSABits)
		}
		s.method, s.key = gojwt.SigningMethodRS256, k
	default:
		return nil, keyError(which, "unsupported key type %T (want Ed25519, ECDSA P-256 or RSA)", key)
	}
	kid, err := keyID(s.key.Public())
	if err != nil {
		return nil, keyError(which, "public key cannot be encoded")
	}
	s.kid = kid
	return &s, nil
}

// parsePublicKey parses a base64-encoded PEM public key: PKIX (PUBLIC KEY) holding an
// Ed25519, ECDSA P-256 or RSA key, or PKCS#1 (RSA PUBLIC KEY).
func parsePublicKey(which, b64 string) (crypto.PublicKey, error) {
	block, err := decodePEM(which, b64)
	if err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, keyError(which, "PUBLIC KEY PEM block does not parse")
		}
	case "RSA PUBLIC KEY":
		if key, err = x509.ParsePKCS1PublicKey(block.Bytes); err != nil {
			return nil, keyError(which, "RSA PUBLIC KEY PEM block does not parse")
		}
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, keyError(which, "PEM block %s is a private key; give the public key", pemType(block.Type))
	default:
		return nil, keyError(which, "unsupported PEM block type %s (want PUBLIC KEY or RSA PUBLIC KEY)", pemType(block.Type))
	}
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, keyError(which, "Ed25519 key has the wrong length")
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, keyError(which, "ECDSA key on curve %s, only P-256 is supported", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, keyError(which, "RSA key of %d bits, at least %d are required", bits, MinRSABits)
		}
	default:
		return nil, keyError(which, "unsupported key type %T (want Ed25519, ECDSA P-256 or RSA)", key)
	}
	return key, nil
}

// algOf returns the JWS algorithm of a public key.
func algOf(pub crypto.PublicKey) string {
	switch pub.(type) {
	case ed25519.PublicKey:
		return gojwt.SigningMethodEdDSA.Alg()
	case *ecdsa.PublicKey:
		return gojwt.SigningMethodES256.Alg()
	case *rsa.PublicKey:
		return gojwt.SigningMethodRS256.Alg()
	}
	return ""
}

// keyID is the kid of a public key: the first 16 characters of the unpadded base64url
// SHA-256 of its PKIX DER encoding.
func keyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:16], nil
}

// samePublicKey reports whether two public keys are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	da, err1 := x509.MarshalPKIXPublicKey(a)
	db, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(da, db)
}

// encodePrivateKey returns a private key as base64-encoded PKCS#8 PEM.
func encodePrivateKey(key crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// encodePublicKey returns a public key as base64-encoded PKIX PEM.
func encodePublicKey(key crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// storedKeys is the value of the StoreKey record.
type storedKeys struct {
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
}

func newEd25519Key() *signingKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("auth/jwt: generate an Ed25519 key: " + err.Error()) // crypto/rand does not fail
	}
	s, err := newSigningKey("generated key", priv)
	if err != nil {
		panic(err) // an Ed25519 key always encodes
	}
	return s
}

// loadOrCreateKey reads the key pair kept in s, or generates an Ed25519 pair and keeps
// it there. Processes sharing a store share the pair: with a store.Creator (every store
// of micro) the pair is created only where none is, so of processes starting at the same
// instant one pair wins and all of them use it. With another store, which can only
// overwrite, each process reads the record back after writing and uses what it finds,
// which narrows (without closing) the window in which two of them end up with different
// keys.
func loadOrCreateKey(s store.Store) (*signingKey, error) {
	key, err := loadKey(s)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return key, err
	}
	gen := newEd25519Key()
	priv, err := encodePrivateKey(gen.key)
	if err != nil {
		return nil, fmt.Errorf("auth/jwt: encode the generated key: %w", err)
	}
	pub, err := encodePublicKey(gen.key.Public())
	if err != nil {
		return nil, fmt.Errorf("auth/jwt: encode the generated key: %w", err)
	}
	rec := store.NewRecord(StoreKey, storedKeys{PrivateKey: priv, PublicKey: pub})
	err = errors.ErrUnsupported
	if c, ok := s.(store.Creator); ok {
		err = c.Create(rec) // store.ErrExists: another process kept its pair first
	}
	if errors.Is(err, errors.ErrUnsupported) {
		err = s.Write(rec)
	}
	if err != nil && err != store.ErrExists {
		return nil, fmt.Errorf("auth/jwt: keep the generated key in the store: %w", err)
	}
	key, err = loadKey(s)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth/jwt: the key written to the store at %q does not read back", StoreKey)
	}
	return key, err
}

// loadKey reads the key pair kept in s; the error is store.ErrNotFound if there is none.
func loadKey(s store.Store) (*signingKey, error) {
	recs, err := s.Read(StoreKey)
	if err == store.ErrNotFound || err == nil && len(recs) == 0 {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth/jwt: read the key from the store: %w", err)
	}
	var sk storedKeys
	if err := recs[0].Decode(&sk); err != nil || sk.PrivateKey == "" {
		return nil, fmt.Errorf("%w: the record %q in the store does not hold a key pair", ErrInvalidKey, StoreKey)
	}
	key, err := parsePrivateKey(sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("the record %q in the store: %w", StoreKey, err)
	}
	return key, nil
}
