package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/auth"
)

// protected returns a handler behind RequireRole(want) that answers 204 with the user's
// name in a header, and the CSRF token it sees in another.
func protected(m *auth.Manager, want auth.Role) http.Handler {
	return m.RequireRole(want, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := auth.UserFrom(r.Context())
		if !ok {
			http.Error(w, "no user in the context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-User", u.Name)
		w.Header().Set("X-Seen-Token", auth.CSRFTokenFrom(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}))
}

// serve runs r through h and returns the recorder.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// csrfToken returns the CSRF token of the session in cookie.
func csrfToken(t *testing.T, m *auth.Manager, cookie *http.Cookie) string {
	t.Helper()
	tok, ok := m.CSRFToken(request(http.MethodGet, "/", cookie))
	if !ok || tok == "" {
		t.Fatal("CSRFToken: none for a session cookie")
	}
	return tok
}

// wantError checks that rec is the API's JSON error with status.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Error struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if body.Error.Status != status || body.Error.Message == "" {
		t.Errorf("error body %+v, want status %d and a message", body, status)
	}
}

func TestRequireRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	cookies := map[string]*http.Cookie{}
	for _, name := range []string{"viewer", "operator", "admin"} {
		cookies[name] = f.login(t, name)
	}
	for _, c := range []struct {
		name   string
		user   string // empty: no session
		want   auth.Role
		status int
	}{
		{"no session", "", auth.RoleViewer, http.StatusUnauthorized},
		{"viewer reads", "viewer", auth.RoleViewer, http.StatusNoContent},
		{"viewer refused operator route", "viewer", auth.RoleOperator, http.StatusForbidden},
		{"operator on operator route", "operator", auth.RoleOperator, http.StatusNoContent},
		{"operator refused admin route", "operator", auth.RoleAdmin, http.StatusForbidden},
		{"admin passes", "admin", auth.RoleAdmin, http.StatusNoContent},
		{"admin on viewer route", "admin", auth.RoleViewer, http.StatusNoContent},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := request(http.MethodPost, "/api/v1/x", cookies[c.user])
			if c.user != "" {
				r.Header.Set(auth.CSRFHeader, csrfToken(t, f.m, cookies[c.user]))
			}
			rec := serve(protected(f.m, c.want), r)
			if c.status != http.StatusNoContent {
				wantError(t, rec, c.status)
				return
			}
			if rec.Code != c.status || rec.Header().Get("X-User") != c.user {
				t.Errorf("status %d, user %q; want %d, %q", rec.Code, rec.Header().Get("X-User"), c.status, c.user)
			}
		})
	}
}

func TestRequireRoleExpiredSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "admin")
	h := protected(f.m, auth.RoleViewer)
	if rec := serve(h, request(http.MethodGet, "/", ck)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d before expiry, want 204", rec.Code)
	}
	f.clock.Add(13 * time.Hour)
	wantError(t, serve(h, request(http.MethodGet, "/", ck)), http.StatusUnauthorized)
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "operator")
	other := f.login(t, "admin")
	tok := csrfToken(t, f.m, ck)
	h := protected(f.m, auth.RoleOperator)

	form := func(method string, v url.Values) *http.Request {
		r := httptest.NewRequest(method, "/sync", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(ck)
		return r
	}
	withHeader := func(method, token string, headers ...string) *http.Request {
		r := request(method, "/sync", ck)
		if token != "" {
			r.Header.Set(auth.CSRFHeader, token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"GET needs none", withHeader(http.MethodGet, ""), http.StatusNoContent},
		{"HEAD needs none", withHeader(http.MethodHead, ""), http.StatusNoContent},
		{"OPTIONS needs none", withHeader(http.MethodOptions, ""), http.StatusNoContent},
		{"POST without token", withHeader(http.MethodPost, ""), http.StatusForbidden},
		{"DELETE without token", withHeader(http.MethodDelete, ""), http.StatusForbidden},
		{"wrong token", withHeader(http.MethodPost, tok[:len(tok)-1]+"x"), http.StatusForbidden},
		{"another session's token", withHeader(http.MethodPost, csrfToken(t, f.m, other)), http.StatusForbidden},
		{"token in header", withHeader(http.MethodPost, tok), http.StatusNoContent},
		{"token in header, PUT", withHeader(http.MethodPut, tok), http.StatusNoContent},
		{"token in form", form(http.MethodPost, url.Values{"csrf_token": {tok}, "app": {"shop"}}), http.StatusNoContent},
		{"wrong token in form", form(http.MethodPost, url.Values{"csrf_token": {"nope"}}), http.StatusForbidden},
		{"same-origin", withHeader(http.MethodPost, tok, "Sec-Fetch-Site", "same-origin"), http.StatusNoContent},
		{"cross-site with the right token", withHeader(http.MethodPost, tok, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"cross-site GET", withHeader(http.MethodGet, "", "Sec-Fetch-Site", "cross-site"), http.StatusNoContent},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(h, c.r)
			if c.status != http.StatusNoContent {
				wantError(t, rec, c.status)
				return
			}
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, c.status, rec.Body)
			}
			// Pages get the token to embed from the context.
			if got := rec.Header().Get("X-Seen-Token"); got != tok {
				t.Errorf("CSRFTokenFrom = %q, want %q", got, tok)
			}
		})
	}
}

func TestCSRFTokenStable(t *testing.T) {
	t.Parallel()
	// The token depends on the session and the key only: the same on another Manager with
	// the same key, such as a replica or a restarted server, and different under another key.
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "viewer")
	replica, err := auth.NewManager(f.db, key, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := auth.NewManager(f.db, []byte(strings.Repeat("k", auth.KeySize)), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := csrfToken(t, f.m, ck)
	if diff := cmp.Diff(tok, csrfToken(t, replica, ck)); diff != "" {
		t.Errorf("token on a replica (-want +got):\n%s", diff)
	}
	if csrfToken(t, otherKey, ck) == tok {
		t.Error("the token does not depend on the key")
	}
	if _, ok := f.m.CSRFToken(request(http.MethodGet, "/", nil)); ok {
		t.Error("CSRFToken without a session cookie reports one")
	}
}

func TestCrossSite(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"": false, "none": false, "same-origin": false, "same-site": false, "cross-site": true} {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		if v != "" {
			r.Header.Set("Sec-Fetch-Site", v)
		}
		if got := auth.CrossSite(r); got != want {
			t.Errorf("CrossSite(Sec-Fetch-Site: %q) = %v, want %v", v, got, want)
		}
	}
}
