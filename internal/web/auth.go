package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
)

// KeyAuthenticator finds the live API key whose secret hashes to hash, or returns an error
// wrapping apikey.ErrUnauthorized. *store.DB is one.
type KeyAuthenticator interface {
	AuthenticateAPIKey(ctx context.Context, hash []byte, now time.Time) (apikey.Key, error)
}

// challenge is the WWW-Authenticate answer of every 401: the scheme Alerta's clients send.
const challenge = `Key realm="ferry"`

// keyContext is the context key under which RequireKey leaves the request's API key.
type keyContext struct{}

// RequireKey serves next only to requests that present a live API key with scope, as
// apikey.Parse reads it. Others get 401 when the key is missing, unknown, revoked or expired,
// with a WWW-Authenticate challenge, and 403 when the key's scopes fall short. The request
// that reaches next carries the key, for KeyFrom.
//
// The secret never leaves this function: errors name a key by its prefix, and only
// unexpected failures of keys, which see the hash and not the secret, are logged to log.
func RequireKey(log *slog.Logger, keys KeyAuthenticator, scope apikey.Scope, next http.Handler) http.Handler {
	return guard{log: log, keys: keys}.require(scope, next)
}

// guard authenticates API requests by an API key or, when sessions is set, by the panel's
// session cookie: the panel's own scripts and a logged-in browser use the API as the user.
type guard struct {
	log      *slog.Logger
	keys     KeyAuthenticator
	sessions *auth.Manager
}

// roleFor is the panel role that a session needs for what an API key needs scope for.
var roleFor = map[apikey.Scope]auth.Role{
	apikey.ScopeRead:  auth.RoleViewer,
	apikey.ScopeWrite: auth.RoleOperator,
	apikey.ScopeAdmin: auth.RoleAdmin,
}

func (g guard) require(scope apikey.Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := apikey.Parse(r)
		if !ok && g.sessions != nil && auth.HasSession(r) {
			g.session(w, r, scope, next)
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, r, g.log, fmt.Errorf("%w: no API key; send Authorization: Key <key> or X-API-Key: <key>",
				apikey.ErrUnauthorized))
			return
		}
		k, err := g.keys.AuthenticateAPIKey(r.Context(), apikey.Hash(secret), time.Now())
		if err != nil {
			if errors.Is(err, apikey.ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			writeError(w, r, g.log, err)
			return
		}
		if !k.Allows(scope) {
			writeError(w, r, g.log, fmt.Errorf("%w: API key %s (%s) has scopes %v; this needs %s",
				apikey.ErrForbidden, k.Prefix, k.Name, k.Scopes, scope))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContext{}, k)))
	})
}

// session serves next to a request of a live session whose user's role covers scope, with
// the CSRF token on state changes. The handler sees the user as a key named after them, so
// that an alert's history says who acted.
func (g guard) session(w http.ResponseWriter, r *http.Request, scope apikey.Scope, next http.Handler) {
	r, err := g.sessions.Authorize(r, roleFor[scope])
	if err != nil {
		writeError(w, r, g.log, err)
		return
	}
	u, _ := auth.UserFrom(r.Context())
	k := apikey.Key{Name: u.Name, Prefix: "session"}
	for s, role := range roleFor {
		if u.Role.Allows(role) {
			k.Scopes = append(k.Scopes, s)
		}
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContext{}, k)))
}

// KeyFrom returns the API key RequireKey authenticated the request with, for recording who
// did what: the key's Name stands for the user in an alert's history.
func KeyFrom(ctx context.Context) (apikey.Key, bool) {
	k, ok := ctx.Value(keyContext{}).(apikey.Key)
	return k, ok
}
