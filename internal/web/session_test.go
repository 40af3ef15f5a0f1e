package web

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
)

// TestSessionOnAPI calls API routes with the panel's session cookie instead of a key: the
// user's role stands for the scope, changes need the session's CSRF token, an ended session
// is refused, and a key in the request wins over a cookie.
func TestSessionOnAPI(t *testing.T) {
	f := newAuthFixture(t)
	key := make([]byte, auth.KeySize)
	_, _ = rand.Read(key)
	m, err := auth.NewManager(f.db, key, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "a long enough password"
	hash, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	// session logs name in and returns its cookie and CSRF token.
	session := func(name string, role auth.Role) (*http.Cookie, string) {
		if _, err := f.db.CreateUser(t.Context(), name, role, hash); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		if _, err := m.Login(rec, httptest.NewRequest(http.MethodPost, "/login", nil), name, pw); err != nil {
			t.Fatal(err)
		}
		c := rec.Result().Cookies()[0]
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(c)
		token, _ := m.CSRFToken(r)
		return c, token
	}
	viewer, viewerToken := session("vera", auth.RoleViewer)
	operator, operatorToken := session("otto", auth.RoleOperator)

	g := guard{log: slog.New(slog.DiscardHandler), keys: f.db, sessions: m}
	who := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := KeyFrom(r.Context())
		_, _ = w.Write([]byte(k.Name))
	})
	call := func(method string, scope apikey.Scope, cookie *http.Cookie, header ...string) (int, string) {
		r := httptest.NewRequest(method, "/api/v1/x", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		g.require(scope, who).ServeHTTP(rec, r)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	for _, tc := range []struct {
		name   string
		method string
		scope  apikey.Scope
		cookie *http.Cookie
		header []string
		status int
		body   string
	}{
		{"viewer reads", http.MethodGet, apikey.ScopeRead, viewer, nil, http.StatusOK, "vera"},
		{"viewer may not write", http.MethodPost, apikey.ScopeWrite, viewer, []string{auth.CSRFHeader, viewerToken}, http.StatusForbidden, "role viewer"},
		{"operator writes with the token", http.MethodPost, apikey.ScopeWrite, operator, []string{auth.CSRFHeader, operatorToken}, http.StatusOK, "otto"},
		{"no token", http.MethodPost, apikey.ScopeWrite, operator, nil, http.StatusForbidden, "CSRF"},
		{"another session's token", http.MethodPost, apikey.ScopeWrite, operator, []string{auth.CSRFHeader, viewerToken}, http.StatusForbidden, "CSRF"},
		{"operator is no admin", http.MethodDelete, apikey.ScopeAdmin, operator, []string{auth.CSRFHeader, operatorToken}, http.StatusForbidden, "role operator"},
		{"a key wins over a cookie", http.MethodGet, apikey.ScopeRead, viewer, []string{"Authorization", "Key " + f.read}, http.StatusOK, "reader"},
		{"neither", http.MethodGet, apikey.ScopeRead, nil, nil, http.StatusUnauthorized, "no API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(tc.method, tc.scope, tc.cookie, tc.header...)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Errorf("= %d %q, want %d containing %q", status, body, tc.status, tc.body)
			}
		})
	}

	// Logging out ends the session for the API too.
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(viewer)
	if err := m.Logout(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if status, body := call(http.MethodGet, apikey.ScopeRead, viewer); status != http.StatusUnauthorized {
		t.Errorf("after logout = %d %q, want 401", status, body)
	}
}
