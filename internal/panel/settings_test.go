package panel_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/webhook"
	"github.com/ferrycd/ferry/internal/notify/webhook/webhooktest"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
)

func TestSettingsAdminOnly(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	for _, name := range []string{"vera", "otto"} {
		b := login(t, e.url, name)
		if status, _ := b.get("/settings"); status != http.StatusForbidden {
			t.Errorf("%s: GET /settings = %d, want 403", name, status)
		}
		for _, path := range []string{"/settings/apikeys", "/settings/projects"} {
			status, _ := b.post(path, url.Values{"name": {"sneaky"}, "scope": {"admin"}})
			if status != http.StatusForbidden {
				t.Errorf("%s: POST %s = %d, want 403", name, path, status)
			}
		}
	}
	keys, err := e.db.ListAPIKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := e.db.ListProjects(t.Context()); err != nil || len(keys) != 0 || len(ps) != 0 {
		t.Errorf("refused requests made %d keys and projects %v (%v)", len(keys), ps, err)
	}
	admin := login(t, e.url, "ada")
	status, body := admin.get("/settings")
	if status != http.StatusOK || !strings.Contains(body, `id="projects"`) || !strings.Contains(body, `id="apikeys"`) {
		t.Errorf("admin: GET /settings = %d without the projects and API key sections", status)
	}
	if strings.Contains(body, `id="channels"`) {
		t.Errorf("settings show channels though the server has no notifier")
	}
	if status, _ := admin.post("/settings/apikeys", url.Values{"name": {"ci"}, "scope": {"write"}, "csrf_token": {""}}); status != http.StatusForbidden {
		t.Errorf("admin: create API key without the CSRF token = %d, want 403", status)
	}
}

var errsNewKeyRE = regexp.MustCompile(`<code class="secret" id="new-apikey">(ferry_[a-z2-7]+)</code>`)

func TestSettingsAPIKeys(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	b := login(t, e.url, "ada")

	form := url.Values{"name": {"ci"}, "scope": {"write"}, "expires_days": {"30"}, "csrf_token": {b.csrf}}
	resp, err := b.c.PostForm(e.url+"/settings/apikeys", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/settings/apikeys" {
		t.Fatalf("create = %d at %s, want 200 answered directly", resp.StatusCode, resp.Request.URL)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	m := errsNewKeyRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the answer does not show the new secret")
	}
	secret := m[1]
	k, err := e.db.AuthenticateAPIKey(t.Context(), apikey.Hash(secret), time.Now())
	if err != nil {
		t.Fatalf("the secret shown is not the key's: %v", err)
	}
	if k.Name != "ci" || !k.Allows(apikey.ScopeWrite) || k.Allows(apikey.ScopeAdmin) || k.ExpiresAt == nil ||
		k.ExpiresAt.Before(time.Now().Add(29*24*time.Hour)) {
		t.Errorf("key = %+v, want ci, write, expiring in 30 days", k)
	}
	if strings.Count(body, secret) != 1 {
		t.Errorf("the answer shows the secret %d times, want once", strings.Count(body, secret))
	}

	_, list := b.get("/settings")
	if strings.Contains(list, secret) || strings.Contains(list, `id="new-apikey"`) {
		t.Errorf("the settings page shows the secret again")
	}
	if !strings.Contains(list, k.Prefix) || !strings.Contains(list, `data-apikey="`+strconv.FormatInt(k.ID, 10)+`"`) {
		t.Errorf("the settings page does not list the key by its prefix")
	}

	status, after := b.post("/settings/apikeys/"+strconv.FormatInt(k.ID, 10)+"/revoke", nil)
	if status != http.StatusOK || !strings.Contains(after, "key-revoked") {
		t.Errorf("revoke = %d, page without a revoked key", status)
	}
	if _, err := e.db.AuthenticateAPIKey(t.Context(), apikey.Hash(secret), time.Now()); err == nil {
		t.Errorf("the revoked key still authenticates")
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"unknown scope", url.Values{"name": {"x"}, "scope": {"root"}}, http.StatusBadRequest},
		{"no name", url.Values{"name": {""}, "scope": {"read"}}, http.StatusBadRequest},
		{"negative expiry", url.Values{"name": {"x"}, "scope": {"read"}, "expires_days": {"-1"}}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _ := b.post("/settings/apikeys", tc.form); status != tc.want {
				t.Errorf("create = %d, want %d", status, tc.want)
			}
		})
	}
	if status, _ := b.post("/settings/apikeys/999/revoke", nil); status != http.StatusNotFound {
		t.Errorf("revoke an unknown key = %d, want 404", status)
	}
}

func TestSettingsProjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		base *url.URL
		// dsn is the DSN of key KEY of project ID, with the test server at HOST.
		dsn string
	}{
		{"request host", nil, "http://KEY@HOST/ID"},
		{"configured base", &url.URL{Scheme: "https", Host: "errors.example.com", Path: "/ingest"},
			"https://KEY@errors.example.com/ingest/ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testStore(t)
			addUser(t, db, "ada", auth.RoleAdmin)
			srv := serve(t, panel.Options{Auth: testAuth(t, db), Errors: panel.ErrorOptions{Hub: errtrack.NewHub(db, errtrack.HubOptions{})},
				Settings: panel.SettingsOptions{DSNBase: tc.base}})
			b := login(t, srv.URL, "ada")

			if status, body := b.post("/settings/projects", url.Values{"name": {"web"}, "rate_limit": {"120"}}); status != http.StatusOK {
				t.Fatalf("create project = %d: %s", status, body)
			}
			p, err := db.GetProject(t.Context(), "web")
			if err != nil || p.RateLimit != 120 {
				t.Fatalf("project = %+v, %v; want web at 120/min", p, err)
			}
			pid := strconv.FormatInt(p.ID, 10)
			dsn := func(k errtrack.ProjectKey) string {
				return strings.NewReplacer("KEY", k.Public, "HOST", strings.TrimPrefix(srv.URL, "http://"), "ID", pid).Replace(tc.dsn)
			}
			status, body := b.post("/settings/projects/"+pid+"/keys", url.Values{"label": {"rotation"}})
			if status != http.StatusOK {
				t.Fatalf("add key = %d: %s", status, body)
			}
			keys, err := db.ProjectKeys(t.Context(), p.ID)
			if err != nil || len(keys) != 2 {
				t.Fatalf("keys = %v, %v; want 2", keys, err)
			}
			for _, k := range keys {
				if !strings.Contains(body, dsn(k)) {
					t.Errorf("settings page lacks DSN %s", dsn(k))
				}
			}

			path := "/settings/projects/" + pid + "/keys/" + strconv.FormatInt(keys[0].ID, 10) + "/revoke"
			if status, body = b.post(path, nil); status != http.StatusOK {
				t.Fatalf("revoke key = %d: %s", status, body)
			}
			if strings.Contains(body, dsn(keys[0])) || !strings.Contains(body, dsn(keys[1])) || !strings.Contains(body, "1 revoked") {
				t.Errorf("after revoking key %d the page should show only the other DSN and 1 revoked", keys[0].ID)
			}
			if _, err := db.AuthenticateProjectKey(t.Context(), p.ID, keys[0].Public); err == nil {
				t.Errorf("the revoked DSN key still authenticates")
			}

			if status, _ := b.post("/settings/projects", url.Values{"name": {"web"}}); status != http.StatusConflict {
				t.Errorf("a second project web = %d, want 409", status)
			}
			if status, _ := b.post("/settings/projects", url.Values{"name": {"Not A Name"}}); status != http.StatusBadRequest {
				t.Errorf("a bad project name = %d, want 400", status)
			}
			if status, _ := b.post("/settings/projects/999/keys", nil); status != http.StatusNotFound {
				t.Errorf("a key for an unknown project = %d, want 404", status)
			}
		})
	}
}

