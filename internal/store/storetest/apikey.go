package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/store"
)

// apiKeyCases are the conformance cases of API keys.
func (s suite) apiKeyCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"APIKeyCreateList", s.testAPIKeyCreateList},
		{"APIKeyCreateInvalid", s.testAPIKeyCreateInvalid},
		{"APIKeyAuthenticate", s.testAPIKeyAuthenticate},
		{"APIKeyExpiry", s.testAPIKeyExpiry},
		{"APIKeyLastUsedThrottled", s.testAPIKeyLastUsed},
		{"APIKeyRevoke", s.testAPIKeyRevoke},
		{"APIKeyConcurrentAuthenticate", s.testAPIKeyConcurrentAuthenticate},
	}
}

// newKey creates a key named name and returns it with its secret.
func newKey(t *testing.T, db *store.DB, name string, expires *time.Time, scopes ...apikey.Scope) (apikey.Key, string) {
	t.Helper()
	secret, hash, prefix := apikey.Generate()
	k, err := db.CreateAPIKey(t.Context(), name, scopes, hash, prefix, expires)
	if err != nil {
		t.Fatalf("CreateAPIKey(%q): %v", name, err)
	}
	return k, secret
}

// storedNow is the current time as the store keeps it.
func storedNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (s suite) testAPIKeyCreateList(t *testing.T) {
	db := s.fresh(t)
	before := storedNow()
	expires := time.Now().Add(30 * 24 * time.Hour)
	a, secretA := newKey(t, db, "alertmanager", &expires, apikey.ScopeWrite)
	b, _ := newKey(t, db, "Ops script ✓", nil, apikey.ScopeAdmin, apikey.ScopeRead, apikey.ScopeAdmin)
	after := storedNow()

	if a.ID <= 0 || b.ID <= a.ID {
		t.Errorf("IDs %d, %d; want positive and increasing", a.ID, b.ID)
	}
	for _, k := range []apikey.Key{a, b} {
		if k.CreatedAt.Before(before) || k.CreatedAt.After(after) || k.CreatedAt.Location() != time.UTC {
			t.Errorf("key %d created at %s, want a UTC time between %s and %s", k.ID, k.CreatedAt, before, after)
		}
	}
	wantExpires := expires.UTC().Truncate(time.Microsecond)
	want := []apikey.Key{
		{ID: a.ID, Name: "alertmanager", Prefix: secretA[:len(a.Prefix)], Scopes: []apikey.Scope{apikey.ScopeWrite},
			CreatedAt: a.CreatedAt, ExpiresAt: &wantExpires},
		// Scopes are stored deduplicated, weakest first.
		{ID: b.ID, Name: "Ops script ✓", Prefix: b.Prefix, Scopes: []apikey.Scope{apikey.ScopeRead, apikey.ScopeAdmin},
			CreatedAt: b.CreatedAt},
	}
	if diff := cmp.Diff(want, []apikey.Key{a, b}); diff != "" {
		t.Errorf("CreateAPIKey results (-want +got):\n%s", diff)
	}
	got, err := db.ListAPIKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListAPIKeys (-want +got):\n%s", diff)
	}

	empty := s.fresh(t)
	got, err = empty.ListAPIKeys(t.Context())
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListAPIKeys of an empty store = %#v, %v; want an empty, non-nil list", got, err)
	}
}

func (s suite) testAPIKeyCreateInvalid(t *testing.T) {
	db := s.fresh(t)
	_, taken, _ := apikey.Generate()
	if _, err := db.CreateAPIKey(t.Context(), "first", []apikey.Scope{apikey.ScopeRead}, taken, "ferry_taken", nil); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	tests := []struct {
		name    string
		keyName string
		scopes  []apikey.Scope
		hash    func() []byte
		prefix  string
		expires *time.Time
	}{
		{name: "no name", scopes: []apikey.Scope{apikey.ScopeRead}},
		{name: "no scopes", keyName: "k"},
		{name: "unknown scope", keyName: "k", scopes: []apikey.Scope{"root"}},
		{name: "short hash", keyName: "k", scopes: []apikey.Scope{apikey.ScopeRead}, hash: func() []byte { return make([]byte, 16) }},
		{name: "no prefix", keyName: "k", scopes: []apikey.Scope{apikey.ScopeRead}, prefix: "-"},
		{name: "expired already", keyName: "k", scopes: []apikey.Scope{apikey.ScopeRead}, expires: &past},
		{name: "hash taken", keyName: "k", scopes: []apikey.Scope{apikey.ScopeRead}, hash: func() []byte { return taken }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, hash, prefix := apikey.Generate()
			if tt.hash != nil {
				hash = tt.hash()
			}
			if tt.prefix == "-" {
				prefix = ""
			}
			_, err := db.CreateAPIKey(t.Context(), tt.keyName, tt.scopes, hash, prefix, tt.expires)
			wantErr(t, "CreateAPIKey", err, apikey.ErrInvalid)
		})
	}
	keys, err := db.ListAPIKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Errorf("ListAPIKeys after invalid creates = %d keys, %v; want only the first", len(keys), err)
	}
}

