// Package auth holds the panel's local users and their browser sessions: roles, password
// hashing, session cookies, CSRF protection and the middleware that requires a role. The
// store keeps users and sessions and never sees a password or a session token, only their
// hashes. API keys for scripts and the CLI are package apikey's.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// ErrNotFound reports a user that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid reports input that breaks a rule; the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrConflict reports a change that clashes with what is stored, such as a taken name.
var ErrConflict = errors.New("conflict")

// ErrUnauthorized reports a wrong name or password, or a session that is unknown, expired or
// belongs to a disabled user.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden reports a user whose role does not allow the request, or a state change
// without the session's CSRF token.
var ErrForbidden = errors.New("forbidden")

// Role is what a user may do. Roles nest: admin includes operator, which includes viewer.
type Role string

// The roles, weakest first.
const (
	// RoleViewer reads applications, releases, incidents and the rest of the panel.
	RoleViewer Role = "viewer"
	// RoleOperator also acts on them: sync, rollback, acknowledge.
	RoleOperator Role = "operator"
	// RoleAdmin also administers Ferry: settings, users and keys.
	RoleAdmin Role = "admin"
)

// rank orders the roles; zero means not a role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a user with role r may do what role want allows.
func (r Role) Allows(want Role) bool {
	return r.Valid() && want.Valid() && r.rank() >= want.rank()
}

// ParseRole returns the role named s, or an error wrapping ErrInvalid.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q; want %s, %s or %s", ErrInvalid, s, RoleViewer, RoleOperator, RoleAdmin)
}

// User is a local user of the panel.
type User struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// PasswordHash is the bcrypt hash of the password. It never leaves the server.
	PasswordHash []byte     `json:"-"`
	CreatedAt    time.Time  `json:"createdAt"`
	DisabledAt   *time.Time `json:"disabledAt,omitempty"`
}

// Name and password limits. bcrypt reads at most 72 bytes; a longer password would have
// its tail ignored, so it is refused rather than silently shortened.
const (
	maxName           = 64
	minPasswordRunes  = 12
	maxPasswordBytes  = 72
	maxPasswordHashes = 255
)

// ValidateName reports, wrapped in ErrInvalid, why name cannot be a user's name: it must be
// 1 to 64 bytes of printable UTF-8 without spaces, so that it reads the same in the panel,
// logs and a shell.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: user name is required", ErrInvalid)
	case len(name) > maxName:
		return fmt.Errorf("%w: user name is longer than %d bytes", ErrInvalid, maxName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: user name is not valid UTF-8", ErrInvalid)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("%w: user name %q contains a space or control character", ErrInvalid, name)
	}
	return nil
}

// ValidateHash reports, wrapped in ErrInvalid, a password hash that cannot be a bcrypt hash
// by its size. The store checks no more: it never verifies passwords.
func ValidateHash(hash []byte) error {
	if len(hash) == 0 || len(hash) > maxPasswordHashes {
		return fmt.Errorf("%w: password hash has %d bytes", ErrInvalid, len(hash))
	}
	return nil
}

// validatePassword reports, wrapped in ErrInvalid, a password too short to resist guessing
// or too long for bcrypt.
func validatePassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < minPasswordRunes {
		return fmt.Errorf("%w: password has %d characters, want at least %d", ErrInvalid, n, minPasswordRunes)
	}
	if len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: password has %d bytes, want at most %d (bcrypt's limit)", ErrInvalid, len(pw), maxPasswordBytes)
	}
	return nil
}

// HashPassword returns the bcrypt hash of pw, at bcrypt's default cost. A password shorter
// than 12 characters or longer than 72 bytes is an error wrapping ErrInvalid.
func HashPassword(pw string) ([]byte, error) {
	if err := validatePassword(pw); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return hash, nil
}

// CheckPassword reports whether pw is the password hash was made from. It takes bcrypt's
// time whatever the answer, except for passwords HashPassword would refuse as too long.
func CheckPassword(hash []byte, pw string) bool {
	if len(pw) > maxPasswordBytes {
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
}

// dummyHash is a bcrypt hash at the default cost of a password nobody knows. Login checks
// passwords of unknown users against it, so that a wrong name takes as long as a wrong
// password and the time of an answer does not tell which names exist.
var dummyHash = []byte("$2a$10$l2T0hNu8goKNVwlNRg6rS.QSUqZ6u2dw3cIMXZnCYOAAwEgqxX9j2")

// Store keeps users and sessions. Sessions are found by the SHA-256 of their token, which
// the store never sees.
type Store interface {
	// CreateUser stores a new user; a name another user has is an error wrapping
	// ErrConflict.
	CreateUser(ctx context.Context, name string, role Role, hash []byte) (User, error)
	// GetUserByName returns the user named name, disabled or not, with its password hash;
	// an unknown name is an error wrapping ErrNotFound.
	GetUserByName(ctx context.Context, name string) (User, error)
	// CreateSession stores a session of the user, found by tokenHash, that ends at expires.
	CreateSession(ctx context.Context, userID int64, tokenHash []byte, expires time.Time) error
	// SessionUser returns the user of the session found by tokenHash. A session that is
	// unknown, ended at now, or whose user is disabled is an error wrapping ErrUnauthorized.
	SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (User, error)
	// DeleteSession ends the session found by tokenHash; an unknown one is no error.
	DeleteSession(ctx context.Context, tokenHash []byte) error
}

// EnsureAdmin creates an admin named name with password unless a user of that name exists,
// whose password and role it leaves alone: the configured password sets up the first login,
// and a password changed since in the panel stands. It reports whether it created the user.
// The password is checked against the rules either way, so that a bad one in the
// configuration is reported on every start, not only the first.
func EnsureAdmin(ctx context.Context, s Store, name, password string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, fmt.Errorf("ensure admin: %w", err)
	}
	if err := validatePassword(password); err != nil {
		return false, fmt.Errorf("ensure admin %s: %w", name, err)
	}
	_, err := s.GetUserByName(ctx, name)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("ensure admin %s: %w", name, err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return false, fmt.Errorf("ensure admin %s: %w", name, err)
	}
	_, err = s.CreateUser(ctx, name, RoleAdmin, hash)
	if errors.Is(err, ErrConflict) {
		return false, nil // another replica created it first
	}
	if err != nil {
		return false, fmt.Errorf("ensure admin %s: %w", name, err)
	}
	return true, nil
}
