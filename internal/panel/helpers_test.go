package panel_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
)

// testStore opens a real SQLite store in a temporary directory.
func testStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// testAuth returns a session manager over db with a fresh key.
func testAuth(t *testing.T, db *store.DB) *auth.Manager {
	t.Helper()
	key := make([]byte, auth.KeySize)
	_, _ = rand.Read(key)
	m, err := auth.NewManager(db, key, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testPassword is every test user's password.
const testPassword = "correct horse battery"

// addUser creates a user with testPassword.
func addUser(t *testing.T, db *store.DB, name string, role auth.Role) {
	t.Helper()
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(context.Background(), name, role, hash); err != nil {
		t.Fatal(err)
	}
}

// serve builds the panel from opts and serves it.
func serve(t *testing.T, opts panel.Options) *httptest.Server {
	t.Helper()
	p, err := panel.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// browser is a logged-in client of the panel: a cookie jar and the session's CSRF token.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

// login logs name in with testPassword and reads the CSRF token from the first page.
func login(t *testing.T, base, name string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: base, c: &http.Client{Jar: jar}}
	resp, err := b.c.PostForm(base+"/login", url.Values{"name": {name}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", name, resp.StatusCode, body)
	}
	m := csrfMeta.FindSubmatch(body)
	if m == nil || len(m[1]) == 0 {
		t.Fatalf("login %s: no CSRF token on the page after login", name)
	}
	b.csrf = string(m[1])
	return b
}

// get fetches a page and returns its status and body.
func (b *browser) get(path string, header ...string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post submits a form with the session's CSRF token (unless form sets csrf_token itself)
// and returns the final status and body, after redirects.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf)
	}
	resp, err := b.c.Post(b.base+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
