package jwt

import "github.com/seed-b3892490/micro/auth"

// InspectUncached checks a token as Inspect does, without the cache of verified tokens.
func InspectUncached(a auth.Auth, token string) error {
	_, err := a.(*jwtAuth).state.Load().parse(token, useAccess)
	return err
}