// TestSettingsChannels sends test messages through a real outbox worker to two generic
// webhooks: one that accepts Ferry's signature, one that refuses it. The page lists names
// and types only, and the failure it reports never shows the webhook URL.
func TestSettingsChannels(t *testing.T) {
	t.Parallel()
	db := testStore(t)
	addUser(t, db, "ada", auth.RoleAdmin)
	const hookToken = "CANARY-hook-token-6d1f"
	good := webhooktest.NewSink(t, "shared-secret")
	bad := webhooktest.NewSink(t, "another-secret")
	var channels []*notify.Channel
	for name, hook := range map[string]string{"ops": good.URL + "?token=" + hookToken, "broken": bad.URL + "?token=" + hookToken} {
		rcv, err := webhook.New(webhook.Config{}, notify.StaticSecret(hook), notify.StaticSecret("shared-secret"), nil)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := notify.NewTemplates(notify.FormatPlain, nil)
		if err != nil {
			t.Fatal(err)
		}
		channels = append(channels, &notify.Channel{Name: name, Type: "webhook", Receiver: rcv, Templates: tmpl})
	}
	hub := errsNotifyHub(t, db, channels)
	srv := serve(t, panel.Options{Auth: testAuth(t, db), Settings: panel.SettingsOptions{Notify: hub, Keys: db}})
	b := login(t, srv.URL, "ada")

	status, body := b.get("/settings")
	if status != http.StatusOK || !strings.Contains(body, `id="channels"`) ||
		!strings.Contains(body, `data-channel="ops"`) || !strings.Contains(body, `data-channel="broken"`) {
		t.Fatalf("settings = %d without both channels", status)
	}
	if strings.Contains(body, hookToken) || strings.Contains(body, good.URL) {
		t.Errorf("the settings page shows a channel's webhook URL")
	}

	status, body = b.post("/settings/channels/test", url.Values{"channel": {"ops"}})
	if status != http.StatusOK || !strings.Contains(body, `class="flash ok"`) || !strings.Contains(body, "Test message sent to ops") {
		t.Errorf("test ops = %d, want a sent flash: %s", status, errsFlash(body))
	}
	if got := good.Types(); len(got) != 1 || got[0] != notify.EventTest {
		t.Errorf("ops received %v, want one %s", got, notify.EventTest)
	}

	status, body = b.post("/settings/channels/test", url.Values{"channel": {"broken"}})
	if status != http.StatusOK || !strings.Contains(body, `class="flash error"`) || !strings.Contains(body, "failed") {
		t.Errorf("test broken = %d, want a failed flash: %s", status, errsFlash(body))
	}
	if !strings.Contains(errsFlash(body), "HTTP 401") {
		t.Errorf("the failure does not say what the webhook answered: %s", errsFlash(body))
	}
	if strings.Contains(body, hookToken) || strings.Contains(body, bad.URL) {
		t.Errorf("the failure shows the webhook URL: %s", errsFlash(body))
	}

	if status, _ := b.post("/settings/channels/test", url.Values{"channel": {"nobody"}}); status != http.StatusNotFound {
		t.Errorf("test an unknown channel = %d, want 404", status)
	}
	// The flash comes from the query, which anyone can write: only known channels and
	// statuses are shown.
	_, body = b.get("/settings?tested=%3Cb%3Eevil%3C%2Fb%3E&result=sent")
	if strings.Contains(body, "evil") {
		t.Errorf("the page reports a test of a channel that does not exist")
	}
}

// errsNotifyHub is a notifier over db's outbox with the channels, its worker running until
// the test ends.
func errsNotifyHub(t *testing.T, db *store.DB, channels []*notify.Channel) *notify.Hub {
	t.Helper()
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = c.Name
	}
	router, err := notify.NewRouter(names, nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := notify.NewWorker(db, channels, notify.WorkerOptions{Owner: "panel-test"})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("notify worker: %v", err)
		}
	})
	return notify.NewHub(router, worker, db, channels, "")
}

var errsFlashRE = regexp.MustCompile(`(?s)<p class="flash[^>]*>.*?</p>`)

// errsFlash returns the flash of a settings page, for a failure message.
func errsFlash(body string) string { return errsFlashRE.FindString(body) }
