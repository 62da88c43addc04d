package jwt_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/jwt"
)

func Example() {
	// A key pair, base64-encoded PEM as auth.PrivateKey and auth.PublicKey take it.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	privKey := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	pubKey := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))

	// The issuing service holds the private key.
	issuer, err := jwt.NewAuth(auth.Issuer("example"), auth.PrivateKey(privKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	acc, _ := issuer.Generate("greeter", auth.WithType("service"), auth.WithScopes("greet"))
	tok, err := issuer.Token(auth.WithCredentials(acc.ID, acc.Secret), auth.WithExpiry(5*time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Any other service needs only the public key to inspect the token.
	checker, _ := jwt.NewAuth(auth.Issuer("example"), auth.PublicKey(pubKey))
	who, err := checker.Inspect(tok.AccessToken)
	fmt.Println(who.ID, who.Type, who.Scopes, err)

	_, err = checker.Inspect(tok.RefreshToken)
	fmt.Println(errors.Is(err, auth.ErrInvalidToken), err)
	// Output:
	// greeter service [greet] <nil>
	// true auth/jwt: invalid token provided: not an access token
}
