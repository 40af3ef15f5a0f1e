package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ctxKey is the context key of the request's session.
type ctxKey struct{}

// sessionInfo is what RequireRole puts into the request's context.
type sessionInfo struct {
	user User
	csrf string
}

// UserFrom returns the user RequireRole put into ctx.
func UserFrom(ctx context.Context) (User, bool) {
	s, ok := ctx.Value(ctxKey{}).(sessionInfo)
	return s.user, ok
}

// CSRFTokenFrom returns the CSRF token of the session RequireRole put into ctx, for pages to
// embed in their forms and scripts to send in the X-CSRF-Token header; empty without one.
func CSRFTokenFrom(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(sessionInfo)
	return s.csrf
}

// RequireRole passes to next the requests of a live session whose user has role want or a
// stronger one, with the user in the context (UserFrom). It answers the others with a JSON
// error: 401 without a live session, 403 for a state change without the session's CSRF
// token or from another site, 403 for too weak a role.
func (m *Manager) RequireRole(want Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := m.Authorize(r, want)
		if err != nil {
			m.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Authorize is RequireRole's check for handlers that answer refusals in their own format,
// such as the panel's HTML pages. It returns r with the user and the session's CSRF token in
// its context, or an error wrapping ErrUnauthorized (no live session), ErrForbidden (a state
// change without the session's CSRF token, from another site, or by too weak a role), or the
// store's failure.
func (m *Manager) Authorize(r *http.Request, want Role) (*http.Request, error) {
	u, hash, err := m.session(r)
	if err != nil {
		return r, err
	}
	if err := m.checkCSRF(r, hash); err != nil {
		return r, err
	}
	if !u.Role.Allows(want) {
		return r, fmt.Errorf("%w: user %s has role %s; this needs %s", ErrForbidden, u.Name, u.Role, want)
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, sessionInfo{user: u, csrf: m.csrfToken(hash)})
	return r.WithContext(ctx), nil
}

// HasSession reports whether the request carries a session cookie at all, live or not: an
// API request with one and without an API key is authenticated by the session.
func HasSession(r *http.Request) bool {
	_, ok := cookieHash(r)
	return ok
}

// errorBody is the API's error format, {"error":{"status":401,"message":"..."}}.
type errorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers a request the middleware refuses. Errors that are not a refusal are
// logged and answered with a generic message, so internals never reach a client.
func (m *Manager) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	case r.Context().Err() != nil:
		return // the client went away; nobody reads the answer
	default:
		m.opts.Logger.ErrorContext(r.Context(), "session", "method", r.Method, "path", r.URL.Path, "err", err)
		err = errors.New("internal error; see the server log")
	}
	var body errorBody
	body.Error.Status, body.Error.Message = status, err.Error()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}
