package apikey

import (
	"context"
	"sync"
	"time"
)

// CacheTTL is how long a Cache trusts a key it looked up: a key revoked in the store keeps
// working on a server for at most this long.
const CacheTTL = 5 * time.Second

// Authenticator finds the live key whose secret hashes to hash, or returns an error wrapping
// ErrUnauthorized. The store is one.
type Authenticator interface {
	AuthenticateAPIKey(ctx context.Context, hash []byte, now time.Time) (Key, error)
}

// Cache remembers the keys its Authenticator accepted for TTL, so that a sender posting
// thousands of alerts a second costs one lookup per key every TTL instead of one per
// request. Only accepted keys are cached: a new key works at once, and unknown keys are
// always looked up. A cached key is still checked against its expiry at every use; a
// revocation reaches a server within TTL, since revoking is a store change that other
// processes (the CLI, other replicas) make.
type Cache struct {
	Auth Authenticator
	// TTL is how long an accepted key is trusted; zero means CacheTTL.
	TTL time.Duration

	mu      sync.Mutex
	entries map[[32]byte]cached
	swept   time.Time
}

type cached struct {
	key     Key
	fetched time.Time
}

// AuthenticateAPIKey returns the cached key for hash if it was accepted within TTL and is
// still live at now, and asks the Authenticator otherwise.
func (c *Cache) AuthenticateAPIKey(ctx context.Context, hash []byte, now time.Time) (Key, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = CacheTTL
	}
	var h [32]byte
	cacheable := len(hash) == len(h)
	if cacheable {
		copy(h[:], hash)
		c.mu.Lock()
		e, ok := c.entries[h]
		c.mu.Unlock()
		if ok && now.Sub(e.fetched) < ttl && now.Sub(e.fetched) >= 0 {
			if err := e.key.Live(now); err != nil {
				return Key{}, err
			}
			return e.key, nil
		}
	}
	k, err := c.Auth.AuthenticateAPIKey(ctx, hash, now)
	if err != nil || !cacheable {
		return k, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[32]byte]cached{}
	}
	if now.Sub(c.swept) >= ttl { // drop what has gone stale, so keys no longer used go
		for h, e := range c.entries {
			if now.Sub(e.fetched) >= ttl {
				delete(c.entries, h)
			}
		}
		c.swept = now
	}
	c.entries[h] = cached{key: k, fetched: now}
	return k, nil
}