func (s suite) testAPIKeyAuthenticate(t *testing.T) {
	db := s.fresh(t)
	k, secret := newKey(t, db, "sender", nil, apikey.ScopeWrite)
	other, _ := newKey(t, db, "other", nil, apikey.ScopeRead)
	now := storedNow()
	got, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(secret), now)
	if err != nil {
		t.Fatalf("AuthenticateAPIKey: %v", err)
	}
	k.LastUsedAt = &now
	if diff := cmp.Diff(k, got); diff != "" {
		t.Errorf("AuthenticateAPIKey (-want +got):\n%s", diff)
	}
	if got.ID == other.ID {
		t.Errorf("authenticated as the other key")
	}
	unknown, _, _ := apikey.Generate()
	for name, hash := range map[string][]byte{
		"unknown":           apikey.Hash(unknown),
		"secret, not hash":  []byte(secret),
		"truncated hash":    apikey.Hash(secret)[:31],
		"no hash":           nil,
		"hash of the start": apikey.Hash(secret[:len(secret)-1]),
	} {
		_, err := db.AuthenticateAPIKey(t.Context(), hash, now)
		wantErr(t, "AuthenticateAPIKey("+name+")", err, apikey.ErrUnauthorized)
	}
}

func (s suite) testAPIKeyExpiry(t *testing.T) {
	db := s.fresh(t)
	expires := storedNow().Add(time.Hour)
	_, secret := newKey(t, db, "temporary", &expires, apikey.ScopeRead)
	hash := apikey.Hash(secret)
	if _, err := db.AuthenticateAPIKey(t.Context(), hash, expires.Add(-time.Microsecond)); err != nil {
		t.Errorf("AuthenticateAPIKey just before expiry: %v", err)
	}
	for _, at := range []time.Time{expires, expires.Add(time.Hour)} {
		_, err := db.AuthenticateAPIKey(t.Context(), hash, at)
		wantErr(t, fmt.Sprintf("AuthenticateAPIKey at %s, expiry %s", at, expires), err, apikey.ErrUnauthorized)
	}
}

