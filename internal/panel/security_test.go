package panel_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/channel"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
)

// The canaries are secrets planted where a careless page would show them.
const (
	canaryWebhook = "CANARY-WEBHOOK-7f3a91"
	canaryHMAC    = "CANARY-HMAC-52c0d8"
)

// securePanel builds the panel with every section that needs no cluster, over a real store,
// with a webhook channel whose URL and HMAC secret are canaries, and apps when set.
func securePanel(t *testing.T, apps panel.Apps) (*panel.Panel, *httptest.Server, *store.DB) {
	t.Helper()
	db := testStore(t)
	for name, role := range map[string]auth.Role{"admin": auth.RoleAdmin, "op": auth.RoleOperator, "viewer": auth.RoleViewer} {
		addUser(t, db, name, role)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	channels, err := channel.Build([]channel.Config{{Name: "ops", Webhook: &channel.Webhook{
		Hook:       channel.Hook{URL: receiver.URL + "/" + canaryWebhook},
		HMACSecret: canaryHMAC,
	}}}, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := notify.NewRouter([]string{"ops"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := notify.NewWorker(db, channels, notify.WorkerOptions{})
	go func() { _ = worker.Run(t.Context()) }()
	hub := notify.NewHub(router, worker, db, channels, "")
	ih := incident.NewHub(db, incident.HubOptions{Rules: incident.Rules{Identity: incident.DefaultIdentity()}})
	eh := errtrack.NewHub(db, errtrack.HubOptions{})
	p, err := panel.New(panel.Options{Auth: testAuth(t, db), Apps: apps, Releases: db, Live: panel.NewBroker(),
		Incidents: panel.IncidentOptions{Hub: ih, Heartbeats: db, Blackouts: db},
		Errors:    panel.ErrorOptions{Hub: eh},
		Settings:  panel.SettingsOptions{Notify: hub, Keys: db}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv, db
}

// tripwire registers the Application routes without a cluster: every refusal happens before
// a handler runs, so any call into it is a failure, except the empty list the home page
// shows after login.
type tripwire struct{ t *testing.T }

func (w tripwire) ran(what string) error {
	w.t.Errorf("an application handler ran (%s) for a request that should have been refused", what)
	return errors.New("tripwire")
}

func (tripwire) List(context.Context) ([]v1alpha1.Application, error) { return nil, nil }
func (w tripwire) Get(context.Context, string, string) (*v1alpha1.Application, error) {
	return nil, w.ran("get")
}
func (w tripwire) Patch(context.Context, string, string, map[string]any) error { return w.ran("patch") }
func (w tripwire) Objects(context.Context, *v1alpha1.Application) ([]panel.Object, error) {
	return nil, w.ran("objects")
}
func (w tripwire) Diff(context.Context, *v1alpha1.Application) (string, []delivery.ObjectDiff, error) {
	return "", nil, w.ran("diff")
}

var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// stateChanges lists the panel's POST routes with their wildcards filled in; the refusals
// happen before any handler reads them.
func stateChanges(t *testing.T, p *panel.Panel) []string {
	t.Helper()
	var paths []string
	for _, pattern := range panel.Patterns(p) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || method != http.MethodPost || path == "/login" {
			continue
		}
		paths = append(paths, wildcard.ReplaceAllString(path, "1"))
	}
	if len(paths) < 10 {
		t.Fatalf("only %d state-changing routes registered: %v", len(paths), paths)
	}
	return paths
}

// TestStateChangesRefused walks every state-changing route of the panel: each refuses a
// request without a session (401), without the session's CSRF token or with a wrong one
// (403), from another site (403), and from a viewer with a valid token (403), except
// logging out.
func TestStateChangesRefused(t *testing.T) {
	p, srv, _ := securePanel(t, tripwire{t})
	admin := login(t, srv.URL, "admin")
	viewer := login(t, srv.URL, "viewer")
	noRedirect := func(c *http.Client) *http.Client {
		cc := *c
		cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return &cc
	}
	post := func(c *http.Client, path string, form url.Values, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := noRedirect(c).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	anonymous, _ := cookiejar.New(nil)
	for _, path := range stateChanges(t, p) {
		if got := post(&http.Client{Jar: anonymous}, path, url.Values{}); got != http.StatusUnauthorized {
			t.Errorf("POST %s without a session = %d, want 401", path, got)
		}
		if got := post(admin.c, path, url.Values{}); got != http.StatusForbidden {
			t.Errorf("POST %s without a CSRF token = %d, want 403", path, got)
		}
		if got := post(admin.c, path, url.Values{"csrf_token": {viewer.csrf}}); got != http.StatusForbidden {
			t.Errorf("POST %s with another session's CSRF token = %d, want 403", path, got)
		}
		if got := post(admin.c, path, url.Values{"csrf_token": {admin.csrf}}, "Sec-Fetch-Site", "cross-site"); got != http.StatusForbidden {
			t.Errorf("POST %s from another site = %d, want 403", path, got)
		}
		if path == "/logout" {
			continue
		}
		if got := post(viewer.c, path, url.Values{"csrf_token": {viewer.csrf}}); got != http.StatusForbidden {
			t.Errorf("POST %s as a viewer = %d, want 403", path, got)
		}
	}
	// The pages themselves need a login: a browser is sent to it and comes back after.
	resp, err := noRedirect(&http.Client{Jar: anonymous}).Get(srv.URL + "/incidents?status=open")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Fincidents%3Fstatus%3Dopen" {
		t.Errorf("GET /incidents without a session = %d to %q, want 303 to the login page", resp.StatusCode, loc)
	}
}

// TestNoSecretInPages renders every page an admin can open, with a channel whose URL and
// HMAC secret are canaries and an API key just created, and finds neither the canaries
// nor the key's secret in any of them; nor in the answer to a redirect.
func TestNoSecretInPages(t *testing.T) {
	p, srv, _ := securePanel(t, nil)
	admin := login(t, srv.URL, "admin")
	code, body := admin.post("/settings/apikeys", url.Values{"name": {"ci"}, "scope": {"read"}})
	secret := regexp.MustCompile(`<code class="secret" id="new-apikey">([^<]+)</code>`).FindStringSubmatch(body)
	if code != http.StatusOK || secret == nil {
		t.Fatalf("create API key = %d, no secret shown once:\n%s", code, body)
	}
	pages := []string{"/settings", "/incidents", "/heartbeats", "/issues", "/settings?tested=ops&result=failed"}
	for _, pattern := range panel.Patterns(p) {
		if method, path, _ := strings.Cut(pattern, " "); method == http.MethodGet && !strings.Contains(path, "{") &&
			path != "/events" && path != "/static/" && path != "/" {
			pages = append(pages, path)
		}
	}
	for _, path := range pages {
		_, body := admin.get(path)
		for _, canary := range []string{canaryWebhook, canaryHMAC, secret[1]} {
			if strings.Contains(body, canary) {
				t.Errorf("GET %s shows a secret (%.12s…)", path, canary)
			}
		}
	}
	// Nor does the answer to a test message through the channel.
	_, body = admin.post("/settings/channels/test", url.Values{"channel": {"ops"}})
	if strings.Contains(body, canaryWebhook) || strings.Contains(body, canaryHMAC) {
		t.Errorf("the channel test's answer shows the channel's secret")
	}
}

// TestLoginBrake refuses a name after five wrong passwords, even the right one then, with
// 429 and Retry-After, and leaves other names alone.
func TestLoginBrake(t *testing.T) {
	_, srv, _ := securePanel(t, nil)
	// post logs in and returns the status and Retry-After.
	post := func(name, pw string) (int, string) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/login", url.Values{"name": {name}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 5 {
		if status, _ := post("op", "wrong password "+strconv.Itoa(i)); status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d = %d, want 401", i+1, status)
		}
	}
	if status, retry := post("OP", testPassword); status != http.StatusTooManyRequests || retry == "" {
		t.Errorf("right password after 5 failures = %d (Retry-After %q), want 429 with Retry-After", status, retry)
	}
	login(t, srv.URL, "viewer") // another name still logs in
}
