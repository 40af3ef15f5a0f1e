// Package apikey defines Ferry's API keys: random secrets that senders of alerts and scripts
// present to the API, each with scopes that say what it may do. It generates keys, hashes them
// for storage, reads them from requests and holds the rules of a live key; the store keeps
// them and never sees a secret, only its hash.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrNotFound reports a key that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid reports input that breaks a rule; the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrUnauthorized reports a request without a key, or with one that is unknown, revoked or
// expired.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden reports a live key whose scopes do not allow the request.
var ErrForbidden = errors.New("forbidden")

// Scope is what a key may do. Scopes nest: admin includes write, which includes read.
type Scope string

// The scopes, weakest first.
const (
	// ScopeRead reads alerts, releases and the rest of the API.
	ScopeRead Scope = "read"
	// ScopeWrite also sends and changes alerts, heartbeats and blackouts.
	ScopeWrite Scope = "write"
	// ScopeAdmin also administers Ferry, such as managing API keys.
	ScopeAdmin Scope = "admin"
)

// rank orders the scopes; zero means not a scope.
func (s Scope) rank() int {
	switch s {
	case ScopeRead:
		return 1
	case ScopeWrite:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the defined scopes.
func (s Scope) Valid() bool { return s.rank() > 0 }

// Includes reports whether a key with scope s may do what scope want allows.
func (s Scope) Includes(want Scope) bool {
	return s.Valid() && want.Valid() && s.rank() >= want.rank()
}

// ParseScope returns the scope named s, or an error wrapping ErrInvalid.
func ParseScope(s string) (Scope, error) {
	if sc := Scope(s); sc.Valid() {
		return sc, nil
	}
	return "", fmt.Errorf("%w: unknown scope %q; want %s, %s or %s", ErrInvalid, s, ScopeRead, ScopeWrite, ScopeAdmin)
}

// Key is a stored API key: everything about it but the secret, which only its holder has.
type Key struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Prefix is the start of the secret, which tells keys apart in listings and logs
	// without revealing enough to use them.
	Prefix     string     `json:"prefix"`
	Scopes     []Scope    `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	// ExpiresAt, when set, is the first instant the key no longer works.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Allows reports whether one of k's scopes includes want.
func (k Key) Allows(want Scope) bool {
	for _, s := range k.Scopes {
		if s.Includes(want) {
			return true
		}
	}
	return false
}

// Live reports, wrapped in ErrUnauthorized, why k does not work at now: it is revoked or
// expired. A live key returns nil.
func (k Key) Live(now time.Time) error {
	if k.RevokedAt != nil {
		return fmt.Errorf("%w: API key %s is revoked", ErrUnauthorized, k.Prefix)
	}
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return fmt.Errorf("%w: API key %s expired at %s", ErrUnauthorized, k.Prefix, k.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// Field limits, in bytes.
const (
	maxName   = 100
	maxPrefix = 32
)

// Validate reports, wrapped in ErrInvalid, the first rule k breaks. The ID is not checked:
// the store assigns it.
func (k Key) Validate() error {
	if err := text("name", k.Name, maxName); err != nil {
		return err
	}
	if err := text("prefix", k.Prefix, maxPrefix); err != nil {
		return err
	}
	if len(k.Scopes) == 0 {
		return fmt.Errorf("%w: a key needs a scope: %s, %s or %s", ErrInvalid, ScopeRead, ScopeWrite, ScopeAdmin)
	}
	for _, s := range k.Scopes {
		if _, err := ParseScope(string(s)); err != nil {
			return err
		}
	}
	if k.CreatedAt.IsZero() {
		return fmt.Errorf("%w: no creation time", ErrInvalid)
	}
	if k.ExpiresAt != nil && !k.ExpiresAt.After(k.CreatedAt) {
		return fmt.Errorf("%w: expiry %s is not after creation %s", ErrInvalid,
			k.ExpiresAt.Format(time.RFC3339), k.CreatedAt.Format(time.RFC3339))
	}
	return nil
}

// text checks a required, printable, single-line string of at most limit bytes.
func text(field, s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	case len(s) > limit:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, limit)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
	}
	return nil
}

// SecretPrefix starts every secret, so that secret scanners (GitHub's, gitleaks) can match a
// leaked key with the pattern ferry_[a-z2-7]{52}, and people can tell what it is.
const SecretPrefix = "ferry_"

// entropy is the number of random bytes in a secret: 256 bits.
const entropy = 32

// prefixLen is how much of a secret Key.Prefix keeps: SecretPrefix and 8 characters, 40 of the
// 256 random bits, enough to tell keys apart and far too few to guess the rest.
const prefixLen = len(SecretPrefix) + 8

// MaxSecret bounds what Parse accepts, so that no request makes the server hash megabytes.
// Ferry's secrets are 58 bytes.
const MaxSecret = 256

// encoding is lowercase base32 without padding: no characters that need quoting in a shell,
// a URL or YAML, and none that look alike in most fonts except what base32 already avoids.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Generate returns a new secret, its hash for the store and its prefix for listings. The
// secret is shown to its owner once and never stored.
func Generate() (secret string, hash []byte, prefix string) {
	b := make([]byte, entropy)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return short
	secret = SecretPrefix + encoding.EncodeToString(b)
	return secret, Hash(secret), secret[:prefixLen]
}

// Hash returns the SHA-256 of secret, the form in which the store keeps and finds keys.
//
// A fast hash is right here, where it would be wrong for passwords: bcrypt and argon2 are slow
// and salted to stop an attacker with a stolen hash from trying the few billion passwords
// people pick, but a generated key has 256 random bits, beyond any number of tries at any
// speed. An unsalted hash also lets the store find a key with an index lookup instead of
// checking every key's salted hash, which would cost a slow hash per key per request.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Verify reports whether secret hashes to hash, comparing in constant time so that the time
// taken says nothing about how much of the hash matched.
func Verify(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(Hash(secret), hash) == 1
}

// Parse returns the key a request presents, from any of the headers Alerta's clients and
// others send:
//
//	Authorization: Key <key>      Alerta's scheme
//	Authorization: Bearer <key>
//	X-API-Key: <key>
//
// Schemes are case-insensitive. An Authorization header of another scheme, such as Basic, is
// not a key; X-API-Key is then read. Keys in the query string are not accepted: URLs end up in
// access logs and browser history. It reports false when the request presents no key, or one
// that is empty, longer than MaxSecret, or not printable ASCII without spaces.
func Parse(r *http.Request) (string, bool) {
	if scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok &&
		(strings.EqualFold(scheme, "Key") || strings.EqualFold(scheme, "Bearer")) {
		if key = strings.TrimSpace(key); wellFormed(key) {
			return key, true
		}
	}
	if key := strings.TrimSpace(r.Header.Get("X-API-Key")); wellFormed(key) {
		return key, true
	}
	return "", false
}

// wellFormed reports whether key could be a secret at all: printable ASCII, no spaces, of a
// sane length.
func wellFormed(key string) bool {
	if key == "" || len(key) > MaxSecret {
		return false
	}
	for i := range len(key) {
		if c := key[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
