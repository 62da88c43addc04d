package jwt

import (
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/seed-b3892490/micro/auth"
)

// maxCached bounds the verified tokens Inspect remembers.
const maxCached = 4096

// inspectCache remembers the accounts of access tokens whose signature and claims were
// checked, until each token's expiry, so that a caller sending the same token on every
// call pays for one signature check, not one per call. Tokens are immutable and their
// validity is a matter of time only (there is no revocation list), so a cached answer
// is the answer a new check would give while now is between nbf and exp. The cache
// belongs to one set of keys: a new Init starts an empty one.
type inspectCache struct {
	mu      sync.RWMutex
	entries map[string]cached
}

type cached struct {
	acc       *auth.Account
	notBefore time.Time
	expiry    time.Time
}

func (c *inspectCache) get(token string, now time.Time) (*auth.Account, bool) {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || now.Before(e.notBefore) || !now.Before(e.expiry) {
		return nil, false
	}
	return copyAccount(e.acc), true
}

func (c *inspectCache) put(token string, acc *auth.Account, nbf *gojwt.NumericDate, exp time.Time) {
	e := cached{acc: copyAccount(acc), expiry: exp}
	if nbf != nil {
		e.notBefore = nbf.Time
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCached {
		// drop the expired ones; when none are, drop half at random (map order)
		for k, v := range c.entries {
			if !now.Before(v.expiry) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < maxCached/2 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[token] = e
}

// copyAccount copies an account so that callers cannot change a cached one.
func copyAccount(a *auth.Account) *auth.Account {
	c := *a
	c.Scopes = append([]string(nil), a.Scopes...)
	if a.Metadata != nil {
		c.Metadata = make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}
