package panel_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
)

// errsEnv is a panel over a real store and error tracker, with a viewer, an operator and
// an admin.
type errsEnv struct {
	db  *store.DB
	hub *errtrack.Hub
	url string
}

func newErrsEnv(t *testing.T) *errsEnv {
	t.Helper()
	db := testStore(t)
	hub := errtrack.NewHub(db, errtrack.HubOptions{})
	for name, role := range map[string]auth.Role{"vera": auth.RoleViewer, "otto": auth.RoleOperator, "ada": auth.RoleAdmin} {
		addUser(t, db, name, role)
	}
	srv := serve(t, panel.Options{Auth: testAuth(t, db), Errors: panel.ErrorOptions{Hub: hub},
		Settings: panel.SettingsOptions{Keys: db}})
	return &errsEnv{db: db, hub: hub, url: srv.URL}
}

// project creates a project and returns its ID.
func (e *errsEnv) project(t *testing.T, name string) int64 {
	t.Helper()
	p, _, err := e.db.CreateProject(t.Context(), errtrack.Project{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// ingest stores one event payload and returns the ID of its issue.
func (e *errsEnv) ingest(t *testing.T, projectID int64, event map[string]any) int64 {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.hub.Ingest(t.Context(), projectID, payload, "203.0.113.7", time.Now())
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return o.Issue.ID
}

// errsEvent is an event as sentry-go sends one for a returned error: an exception whose
// stack has frames of the application (in_app) and of the standard library, oldest call
// first, the HTTP request being served, breadcrumbs, tags, contexts and the user.
func errsEvent(value string) map[string]any {
	return map[string]any{
		"event_id":    errsEventID(),
		"timestamp":   time.Now().UTC().Format(time.RFC3339Nano),
		"level":       "error",
		"platform":    "go",
		"release":     "shop@3f2a9c1",
		"environment": "production",
		"server_name": "web-1",
		"sdk":         map[string]any{"name": "sentry.go", "version": "0.30.0"},
		"exception": []any{map[string]any{
			"type":  "*fs.PathError",
			"value": value,
			"stacktrace": map[string]any{"frames": []any{
				map[string]any{"function": "main", "module": "main", "filename": "main.go",
					"abs_path": "/src/shop/main.go", "lineno": 12, "in_app": true},
				map[string]any{"function": "(*conn).serve", "module": "net/http", "filename": "server.go",
					"abs_path": "/usr/local/go/src/net/http/server.go", "lineno": 2092, "in_app": false},
				map[string]any{"function": "checkout", "module": "shop/cart", "filename": "cart/checkout.go",
					"abs_path": "/src/shop/cart/checkout.go", "lineno": 48, "in_app": true,
					"context_line": "\treturn fmt.Errorf(\"open basket: %w\", err)"},
			}},
		}},
		"request": map[string]any{
			"url":    "https://shop.example.com/cart/checkout",
			"method": "POST",
			"headers": map[string]any{
				"Authorization": "Bearer CANARY-auth-7f3e",
				"Cookie":        "session=CANARY-cookie-91ab",
				"User-Agent":    "Mozilla/5.0 (panel test)",
			},
		},
		"breadcrumbs": []any{map[string]any{
			"timestamp": time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano),
			"category":  "http", "level": "info", "message": "GET /api/basket",
			"data": map[string]any{"status_code": 200, "token": "CANARY-crumb-55"},
		}},
		"tags":     map[string]any{"region": "eu-west"},
		"contexts": map[string]any{"runtime": map[string]any{"name": "go", "version": "go1.26.8"}},
		"user":     map[string]any{"id": "42", "email": "kim@example.com"},
	}
}

// errsEventID returns a new event ID, 32 hex digits, as the SDKs make them.
func errsEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errsMessage is a message event, as sentry.CaptureMessage sends one.
func errsMessage(msg, level, env string) map[string]any {
	return map[string]any{"event_id": errsEventID(), "message": msg, "level": level, "platform": "go", "environment": env,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
}

var issueRowRE = regexp.MustCompile(`<tr data-issue="(\d+)">`)

// errsRows returns the issue IDs of a list page's rows, in order.
func errsRows(body string) []int64 {
	var ids []int64
	for _, m := range issueRowRE.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func TestIssueList(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	shop, api := e.project(t, "shop"), e.project(t, "api")
	var shopIssues []int64
	for i := range 60 {
		ev := errsEvent(fmt.Sprintf("open basket-%02d: no such file", i))
		ev["fingerprint"] = []string{fmt.Sprintf("basket-%02d", i)}
		shopIssues = append(shopIssues, e.ingest(t, shop, ev))
	}
	busiest := shopIssues[7]
	for range 2 {
		ev := errsEvent("open basket-07: no such file")
		ev["fingerprint"] = []string{"basket-07"}
		e.ingest(t, shop, ev)
	}
	warning := e.ingest(t, api, errsMessage("slow upstream answer", "warning", "staging"))
	resolved := shopIssues[3]
	if _, err := e.hub.Act(t.Context(), resolved, errtrack.ActionResolve, ""); err != nil {
		t.Fatal(err)
	}
	b := login(t, e.url, "vera")

	status, page1 := b.get("/issues")
	if status != http.StatusOK {
		t.Fatalf("GET /issues = %d: %s", status, page1)
	}
	if !strings.Contains(page1, `id="issues-table"`) || !strings.Contains(page1, `<svg class="spark"`) ||
		!strings.Contains(page1, `class="badge level-error"`) || !strings.Contains(page1, `href="/issues/`+strconv.FormatInt(busiest, 10)+`"`) {
		t.Errorf("list page lacks the table, a sparkline, a level badge or an issue link")
	}
	_, page2 := b.get("/issues?page=2")
	rows1, rows2 := errsRows(page1), errsRows(page2)
	if len(rows1) != 50 || len(rows2) != 10 {
		t.Fatalf("pages have %d and %d rows, want 50 and 10 (60 unresolved issues)", len(rows1), len(rows2))
	}
	seen := map[int64]bool{}
	for _, id := range append(rows1, rows2...) {
		if seen[id] || id == resolved {
			t.Errorf("issue %d listed twice or though resolved", id)
		}
		seen[id] = true
	}
	if !strings.Contains(page1, "page 1 of 2") || !strings.Contains(page2, "page 2 of 2") {
		t.Errorf("pager does not say page 1 of 2 / page 2 of 2")
	}

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"project=" + strconv.FormatInt(api, 10), []int64{warning}},
		{"environment=staging", []int64{warning}},
		{"level=warning", []int64{warning}},
		{"q=BASKET-07", []int64{busiest}},
		{"status=resolved", []int64{resolved}},
		{"status=resolved&project=" + strconv.FormatInt(api, 10), nil},
		{"release=shop%403f2a9c1&q=basket-1", shopIssues[10:20]},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, body := b.get("/issues?" + tc.query)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			got := errsRows(body)
			if diff := cmp.Diff(len(tc.want), len(got)); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
			want := map[int64]bool{}
			for _, id := range tc.want {
				want[id] = true
			}
			for _, id := range got {
				if !want[id] {
					t.Errorf("issue %d listed, want only %v", id, tc.want)
				}
			}
		})
	}

	t.Run("sort=count", func(t *testing.T) {
		_, body := b.get("/issues?sort=count")
		if rows := errsRows(body); len(rows) == 0 || rows[0] != busiest {
			t.Errorf("first row %v, want the issue with 3 events (%d)", rows, busiest)
		}
	})
	t.Run("status=all", func(t *testing.T) {
		_, body := b.get("/issues?status=all&page=2")
		if got := len(errsRows(body)); got != 11 {
			t.Errorf("page 2 of every status has %d rows, want 11 of 61", got)
		}
	})
	t.Run("live part", func(t *testing.T) {
		status, body := b.get("/issues", "X-Ferry-Live", "1")
		if status != http.StatusOK || !strings.Contains(body, `id="issues-table"`) || strings.Contains(body, "<html") {
			t.Errorf("live answer (%d) is not the table alone: %.200s", status, body)
		}
	})
	for _, bad := range []string{"status=closed", "level=loud", "sort=title", "project=shop"} {
		t.Run(bad, func(t *testing.T) {
			if status, _ := b.get("/issues?" + bad); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
		})
	}
}

