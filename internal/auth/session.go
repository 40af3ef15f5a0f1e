package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// CookieName is the name of the session cookie.
const CookieName = "ferry_session"

// tokenBytes is the number of random bytes in a session token: 256 bits, beyond guessing.
const tokenBytes = 32

// KeySize is the size of the server key that CSRF tokens are derived with.
const KeySize = 32

// Options are the tunables of a Manager.
type Options struct {
	// SessionLifetime is how long a session lasts from login, however active it is.
	SessionLifetime time.Duration
	// SecureCookie marks the session cookie Secure even on requests that reach the server
	// without TLS: set it when a proxy in front terminates HTTPS. Requests over TLS get a
	// Secure cookie either way.
	SecureCookie bool
	// Now returns the current time; tests set it to move time on.
	Now func() time.Time
	// Logger receives the errors that the middleware answers with a 500.
	Logger *slog.Logger
}

// DefaultOptions returns the options of a production Manager: twelve-hour sessions, the
// system clock and no logging.
func DefaultOptions() Options {
	return Options{
		SessionLifetime: 12 * time.Hour,
		Now:             time.Now,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

// Manager logs users in and out and finds the user of a request by its session cookie.
type Manager struct {
	store Store
	key   []byte
	opts  Options
}

// NewManager returns a Manager keeping sessions in store. key is KeySize secret random bytes
// that CSRF tokens are derived from; it must stay the same across restarts and replicas, or
// pages open in browsers lose their tokens. Zero options take DefaultOptions' values.
func NewManager(store Store, key []byte, opts Options) (*Manager, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("new session manager: %w: key has %d bytes, want %d", ErrInvalid, len(key), KeySize)
	}
	def := DefaultOptions()
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = def.SessionLifetime
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	return &Manager{store: store, key: append([]byte(nil), key...), opts: opts}, nil
}

// errLogin is the one answer to a failed login, so that it does not tell an unknown name
// from a wrong password or a disabled user.
var errLogin = fmt.Errorf("%w: wrong user name or password", ErrUnauthorized)

// Login checks name and password and, if they are right, starts a session and sets its
// cookie on w. A session the request already had ends, so that a token planted in the
// browser before login is worthless after it. Wrong credentials, an unknown name and a
// disabled user are the same error wrapping ErrUnauthorized, after the same bcrypt work.
func (m *Manager) Login(w http.ResponseWriter, r *http.Request, name, password string) (User, error) {
	ctx := r.Context()
	u, err := m.store.GetUserByName(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid):
		CheckPassword(dummyHash, password)
		return User{}, errLogin
	case err != nil:
		return User{}, fmt.Errorf("login: %w", err)
	}
	if !CheckPassword(u.PasswordHash, password) || u.DisabledAt != nil {
		return User{}, errLogin
	}
	if hash, ok := cookieHash(r); ok {
		if err := m.store.DeleteSession(ctx, hash); err != nil {
			return User{}, fmt.Errorf("login: end previous session: %w", err)
		}
	}
	token := newToken()
	now := m.opts.Now()
	expires := now.Add(m.opts.SessionLifetime)
	if err := m.store.CreateSession(ctx, u.ID, tokenHash(token), expires); err != nil {
		return User{}, fmt.Errorf("login: %w", err)
	}
	http.SetCookie(w, m.cookie(r, token, expires, int(m.opts.SessionLifetime/time.Second)))
	u.PasswordHash = nil
	return u, nil
}

// Logout ends the request's session, if it has one, and expires its cookie.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) error {
	if hash, ok := cookieHash(r); ok {
		if err := m.store.DeleteSession(r.Context(), hash); err != nil {
			return fmt.Errorf("logout: %w", err)
		}
	}
	http.SetCookie(w, m.cookie(r, "", time.Unix(0, 0), -1))
	return nil
}

// Session returns the user of the request's session, if it has a live one. Errors of the
// store count as no session; the middleware tells them apart.
func (m *Manager) Session(r *http.Request) (User, bool) {
	u, _, err := m.session(r)
	return u, err == nil
}

// session returns the user of the request's session and the session's token hash. No
// session, or one that is not live, is an error wrapping ErrUnauthorized.
func (m *Manager) session(r *http.Request) (User, []byte, error) {
	hash, ok := cookieHash(r)
	if !ok {
		return User{}, nil, fmt.Errorf("%w: not logged in", ErrUnauthorized)
	}
	u, err := m.store.SessionUser(r.Context(), hash, m.opts.Now())
	if err != nil {
		return User{}, nil, err
	}
	u.PasswordHash = nil
	return u, hash, nil
}

// cookie returns the session cookie holding token. It is HttpOnly, so that script injected
// into a page cannot read it, and SameSite=Lax, so that browsers leave it off cross-site
// requests other than top-level navigation.
func (m *Manager) cookie(r *http.Request, token string, expires time.Time, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   maxAge,
		Secure:   m.opts.SecureCookie || r.TLS != nil,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// newToken returns a new session token: 32 random bytes, base64url without padding.
func newToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program rather than return short
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash returns the SHA-256 of token, the form in which the store keeps sessions. A fast
// hash is enough for 256 random bits, as for API keys.
func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// cookieHash returns the hash of the session token the request's cookie holds, if it holds
// one that could be a token at all.
func cookieHash(r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil, false
	}
	if b, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(b) != tokenBytes {
		return nil, false
	}
	return tokenHash(c.Value), true
}