// testAPIKeyLastUsed checks that a key's last use is recorded at most once a minute, and never
// moves back.
func (s suite) testAPIKeyLastUsed(t *testing.T) {
	db := s.fresh(t)
	k, secret := newKey(t, db, "busy", nil, apikey.ScopeRead)
	hash := apikey.Hash(secret)
	start := storedNow()
	steps := []struct {
		at, want time.Time
	}{
		{start, start},
		{start.Add(30 * time.Second), start},
		{start.Add(59 * time.Second), start},
		{start.Add(time.Minute), start.Add(time.Minute)},
		{start.Add(90 * time.Second), start.Add(time.Minute)},
		{start.Add(10 * time.Minute), start.Add(10 * time.Minute)},
		{start, start.Add(10 * time.Minute)}, // a replica whose clock is behind
	}
	for i, st := range steps {
		got, err := db.AuthenticateAPIKey(t.Context(), hash, st.at)
		if err != nil {
			t.Fatalf("step %d: AuthenticateAPIKey: %v", i, err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(st.want) {
			t.Errorf("step %d: AuthenticateAPIKey at +%s: LastUsedAt = %v, want +%s", i, st.at.Sub(start), got.LastUsedAt, st.want.Sub(start))
		}
		keys, err := db.ListAPIKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if stored := keys[0].LastUsedAt; keys[0].ID != k.ID || stored == nil || !stored.Equal(st.want) {
			t.Errorf("step %d: stored LastUsedAt = %v, want +%s", i, stored, st.want.Sub(start))
		}
	}
}

func (s suite) testAPIKeyRevoke(t *testing.T) {
	db := s.fresh(t)
	byID, secretID := newKey(t, db, "by id", nil, apikey.ScopeRead)
	byPrefix, secretPrefix := newKey(t, db, "by prefix", nil, apikey.ScopeRead)
	kept, secretKept := newKey(t, db, "kept", nil, apikey.ScopeRead)

	before := storedNow()
	revoked, err := db.RevokeAPIKey(t.Context(), fmt.Sprint(byID.ID))
	if err != nil {
		t.Fatalf("RevokeAPIKey by ID: %v", err)
	}
	if revoked.ID != byID.ID || revoked.RevokedAt == nil || revoked.RevokedAt.Before(before) {
		t.Errorf("RevokeAPIKey by ID = %+v, want key %d revoked now", revoked, byID.ID)
	}
	if _, err := db.RevokeAPIKey(t.Context(), byPrefix.Prefix); err != nil {
		t.Fatalf("RevokeAPIKey by prefix: %v", err)
	}
	// Revoking again is no error and keeps the first time.
	again, err := db.RevokeAPIKey(t.Context(), fmt.Sprint(byID.ID))
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("RevokeAPIKey again = %v, %v; want revoked at %s still", again.RevokedAt, err, revoked.RevokedAt)
	}

	now := storedNow()
	for _, secret := range []string{secretID, secretPrefix} {
		_, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(secret), now)
		wantErr(t, "AuthenticateAPIKey of a revoked key", err, apikey.ErrUnauthorized)
	}
	if _, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(secretKept), now); err != nil {
		t.Errorf("AuthenticateAPIKey of the key not revoked: %v", err)
	}
	keys, err := db.ListAPIKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var revokedIDs []int64
	for _, k := range keys {
		if k.RevokedAt != nil {
			revokedIDs = append(revokedIDs, k.ID)
		}
	}
	if diff := cmp.Diff([]int64{byID.ID, byPrefix.ID}, revokedIDs); diff != "" {
		t.Errorf("revoked keys in ListAPIKeys (-want +got):\n%s", diff)
	}

	for _, ref := range []string{fmt.Sprint(kept.ID + 100), "0", "-1", "ferry_nosuchkey", kept.Prefix + "x"} {
		_, err := db.RevokeAPIKey(t.Context(), ref)
		wantErr(t, "RevokeAPIKey("+ref+")", err, apikey.ErrNotFound)
	}
	_, err = db.RevokeAPIKey(t.Context(), "")
	wantErr(t, "RevokeAPIKey(\"\")", err, apikey.ErrInvalid)

	// A prefix two keys share is ambiguous: neither is revoked.
	for range 2 {
		_, hash, _ := apikey.Generate()
		if _, err := db.CreateAPIKey(t.Context(), "twin", []apikey.Scope{apikey.ScopeRead}, hash, "ferry_twin", nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.RevokeAPIKey(t.Context(), "ferry_twin")
	wantErr(t, "RevokeAPIKey of a shared prefix", err, apikey.ErrInvalid)
	keys, err = db.ListAPIKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Prefix == "ferry_twin" && k.RevokedAt != nil {
			t.Errorf("key %d revoked by an ambiguous prefix", k.ID)
		}
	}
}

// testAPIKeyConcurrentAuthenticate authenticates one key from many requests on two
// connections at once, as a busy sender does against two replicas: all succeed, and the last
// use is recorded.
func (s suite) testAPIKeyConcurrentAuthenticate(t *testing.T) {
	url := s.newURL(t)
	dbs := []*store.DB{open(t, url), open(t, url)}
	k, secret := newKey(t, dbs[0], "busy", nil, apikey.ScopeWrite)
	hash := apikey.Hash(secret)
	now := storedNow()
	var wg sync.WaitGroup
	for i := range 40 {
		db := dbs[i%len(dbs)]
		wg.Go(func() {
			got, err := db.AuthenticateAPIKey(t.Context(), hash, now)
			if err != nil {
				t.Errorf("AuthenticateAPIKey: %v", err)
				return
			}
			if got.ID != k.ID || got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
				t.Errorf("AuthenticateAPIKey = key %d last used %v, want key %d last used %s", got.ID, got.LastUsedAt, k.ID, now)
			}
		})
	}
	wg.Wait()
}