var (
	frameRE      = regexp.MustCompile(`<li class="frame( in-app)?">`)
	issueStateRE = regexp.MustCompile(`(?s)id="issue-status">(.*?)</dd>`)
)

func TestIssuePage(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	id := e.ingest(t, e.project(t, "shop"), errsEvent("open basket: no such file"))
	b := login(t, e.url, "vera")
	status, body := b.get("/issues/" + strconv.FormatInt(id, 10))
	if status != http.StatusOK {
		t.Fatalf("GET issue = %d: %s", status, body)
	}
	stack := body[strings.Index(body, `id="stacktrace"`):]
	stack = stack[:strings.Index(stack, "</ol>")]
	var inApp []bool
	for _, m := range frameRE.FindAllStringSubmatch(stack, -1) {
		inApp = append(inApp, m[1] != "")
	}
	// Most recent call first: checkout (in app), the server (not), main (in app).
	if diff := cmp.Diff([]bool{true, false, true}, inApp); diff != "" {
		t.Errorf("frames in app (-want +got):\n%s", diff)
	}
	checkout, server, mainAt := strings.Index(stack, "cart/checkout.go:48"), strings.Index(stack, "server.go:2092"), strings.Index(stack, "main.go:12")
	if checkout < 0 || server < checkout || mainAt < server {
		t.Errorf("frames not most recent first: checkout at %d, server at %d, main at %d", checkout, server, mainAt)
	}
	for _, want := range []string{
		"*fs.PathError", "open basket: no such file", "shop/cart in checkout", "open basket: %w",
		`id="breadcrumbs"`, "GET /api/basket", `id="issue-releases"`, "shop@3f2a9c1", "production",
		"Mozilla/5.0 (panel test)", "https://shop.example.com/cart/checkout", "kim@example.com", "eu-west",
		"go1.26.8", `<span class="badge level-error">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("issue page lacks %q", want)
		}
	}
	if m := issueStateRE.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], "unresolved") {
		t.Errorf("issue-status = %v, want unresolved", m)
	}
	if strings.Contains(body, "CANARY") {
		i := strings.Index(body, "CANARY")
		t.Errorf("issue page shows a credential of the event: %q", body[max(0, i-80):i+20])
	}
	if !strings.Contains(body, "[Filtered]") {
		t.Errorf("issue page does not mark the filtered headers")
	}
	if strings.Contains(body, `name="action"`) {
		t.Errorf("a viewer is offered actions")
	}

	for _, path := range []string{"/issues/999", "/issues/nope"} {
		if status, _ := b.get(path); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, status)
		}
	}
}

// TestIssueEscapes sends a message that is HTML: every page shows it as text.
func TestIssueEscapes(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	const evil = `<script>alert("xss")</script>`
	id := e.ingest(t, e.project(t, "shop"), errsMessage(evil, "error", "production"))
	b := login(t, e.url, "vera")
	for _, path := range []string{"/issues", "/issues/" + strconv.FormatInt(id, 10)} {
		_, body := b.get(path)
		if strings.Contains(body, "<script>alert") {
			t.Errorf("%s renders the message as HTML", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(") {
			t.Errorf("%s does not show the message escaped", path)
		}
	}
}

func TestIssueActions(t *testing.T) {
	t.Parallel()
	e := newErrsEnv(t)
	id := e.ingest(t, e.project(t, "shop"), errsEvent("open basket: no such file"))
	path := "/issues/" + strconv.FormatInt(id, 10)
	issueStatus := func() errtrack.Status {
		t.Helper()
		is, err := e.db.GetIssue(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return is.Status
	}

	viewer := login(t, e.url, "vera")
	if status, _ := viewer.post(path+"/action", url.Values{"action": {"resolve"}}); status != http.StatusForbidden {
		t.Errorf("viewer's resolve = %d, want 403", status)
	}
	op := login(t, e.url, "otto")
	for name, token := range map[string]string{"without": "", "with a wrong": "not-the-token"} {
		status, _ := op.post(path+"/action", url.Values{"action": {"resolve"}, "csrf_token": {token}})
		if status != http.StatusForbidden {
			t.Errorf("resolve %s CSRF token = %d, want 403", name, status)
		}
	}
	if got := issueStatus(); got != errtrack.StatusUnresolved {
		t.Fatalf("refused requests changed the issue to %s", got)
	}

	_, body := op.get(path)
	for _, want := range []string{`value="resolve"`, `value="resolve_in_next_release"`, `value="ignore"`} {
		if !strings.Contains(body, want) {
			t.Errorf("unresolved issue page lacks the button %s", want)
		}
	}
	if strings.Contains(body, `value="reopen"`) {
		t.Errorf("unresolved issue page offers reopen")
	}

	status, body := op.post(path+"/action", url.Values{"action": {"resolve"}, "next": {path}})
	if status != http.StatusOK {
		t.Fatalf("resolve = %d: %s", status, body)
	}
	if got := issueStatus(); got != errtrack.StatusResolved {
		t.Errorf("status after resolve = %s, want resolved", got)
	}
	if m := issueStateRE.FindStringSubmatch(body); m == nil || !strings.Contains(m[1], ">resolved<") {
		t.Errorf("page after resolve: issue-status = %v, want resolved", m)
	}
	if !strings.Contains(body, `value="reopen"`) || strings.Contains(body, `value="resolve"`) {
		t.Errorf("resolved issue page should offer reopen and not resolve")
	}
	if status, _ := op.post(path+"/action", url.Values{"action": {"resolve"}}); status != http.StatusConflict {
		t.Errorf("resolving a resolved issue = %d, want 409", status)
	}
	if status, _ := op.post(path+"/action", url.Values{"action": {"delete"}}); status != http.StatusBadRequest {
		t.Errorf("unknown action = %d, want 400", status)
	}
	if status, _ := op.post(path+"/action", url.Values{"action": {"reopen"}}); status != http.StatusOK {
		t.Errorf("reopen = %d, want 200", status)
	}
	if got := issueStatus(); got != errtrack.StatusUnresolved {
		t.Errorf("status after reopen = %s, want unresolved", got)
	}
}
