package auth_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/store"
)

// openStore opens a fresh SQLite store, closed when the test ends.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "f.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// clock is a time that tests move on.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// key is the tests' server key.
var key = []byte("0123456789abcdef0123456789abcdef")

// fixture is a manager on a fresh store with one user of each role, all with password.
type fixture struct {
	m     *auth.Manager
	db    *store.DB
	clock *clock
}

func newFixture(t *testing.T, opts auth.Options) fixture {
	t.Helper()
	db := openStore(t)
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleOperator, auth.RoleAdmin} {
		if _, err := db.CreateUser(t.Context(), string(r), r, passwordHash(t)); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{now: time.Now()}
	opts.Now = c.Now
	m, err := auth.NewManager(db, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{m: m, db: db, clock: c}
}

// login logs name in and returns the session cookie.
func (f fixture) login(t *testing.T, name string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if _, err := f.m.Login(rec, httptest.NewRequest(http.MethodPost, "/login", nil), name, password); err != nil {
		t.Fatalf("Login(%s): %v", name, err)
	}
	return sessionCookie(t, rec)
}

// sessionCookie returns the session cookie rec sets.
func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie set; headers %v", auth.CookieName, rec.Header())
	return nil
}

// request returns a request with cookie, if not nil.
func request(method, target string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

func TestNewManagerKey(t *testing.T) {
	t.Parallel()
	if _, err := auth.NewManager(openStore(t), key[:16], auth.Options{}); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("NewManager(16-byte key) = %v, want ErrInvalid", err)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	rec := httptest.NewRecorder()
	u, err := f.m.Login(rec, httptest.NewRequest(http.MethodPost, "/login", nil), "operator", password)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "operator" || u.Role != auth.RoleOperator || u.PasswordHash != nil {
		t.Errorf("Login = %+v, want operator without its hash", u)
	}
	got, ok := f.m.Session(request(http.MethodGet, "/", sessionCookie(t, rec)))
	if !ok || got.ID != u.ID {
		t.Errorf("Session with the login's cookie = %+v, %v; want %+v", got, ok, u)
	}
}

func TestLoginFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	if err := f.db.DisableUser(t.Context(), "viewer"); err != nil {
		t.Fatal(err)
	}
	var msg string
	for _, c := range []struct{ name, user, pw string }{
		{"wrong password", "admin", "wrong password!!"},
		{"unknown user", "nobody", password},
		{"disabled user", "viewer", password},
		{"invalid name", "no body", password},
		{"password too long", "admin", password + string(make([]byte, 80))},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			u, err := f.m.Login(rec, httptest.NewRequest(http.MethodPost, "/login", nil), c.user, c.pw)
			if !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("Login = %+v, %v; want ErrUnauthorized", u, err)
			}
			// One message for every failure, so that it does not tell which names exist.
			if msg == "" {
				msg = err.Error()
			} else if err.Error() != msg {
				t.Errorf("Login error %q, want the same as the others: %q", err, msg)
			}
			if cookies := rec.Result().Cookies(); len(cookies) != 0 {
				t.Errorf("failed login set cookies %v", cookies)
			}
		})
	}
}

func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		tls        bool
		secureFlag bool
		wantSecure bool
	}{
		{"plain HTTP", false, false, false},
		{"TLS", true, false, true},
		{"behind an HTTPS proxy", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, auth.Options{SecureCookie: c.secureFlag, SessionLifetime: time.Hour})
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			if _, err := f.m.Login(rec, r, "viewer", password); err != nil {
				t.Fatal(err)
			}
			ck := sessionCookie(t, rec)
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure != c.wantSecure {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want true, Lax, /, %v",
					ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure, c.wantSecure)
			}
			if ck.MaxAge != 3600 || len(ck.Value) != 43 {
				t.Errorf("cookie MaxAge=%d, value of %d characters; want 3600, 43", ck.MaxAge, len(ck.Value))
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "admin")
	other := f.login(t, "admin")
	rec := httptest.NewRecorder()
	if err := f.m.Logout(rec, request(http.MethodPost, "/logout", ck)); err != nil {
		t.Fatal(err)
	}
	if got := sessionCookie(t, rec); got.MaxAge >= 0 || got.Value != "" {
		t.Errorf("Logout cookie MaxAge=%d Value=%q; want an expired, empty cookie", got.MaxAge, got.Value)
	}
	if u, ok := f.m.Session(request(http.MethodGet, "/", ck)); ok {
		t.Errorf("Session after Logout = %+v, want none", u)
	}
	// The same user's other session, in another browser, goes on.
	if _, ok := f.m.Session(request(http.MethodGet, "/", other)); !ok {
		t.Error("Logout ended the user's other session")
	}
	// Logging out without a session only expires the cookie.
	if err := f.m.Logout(httptest.NewRecorder(), request(http.MethodPost, "/logout", nil)); err != nil {
		t.Errorf("Logout without a session = %v", err)
	}
}

func TestLoginEndsPreviousSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	planted := f.login(t, "viewer")
	rec := httptest.NewRecorder()
	if _, err := f.m.Login(rec, request(http.MethodPost, "/login", planted), "admin", password); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.m.Session(request(http.MethodGet, "/", planted)); ok {
		t.Error("the session the login request carried survived it")
	}
	if u, ok := f.m.Session(request(http.MethodGet, "/", sessionCookie(t, rec))); !ok || u.Name != "admin" {
		t.Errorf("Session = %+v, %v; want admin", u, ok)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "viewer")
	f.clock.Add(12*time.Hour - time.Second)
	if _, ok := f.m.Session(request(http.MethodGet, "/", ck)); !ok {
		t.Fatal("session ended before its 12 hours")
	}
	f.clock.Add(time.Second)
	if u, ok := f.m.Session(request(http.MethodGet, "/", ck)); ok {
		t.Errorf("Session after 12 hours = %+v, want none", u)
	}
}

func TestSessionBadCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	for _, v := range []string{"", "short", "not base64 but forty-three characters long!!", auth.CookieName} {
		if u, ok := f.m.Session(request(http.MethodGet, "/", &http.Cookie{Name: auth.CookieName, Value: v})); ok {
			t.Errorf("Session(cookie %q) = %+v, want none", v, u)
		}
	}
	// A well-formed token that no session has.
	if u, ok := f.m.Session(request(http.MethodGet, "/", &http.Cookie{Name: auth.CookieName,
		Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})); ok {
		t.Errorf("Session(unknown token) = %+v, want none", u)
	}
}

func TestDisableEndsSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.Options{})
	ck := f.login(t, "operator")
	if err := f.db.DisableUser(t.Context(), "operator"); err != nil {
		t.Fatal(err)
	}
	if u, ok := f.m.Session(request(http.MethodGet, "/", ck)); ok {
		t.Errorf("Session of a disabled user = %+v, want none", u)
	}
}
