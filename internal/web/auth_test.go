package web

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/store"
)

// shifted is a store whose clock runs ahead by d, to see keys expire.
type shifted struct {
	db *store.DB
	d  time.Duration
}

func (s shifted) AuthenticateAPIKey(ctx context.Context, hash []byte, now time.Time) (apikey.Key, error) {
	return s.db.AuthenticateAPIKey(ctx, hash, now.Add(s.d))
}

// authFixture is a SQLite store holding keys of every scope, one revoked and one that
// expires in an hour.
type authFixture struct {
	db                                    *store.DB
	read, write, admin, revoked, expiring string // secrets
	keys                                  map[string]apikey.Key
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f := &authFixture{db: db, keys: map[string]apikey.Key{}}
	inHour := time.Now().Add(time.Hour)
	for _, k := range []struct {
		name    string
		secret  *string
		scope   apikey.Scope
		expires *time.Time
	}{
		{"reader", &f.read, apikey.ScopeRead, nil},
		{"writer", &f.write, apikey.ScopeWrite, nil},
		{"admin", &f.admin, apikey.ScopeAdmin, nil},
		{"revoked", &f.revoked, apikey.ScopeAdmin, nil},
		{"expiring", &f.expiring, apikey.ScopeAdmin, &inHour},
	} {
		secret, hash, prefix := apikey.Generate()
		key, err := db.CreateAPIKey(t.Context(), k.name, []apikey.Scope{k.scope}, hash, prefix, k.expires)
		if err != nil {
			t.Fatal(err)
		}
		*k.secret = secret
		f.keys[k.name] = key
	}
	if _, err := db.RevokeAPIKey(t.Context(), f.keys["revoked"].Prefix); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRequireKey(t *testing.T) {
	f := newAuthFixture(t)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	later := shifted{db: f.db, d: 2 * time.Hour}

	tests := []struct {
		name    string
		keys    KeyAuthenticator
		scope   apikey.Scope
		headers map[string]string
		status  int
		as      string // the key next sees
	}{
		{name: "no key", scope: apikey.ScopeRead, status: http.StatusUnauthorized},
		{name: "Basic credentials", scope: apikey.ScopeRead, headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, status: http.StatusUnauthorized},
		{name: "unknown key", scope: apikey.ScopeRead, headers: map[string]string{"X-API-Key": "ferry_nosuchkeynosuchkey"}, status: http.StatusUnauthorized},
		{name: "revoked", scope: apikey.ScopeRead, headers: map[string]string{"X-API-Key": f.revoked}, status: http.StatusUnauthorized},
		{name: "expired", keys: later, scope: apikey.ScopeRead, headers: map[string]string{"X-API-Key": f.expiring}, status: http.StatusUnauthorized},
		{name: "not expired yet", scope: apikey.ScopeRead, headers: map[string]string{"X-API-Key": f.expiring}, status: http.StatusOK, as: "expiring"},
		{name: "read key, write route", scope: apikey.ScopeWrite, headers: map[string]string{"Authorization": "Key " + f.read}, status: http.StatusForbidden},
		{name: "write key, admin route", scope: apikey.ScopeAdmin, headers: map[string]string{"Authorization": "Key " + f.write}, status: http.StatusForbidden},
		{name: "read key, read route", scope: apikey.ScopeRead, headers: map[string]string{"Authorization": "Key " + f.read}, status: http.StatusOK, as: "reader"},
		{name: "write key as Bearer", scope: apikey.ScopeWrite, headers: map[string]string{"Authorization": "Bearer " + f.write}, status: http.StatusOK, as: "writer"},
		{name: "admin key, read route", scope: apikey.ScopeRead, headers: map[string]string{"X-API-Key": f.admin}, status: http.StatusOK, as: "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == nil {
				keys = f.db
			}
			var reached *apikey.Key
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k, ok := KeyFrom(r.Context())
				if !ok {
					t.Error("KeyFrom found no key in the request that reached next")
				}
				reached = &k
				w.WriteHeader(http.StatusOK)
			})
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/api/alert", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			RequireKey(logger, keys, tt.scope, next).ServeHTTP(rec, req)

			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			challenge := rec.Header().Get("WWW-Authenticate")
			if want := tt.status == http.StatusUnauthorized; want != (challenge == `Key realm="ferry"`) {
				t.Errorf("WWW-Authenticate = %q on a %d", challenge, rec.Code)
			}
			if tt.status != http.StatusOK {
				if reached != nil {
					t.Errorf("a %d request reached the handler", tt.status)
				}
				var body apiError
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Status != tt.status || body.Error.Message == "" {
					t.Errorf("body %s: want Ferry's error JSON with status %d and a message (%v)", rec.Body, tt.status, err)
				}
				return
			}
			if reached == nil || reached.ID != f.keys[tt.as].ID || reached.Name != tt.as {
				t.Errorf("next saw key %+v, want %s", reached, tt.as)
			}
		})
	}
	for _, secret := range []string{f.read, f.write, f.admin, f.revoked, f.expiring} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("the log holds a secret:\n%s", log.String())
		}
	}
}

// TestRequireKeyStoreDown checks that a store failure is a 500 with a generic message, logged
// without the secret the request presented.
func TestRequireKeyStoreDown(t *testing.T) {
	f := newAuthFixture(t)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h := RequireKey(slog.New(slog.NewTextHandler(&log, nil)), f.db, apikey.ScopeRead,
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the request reached the handler") }))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/alerts", nil)
	req.Header.Set("Authorization", "Key "+f.admin)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if log.Len() == 0 {
		t.Error("the failure was not logged")
	}
	if strings.Contains(log.String()+rec.Body.String(), f.admin) {
		t.Errorf("the secret leaked:\nlog: %s\nbody: %s", log.String(), rec.Body)
	}
}

func TestKeyFromWithoutKey(t *testing.T) {
	if k, ok := KeyFrom(t.Context()); ok {
		t.Errorf("KeyFrom(a context without a key) = %+v, true", k)
	}
}
