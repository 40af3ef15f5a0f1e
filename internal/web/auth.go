package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := apikey.Parse(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, r, log, fmt.Errorf("%w: no API key; send Authorization: Key <key> or X-API-Key: <key>",
				apikey.ErrUnauthorized))
			return
		}
		k, err := keys.AuthenticateAPIKey(r.Context(), apikey.Hash(secret), time.Now())
		if err != nil {
			if errors.Is(err, apikey.ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			writeError(w, r, log, err)
			return
		}
		if !k.Allows(scope) {
			writeError(w, r, log, fmt.Errorf("%w: API key %s (%s) has scopes %v; this needs %s",
				apikey.ErrForbidden, k.Prefix, k.Name, k.Scopes, scope))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyContext{}, k)))
	})
}

// KeyFrom returns the API key RequireKey authenticated the request with, for recording who
// did what: the key's Name stands for the user in an alert's history.
func KeyFrom(ctx context.Context) (apikey.Key, bool) {
	k, ok := ctx.Value(keyContext{}).(apikey.Key)
	return k, ok
}
