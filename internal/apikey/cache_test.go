package apikey_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/store"
)

// TestCacheRevocation proves the cache's policy against the real store: an accepted key is
// trusted for TTL, so a revocation made by another process reaches a server within TTL, and
// no sooner; expiry applies at once; unknown keys are never cached.
func TestCacheRevocation(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "keys.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	secret, hash, prefix := apikey.Generate()
	expires := time.Now().Add(time.Hour)
	if _, err := db.CreateAPIKey(ctx, "alertmanager", []apikey.Scope{apikey.ScopeWrite}, hash, prefix, &expires); err != nil {
		t.Fatal(err)
	}
	c := &apikey.Cache{Auth: db, TTL: 5 * time.Second}
	now := time.Now()
	k, err := c.AuthenticateAPIKey(ctx, apikey.Hash(secret), now)
	if err != nil || k.Prefix != prefix {
		t.Fatalf("AuthenticateAPIKey = %+v, %v", k, err)
	}
	if _, err := db.RevokeAPIKey(ctx, prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthenticateAPIKey(ctx, hash, now.Add(4*time.Second)); err != nil {
		t.Errorf("within TTL of the lookup, the cached key was refused: %v", err)
	}
	if _, err := c.AuthenticateAPIKey(ctx, hash, now.Add(5*time.Second)); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("TTL after the lookup, a revoked key = %v, want ErrUnauthorized", err)
	}
	// Expiry is checked at every use, cached or not.
	secret2, hash2, prefix2 := apikey.Generate()
	soon := now.Add(2 * time.Second)
	if _, err := db.CreateAPIKey(ctx, "short", []apikey.Scope{apikey.ScopeRead}, hash2, prefix2, &soon); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthenticateAPIKey(ctx, apikey.Hash(secret2), now); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthenticateAPIKey(ctx, hash2, now.Add(3*time.Second)); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("an expired cached key = %v, want ErrUnauthorized", err)
	}
	// A key created after an unknown one was tried works at once.
	_, hash3, prefix3 := apikey.Generate()
	if _, err := c.AuthenticateAPIKey(ctx, hash3, now); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Fatalf("unknown key = %v, want ErrUnauthorized", err)
	}
	if _, err := db.CreateAPIKey(ctx, "new", []apikey.Scope{apikey.ScopeRead}, hash3, prefix3, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthenticateAPIKey(ctx, hash3, now); err != nil {
		t.Errorf("a key created after a refused lookup of it: %v", err)
	}
}
