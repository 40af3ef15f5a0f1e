package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
)

const apiKeyColumns = `id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at`

// lastUsedResolution is how stale a key's LastUsedAt may get: AuthenticateAPIKey writes it at
// most this often per key, so that a busy sender costs one write a minute, not one a request.
const lastUsedResolution = time.Minute

// CreateAPIKey stores a new key that the holder of the secret hashing to hash will present.
// It never sees the secret. Scopes are stored deduplicated, weakest first; expires, when set,
// must lie in the future. Bad input is an error wrapping apikey.ErrInvalid, as is a hash that
// another key already has.
func (db *DB) CreateAPIKey(ctx context.Context, name string, scopes []apikey.Scope, hash []byte, prefix string, expires *time.Time) (apikey.Key, error) {
	k := apikey.Key{Name: name, Prefix: prefix, Scopes: scopes, CreatedAt: storedTime(time.Now())}
	if expires != nil {
		t := storedTime(*expires)
		k.ExpiresAt = &t
	}
	if err := k.Validate(); err != nil {
		return apikey.Key{}, fmt.Errorf("create API key: %w", err)
	}
	if len(hash) != sha256.Size {
		return apikey.Key{}, fmt.Errorf("create API key: %w: hash has %d bytes, want a SHA-256", apikey.ErrInvalid, len(hash))
	}
	k.Scopes = canonicalScopes(k.Scopes)
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO api_keys
			(name, prefix, key_hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (key_hash) DO NOTHING RETURNING id`),
			k.Name, k.Prefix, hash, formatScopes(k.Scopes), db.dialect.time(k.CreatedAt), db.dialect.nullTime(k.ExpiresAt),
		).Scan(&k.ID)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return apikey.Key{}, fmt.Errorf("create API key: %w: another key has this hash", apikey.ErrInvalid)
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("create API key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, revoked and expired ones included, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]apikey.Key, error) {
	var keys []apikey.Key
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		keys, err = queryAll(ctx, tx, func(r rowScanner) (apikey.Key, error) { return scanAPIKey(r) }, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes the key that ref names, by ID or by prefix, and returns it. Revoking a
// revoked key changes nothing and is no error. A ref that names no key is an error wrapping
// apikey.ErrNotFound; a prefix that several keys share, apikey.ErrInvalid.
func (db *DB) RevokeAPIKey(ctx context.Context, ref string) (apikey.Key, error) {
	if ref == "" {
		return apikey.Key{}, fmt.Errorf("revoke API key: %w: give an ID or a prefix", apikey.ErrInvalid)
	}
	column, arg := "prefix", any(ref)
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		column, arg = "id", id
	}
	now := storedTime(time.Now())
	var k apikey.Key
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT `+apiKeyColumns+` FROM api_keys WHERE `+column+` = ? ORDER BY id`), arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		var found []apikey.Key
		for rows.Next() {
			k, err := scanAPIKey(rows)
			if err != nil {
				return err
			}
			found = append(found, k)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		switch len(found) {
		case 0:
			return apikey.ErrNotFound
		case 1:
		default:
			return fmt.Errorf("%w: %d keys have prefix %s; revoke by ID", apikey.ErrInvalid, len(found), ref)
		}
		k = found[0]
		if k.RevokedAt != nil {
			return nil
		}
		// On PostgreSQL a concurrent revoker may have come first; its time stands.
		if _, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`),
			db.dialect.time(now), k.ID); err != nil {
			return err
		}
		k.RevokedAt = &now
		return nil
	})
	if err != nil {
		return apikey.Key{}, fmt.Errorf("revoke API key %s: %w", ref, err)
	}
	return k, nil
}

// AuthenticateAPIKey returns the live key whose secret hashes to hash: one that exists, is not
// revoked and has not expired at now. Any other hash is an error wrapping
// apikey.ErrUnauthorized that says which.
//
// It records now as the key's last use when the recorded one is a minute old or more. That is
// a second transaction, taken only then: the lookup runs read-only, which on SQLite keeps the
// requests of every sender off the single writer connection.
func (db *DB) AuthenticateAPIKey(ctx context.Context, hash []byte, now time.Time) (apikey.Key, error) {
	now = storedTime(now)
	var (
		k      apikey.Key
		stored []byte
	)
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		k, err = scanAPIKey(tx.QueryRowContext(ctx, db.dialect.q(
			`SELECT `+apiKeyColumns+`, key_hash FROM api_keys WHERE key_hash = ?`), hash), &stored)
		return err
	})
	// The index lookup compares hashes in variable time, which is harmless: what it could
	// reveal is how much of a stored hash matches the caller's guess, and a hash is no use
	// without the 256-bit secret behind it. The constant-time check below guards against
	// anything the database might match loosely.
	if errors.Is(err, sql.ErrNoRows) || err == nil && subtle.ConstantTimeCompare(stored, hash) != 1 {
		return apikey.Key{}, fmt.Errorf("authenticate API key: %w: unknown API key", apikey.ErrUnauthorized)
	}
	if err != nil {
		return apikey.Key{}, fmt.Errorf("authenticate API key: %w", err)
	}
	if err := k.Live(now); err != nil {
		return apikey.Key{}, fmt.Errorf("authenticate API key: %w", err)
	}
	stale := now.Add(-lastUsedResolution)
	if k.LastUsedAt != nil && k.LastUsedAt.After(stale) {
		return k, nil
	}
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		// The condition stops concurrent requests from all writing, and a replica with a
		// clock behind from moving the time back.
		res, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE api_keys SET last_used_at = ?
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`),
			db.dialect.time(now), k.ID, db.dialect.time(stale))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// Another request recorded a use since the lookup: report that one.
			return tx.QueryRowContext(ctx, db.dialect.q(`SELECT last_used_at FROM api_keys WHERE id = ?`), k.ID).
				Scan(nullInstant{&k.LastUsedAt})
		}
		k.LastUsedAt = &now
		return nil
	})
	if err != nil {
		return apikey.Key{}, fmt.Errorf("authenticate API key: record use: %w", err)
	}
	return k, nil
}

// canonicalScopes returns valid scopes deduplicated, weakest first.
func canonicalScopes(scopes []apikey.Scope) []apikey.Scope {
	var out []apikey.Scope
	for _, s := range []apikey.Scope{apikey.ScopeRead, apikey.ScopeWrite, apikey.ScopeAdmin} {
		if slices.Contains(scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

func formatScopes(scopes []apikey.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

// scanAPIKey scans apiKeyColumns, then any extra columns into extra.
func scanAPIKey(row rowScanner, extra ...any) (apikey.Key, error) {
	var (
		k      apikey.Key
		scopes string
	)
	dest := append([]any{&k.ID, &k.Name, &k.Prefix, &scopes, instant{&k.CreatedAt},
		nullInstant{&k.LastUsedAt}, nullInstant{&k.ExpiresAt}, nullInstant{&k.RevokedAt}}, extra...)
	if err := row.Scan(dest...); err != nil {
		return apikey.Key{}, err
	}
	for s := range strings.SplitSeq(scopes, ",") {
		k.Scopes = append(k.Scopes, apikey.Scope(s))
	}
	return k, nil
}
