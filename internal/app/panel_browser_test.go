package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/getsentry/sentry-go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/testenv"
)

const (
	panelAdminPassword  = "admin password for the browser"
	panelViewerPassword = "viewer password for the browser"
)

// shopManifests is the sample application's git content: a Deployment, which the fake node
// runs and which takes Ferry's SENTRY_* variables, and a ConfigMap each commit changes.
func shopManifests(version string) map[string]string {
	return map[string]string{
		"deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\ndata:\n  version: " + version + "\n",
		"deploy/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: web
        image: registry.example/shop:1
`,
	}
}

// panelEnv is ferry server with delivery on the test control plane, an admin whose password
// the test knows, a viewer, API keys, and one Application deployed from a git server.
type panelEnv struct {
	a     *App
	url   string
	c     client.Client
	git   *testenv.GitServer
	ns    string
	first string
	// write and admin are API keys of those scopes.
	write, admin string
}

func newPanelEnv(t *testing.T) *panelEnv {
	t.Helper()
	e := &panelEnv{git: testenv.NewGitServer(t, testenv.GitServerOptions{})}
	e.git.CreateRepo(t, "shop")
	e.first = e.git.Commit(t, "shop", "main", shopManifests("one"), "shop: first version")

	pwFile := filepath.Join(t.TempDir(), "admin-password")
	if err := os.WriteFile(pwFile, []byte(panelAdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.a, e.url, _ = launchApp(t, func(c *config.Config) { c.Panel.AdminPasswordFile = pwFile })
	db := e.a.Store()
	hash, err := auth.HashPassword(panelViewerPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(t.Context(), "vera", auth.RoleViewer, hash); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		dst   *string
		scope apikey.Scope
	}{{&e.write, apikey.ScopeWrite}, {&e.admin, apikey.ScopeAdmin}} {
		secret, hash, prefix := apikey.Generate()
		if _, err := db.CreateAPIKey(t.Context(), "browser-"+string(k.scope), []apikey.Scope{k.scope}, hash, prefix, nil); err != nil {
			t.Fatal(err)
		}
		*k.dst = secret
	}

	scheme, err := delivery.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if e.c, err = client.New(plane.Config, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	e.ns = "panel-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := e.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}); err != nil {
		t.Fatal(err)
	}
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: e.ns},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: e.git.URL("shop"), Revision: "main", Path: "deploy"},
			Destination: v1alpha1.Destination{Namespace: e.ns},
			Environment: "production",
			// Only the panel's Sync button makes it look at git again within the test.
			SyncPolicy: v1alpha1.SyncPolicy{Automated: true, Interval: &metav1.Duration{Duration: time.Hour}},
		},
	}
	// The server installs the CRD as it starts; wait until Applications can be created.
	testenv.Eventually(t, "the Application is created", func() bool { return e.c.Create(t.Context(), app.DeepCopy()) == nil })
	return e
}

// app reads the Application from the API server.
func (e *panelEnv) app(t *testing.T) *v1alpha1.Application {
	t.Helper()
	var app v1alpha1.Application
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "shop"}, &app); err != nil {
		t.Fatal(err)
	}
	return &app
}

// waitDeployed waits until the Application is synced and healthy at revision.
func (e *panelEnv) waitDeployed(t *testing.T, revision string) {
	t.Helper()
	testenv.Eventually(t, "shop synced and healthy at "+revision, func() bool {
		s := e.app(t).Status
		return s.Sync.Revision == revision && s.Sync.Status == v1alpha1.SyncSynced && s.Health.Status == v1alpha1.HealthHealthy
	})
}

// sentryEnv returns the SENTRY_RELEASE and SENTRY_ENVIRONMENT that delivery put into the
// shop Deployment's container: what the application's SDK reports with.
func (e *panelEnv) sentryEnv(t *testing.T) (release, environment string) {
	t.Helper()
	var dep appsv1.Deployment
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "shop"}, &dep); err != nil {
		t.Fatal(err)
	}
	for _, v := range dep.Spec.Template.Spec.Containers[0].Env {
		switch v.Name {
		case errtrack.EnvRelease:
			release = v.Value
		case errtrack.EnvEnvironment:
			environment = v.Value
		}
	}
	return release, environment
}

// TestPanelBrowser drives the web panel in a headless Chromium, as people use it, against
// ferry server deploying a real Application: log in; see the app Healthy and Synced, on a
// laptop and on a phone; press Sync and watch the new commit arrive on the open page without
// a reload; see an alert and an error of the app's release appear live on the incident board
// and the issue list, acknowledge the alert, read the error's stack and resolve it; find both
// on the release's timeline; and check that a viewer is offered no action and that the
// server refuses the sync a viewer forges. Every page visited is saved as a screenshot in
// testdata/screenshots, one of them in dark mode.
//
// The subtests share the server and the browser and run in order; each needs what the
// ones before it made.
func TestPanelBrowser(t *testing.T) {
	bin := chromium(t)
	e := newPanelEnv(t)
	browser := newBrowser(t, bin)
	admin := newUserTab(t, browser, e.url)
	appPath := "/apps/" + e.ns + "/shop"
	row := fmt.Sprintf(`tr[data-app=%s]`, js(e.ns+"/shop"))
	var second, alertID, issueID string

	if !t.Run("login", func(t *testing.T) {
		admin.open(t, "/apps", "#login-name")
		if loc := admin.location(); !strings.HasPrefix(loc, e.url+"/login?next=") {
			t.Errorf("a page without a session led to %s, want the login page with next", loc)
		}
		admin.screenshot(t, "login")

		admin.do(t, "type a wrong password", chromedp.SetValue(chromedp.CSS("#login-name"), "admin"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), "not the admin password"))
		admin.submit(t, "#login-submit", "#login-error")
		if got := eval[string](t, admin, `location.pathname`); got != "/login" {
			t.Errorf("after a wrong password the page is %s, want /login", got)
		}
		if got := admin.text(t, "#login-error"); got == "" {
			t.Error("#login-error is empty, want why the login failed")
		}
		if n := admin.count(t, "#current-user"); n != 0 {
			t.Error("#current-user shown after a wrong password")
		}

		admin.do(t, "type the password", chromedp.SetValue(chromedp.CSS("#login-name"), "admin"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), panelAdminPassword))
		admin.submit(t, "#login-submit", "#current-user")
		if got := eval[string](t, admin, `location.pathname`); got != "/apps" {
			t.Errorf("after logging in the page is %s, want /apps (the next parameter)", got)
		}
		if got := admin.text(t, "#current-user"); !strings.Contains(got, "admin") {
			t.Errorf("#current-user = %q, want admin", got)
		}
	}) {
		return
	}

	if !t.Run("apps", func(t *testing.T) {
		e.waitDeployed(t, e.first)
		admin.open(t, "/apps", "#apps-table")
		admin.waitText(t, row+" td.health", "Healthy")
		admin.waitText(t, row+" td.sync", "Synced")
		if got := admin.text(t, row); !strings.Contains(got, e.first[:7]) {
			t.Errorf("row %s = %q, want the revision %s", e.ns+"/shop", got, e.first[:7])
		}
		admin.screenshot(t, "apps")

		// A phone shows the list as cards, in the width of its screen.
		phone := admin.newTab(t)
		phone.do(t, "emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
		phone.open(t, "/apps", row)
		if eval[bool](t, phone, `getComputedStyle(document.querySelector("#apps-table thead")).display !== "none"`) {
			t.Error("at 390 px the apps table keeps its header row, want the phone layout")
		}
		if w := eval[[]int](t, phone, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			t.Errorf("at 390 px the apps page is %d px wide, wider than the %d px screen", w[0], w[1])
		}
		phone.screenshot(t, "apps-phone")
	}) {
		return
	}

	if !t.Run("sync", func(t *testing.T) {
		admin.open(t, appPath, "#sync")
		if got := admin.text(t, "#app-revision"); got != e.first {
			t.Fatalf("#app-revision = %q, want %s", got, e.first)
		}
		second = e.git.Commit(t, "shop", "main", shopManifests("two"), "shop: second version")
		// Git answers nothing until the page is marked, so the new commit can only reach
		// the page after that, by its live update.
		release := e.git.Hold()
		defer release()
		admin.submit(t, "#sync", "#app-revision")
		if got := admin.text(t, "#app-revision"); got != e.first {
			t.Fatalf("#app-revision = %q right after Sync with git held, want still %s", got, e.first)
		}
		admin.markPage(t)
		release()
		admin.waitText(t, "#app-revision", second)
		admin.checkNotReloaded(t, "the new revision came")
		admin.waitText(t, "#app-sync", "Synced")
		admin.waitText(t, "#app-health", "Healthy")
		admin.waitPresent(t, fmt.Sprintf(`#history code[title=%s]`, js(second)))
		admin.waitPresent(t, `#releases a[href^="/releases/"]`)
		if got := admin.text(t, "#objects"); !strings.Contains(got, "Deployment") || !strings.Contains(got, "Pod") {
			t.Errorf("#objects = %q, want the Deployment with its Pod", got)
		}
		admin.checkNotReloaded(t, "the sync finished")
		admin.screenshot(t, "app")
	}) {
		return
	}

	t.Run("incidents", func(t *testing.T) {
		admin.open(t, "/incidents", "#alerts-table")
		admin.markPage(t)
		status, out := apiCall(t, e.url, http.MethodPost, "/api/alert", e.write, map[string]any{
			"resource": "shop-web", "event": "HighLatency", "environment": "production", "severity": "major",
			"service": []string{"shop"}, "text": "p99 latency above 2 s", "tags": []string{"app=shop"}})
		if status != http.StatusCreated {
			t.Fatalf("post alert: %d %v", status, out)
		}
		alertID, _ = out["id"].(string)
		alertRow := fmt.Sprintf(`tr[data-alert=%s]`, js(alertID))
		admin.waitPresent(t, alertRow)
		admin.checkNotReloaded(t, "the new alert came")
		admin.waitText(t, alertRow, "HighLatency")
		admin.waitText(t, alertRow+" td.status", "open")
		admin.screenshot(t, "incidents")

		admin.submit(t, alertRow+` button[name=action][value=ack]`, "#alerts-table")
		admin.waitText(t, alertRow+" td.status", "ack")

		admin.open(t, "/alerts/"+alertID, "#alert-status")
		admin.waitText(t, "#alert-status", "ack")
		admin.waitText(t, "#alert-history", "ack")
		admin.screenshot(t, "alert")

		// The board in a browser set to dark mode.
		dark := admin.newTab(t)
		dark.emulateDark(t)
		dark.open(t, "/incidents", alertRow)
		if !eval[bool](t, dark, `matchMedia("(prefers-color-scheme: dark)").matches`) {
			t.Error("prefers-color-scheme: dark does not match in the emulating tab")
		}
		light := eval[string](t, admin, `getComputedStyle(document.body).backgroundColor`)
		if got := eval[string](t, dark, `getComputedStyle(document.body).backgroundColor`); got == light {
			t.Errorf("dark mode background = %s, the same as light mode's", got)
		}
		dark.screenshot(t, "incidents-dark")
	})

	t.Run("issues", func(t *testing.T) {
		status, out := apiCall(t, e.url, http.MethodPost, "/api/v1/projects", e.admin, map[string]any{"name": "shop"})
		if status != http.StatusCreated {
			t.Fatalf("create project: %d %v", status, out)
		}
		dsn, _ := out["keys"].([]any)[0].(map[string]any)["dsn"].(string)
		rel, env := e.sentryEnv(t)
		if want := errtrack.ReleaseName("shop", second); rel != want || env != "production" {
			t.Fatalf("the Deployment's SENTRY_RELEASE=%q SENTRY_ENVIRONMENT=%q, want %s and production", rel, env, want)
		}

		admin.open(t, "/issues", "#issues-table")
		admin.markPage(t)
		sc, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Release: rel, Environment: env,
			Transport: sentry.NewHTTPSyncTransport()})
		if err != nil {
			t.Fatal(err)
		}
		chargeCard(sentry.NewHub(sc, sentry.NewScope()), 4242)
		admin.waitPresent(t, "#issues-table tr[data-issue]")
		admin.checkNotReloaded(t, "the new issue came")
		issueID = eval[string](t, admin, `document.querySelector("#issues-table tr[data-issue]").dataset.issue`)
		admin.waitText(t, `#issues-table tr[data-issue]`, "card declined")
		admin.screenshot(t, "issues")

		admin.submit(t, fmt.Sprintf(`#issues-table tr[data-issue=%s] a[href=%s]`, js(issueID), js("/issues/"+issueID)), "#stacktrace")
		if got := admin.text(t, "#stacktrace li.frame.in-app"); !strings.Contains(got, "chargeCard") {
			t.Errorf("first in-app frame = %q, want chargeCard", got)
		}
		admin.waitText(t, "#breadcrumbs", "charging order 4242")
		admin.waitTextStarts(t, "#issue-status", "unresolved")
		admin.screenshot(t, "issue")

		admin.submit(t, "button[name=action][value=resolve]", "#issue-status")
		admin.waitTextStarts(t, "#issue-status", "resolved")
	})

	t.Run("timeline", func(t *testing.T) {
		admin.open(t, appPath, "#releases")
		href := eval[string](t, admin, fmt.Sprintf(`(() => { const a = [...document.querySelectorAll('#releases a[href^="/releases/"]')]
			.find(a => a.textContent.includes(%s)); return a ? a.getAttribute("href") : ""; })()`, js(second[:7])))
		if href == "" {
			t.Fatalf("#releases has no link to the release of %s: %s", second[:7], admin.text(t, "#releases"))
		}
		admin.submit(t, fmt.Sprintf(`#releases a[href=%s]`, js(href)), "#timeline")
		admin.waitText(t, "#release-result", "succeeded")
		for _, sel := range []string{"li.k-deploy", "li.k-alert", "li.k-error"} {
			if admin.count(t, "#timeline "+sel) == 0 {
				t.Errorf("the timeline has no %s: %s", sel, admin.text(t, "#timeline"))
			}
		}
		for _, sel := range []string{
			fmt.Sprintf(`li.k-alert a[href=%s]`, js("/alerts/"+alertID)),
			fmt.Sprintf(`li.k-error a[href=%s]`, js("/issues/"+issueID)),
		} {
			if admin.count(t, "#timeline "+sel) == 0 {
				t.Errorf("the timeline has no %s", sel)
			}
		}
		admin.screenshot(t, "timeline")
	})

	t.Run("settings", func(t *testing.T) {
		admin.open(t, "/settings", "#channels")
		admin.waitPresent(t, "#projects")
		admin.waitText(t, "#projects", "shop")
		admin.waitText(t, "#apikeys", "browser-write")
		admin.screenshot(t, "settings")
	})

	t.Run("viewer", func(t *testing.T) {
		viewer := newUserTab(t, browser, e.url)
		viewer.open(t, "/login", "#login-name")
		viewer.do(t, "log in as the viewer", chromedp.SetValue(chromedp.CSS("#login-name"), "vera"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), panelViewerPassword))
		viewer.submit(t, "#login-submit", "#current-user")
		if got := viewer.text(t, "#current-user"); !strings.Contains(got, "vera") || !strings.Contains(got, "viewer") {
			t.Errorf("#current-user = %q, want vera (viewer)", got)
		}

		viewer.open(t, appPath, "#app-sync")
		if n := viewer.count(t, "#sync"); n != 0 {
			t.Error("a viewer is shown the Sync button")
		}
		before := e.app(t).Annotations[v1alpha1.AnnotationSyncRequested]
		if got := viewer.fetchStatus(t, http.MethodPost, appPath+"/sync"); got != http.StatusForbidden {
			t.Errorf("the viewer's POST %s/sync with the page's CSRF token = %d, want 403", appPath, got)
		}
		if after := e.app(t).Annotations[v1alpha1.AnnotationSyncRequested]; after != before {
			t.Errorf("the viewer's refused sync changed the sync request annotation from %q to %q", before, after)
		}
		if got := viewer.fetchStatus(t, http.MethodGet, "/settings"); got != http.StatusForbidden {
			t.Errorf("the viewer's GET /settings = %d, want 403", got)
		}
		alertRow := fmt.Sprintf(`tr[data-alert=%s]`, js(alertID))
		viewer.open(t, "/incidents", alertRow)
		if n := viewer.count(t, alertRow+" button[name=action]"); n != 0 {
			t.Errorf("a viewer is shown %d alert action buttons on the board", n)
		}

		viewer.submit(t, "#logout", "#login-name")
		viewer.open(t, appPath, "#login-name")
	})
}
