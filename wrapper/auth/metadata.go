package auth

import (
	"errors"
	"strings"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/metadata"
)

const (
	// MetadataKeyAuthorization is the metadata key (the HTTP header) that carries the
	// token.
	MetadataKeyAuthorization = "Authorization"
	// BearerPrefix comes before the token in the Authorization header.
	BearerPrefix = auth.BearerScheme
)

var (
	// ErrMissingToken is returned when a request carries no Authorization header.
	ErrMissingToken = errors.New("missing authorization token in metadata")
	// ErrInvalidToken is returned when the Authorization header is not "Bearer <token>".
	ErrInvalidToken = errors.New("invalid token format, expected 'Bearer <token>'")
)

// TokenFromMetadata returns the token of md's "Authorization: Bearer <token>" header.
// The scheme is matched without regard to case, as HTTP specifies.
func TokenFromMetadata(md metadata.Metadata) (string, error) {
	h, ok := md.Get(MetadataKeyAuthorization)
	if !ok {
		return "", ErrMissingToken
	}
	if len(h) < len(BearerPrefix) || !strings.EqualFold(h[:len(BearerPrefix)], BearerPrefix) {
		return "", ErrInvalidToken
	}
	token := strings.TrimSpace(h[len(BearerPrefix):])
	if token == "" {
		return "", ErrInvalidToken
	}
	return token, nil
}

// TokenToMetadata sets md's Authorization header to token (without "Bearer "), making md
// when it is nil, and returns it.
func TokenToMetadata(md metadata.Metadata, token string) metadata.Metadata {
	if md == nil {
		md = metadata.Metadata{}
	}
	md.Set(MetadataKeyAuthorization, BearerPrefix+token)
	return md
}

// AccountFromMetadata inspects md's token with a and returns its account.
func AccountFromMetadata(md metadata.Metadata, a auth.Auth) (*auth.Account, error) {
	token, err := TokenFromMetadata(md)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, auth.ErrInvalidToken
	}
	return a.Inspect(token)
}
