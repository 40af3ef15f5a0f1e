package panel_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// incidentFixture is a panel over a real SQLite store and incident hub, with an operator
// (olga), a viewer (vera) and an admin (ada).
type incidentFixture struct {
	db  *store.DB
	hub *incident.Hub
	url string
}

// newIncidentFixture serves the panel; with stores, the store is also its heartbeat and
// blackout store.
func newIncidentFixture(t *testing.T, stores bool) incidentFixture {
	t.Helper()
	db := testStore(t)
	hub := incident.NewHub(db, incident.HubOptions{Rules: incident.Rules{Identity: incident.DefaultIdentity()}})
	opts := panel.IncidentOptions{Hub: hub}
	if stores {
		opts.Heartbeats, opts.Blackouts = db, db
	}
	addUser(t, db, "olga", auth.RoleOperator)
	addUser(t, db, "vera", auth.RoleViewer)
	addUser(t, db, "ada", auth.RoleAdmin)
	srv := serve(t, panel.Options{Auth: testAuth(t, db), Incidents: opts})
	return incidentFixture{db: db, hub: hub, url: srv.URL}
}

// incidentReceive receives a through the hub and returns it as stored.
func incidentReceive(t *testing.T, hub *incident.Hub, a incident.Alert) incident.Alert {
	t.Helper()
	if a.Severity == "" {
		a.Severity = incident.SeverityMajor
	}
	o, err := hub.Receive(t.Context(), a)
	if err != nil {
		t.Fatalf("receive %s/%s: %v", a.Resource, a.Event, err)
	}
	return o.Alert
}

// incidentStored returns the stored alert id.
func incidentStored(t *testing.T, hub *incident.Hub, id string) incident.Alert {
	t.Helper()
	a, err := hub.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// incidentRow is one row of the board as the page shows it.
type incidentRow struct {
	ID, Severity, Status string
	Actions              []string
}

var (
	incidentRowRE    = regexp.MustCompile(`(?s)<tr data-alert="([^"]*)" class="sev-row-([^"]*)">(.*?)</tr>`)
	incidentStatusRE = regexp.MustCompile(`<td class="status"><span class="badge status-([^"]*)">`)
	incidentActionRE = regexp.MustCompile(`<button [^>]*name="action" value="([^"]*)"`)
)

// incidentRows reads the board's rows from a page.
func incidentRows(t *testing.T, body string) []incidentRow {
	t.Helper()
	var rows []incidentRow
	for _, m := range incidentRowRE.FindAllStringSubmatch(body, -1) {
		r := incidentRow{ID: m[1], Severity: m[2]}
		if s := incidentStatusRE.FindStringSubmatch(m[3]); s != nil {
			r.Status = s[1]
		}
		for _, a := range incidentActionRE.FindAllStringSubmatch(m[3], -1) {
			r.Actions = append(r.Actions, a[1])
		}
		rows = append(rows, r)
	}
	return rows
}

// incidentGet fetches a page, failing the test unless it answers want.
func incidentGet(t *testing.T, b *browser, path string, want int) string {
	t.Helper()
	status, body := b.get(path)
	if status != want {
		t.Fatalf("GET %s: status %d, want %d\n%s", path, status, want, body)
	}
	return body
}

func TestIncidentBoardFiltersSortsAndPages(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	var ids []string
	for i := range 120 {
		a := incident.Alert{Resource: fmt.Sprintf("host-%03d", i), Event: "DiskFull", Environment: "prod",
			Service: []string{"db"}, Severity: incident.SeverityMinor, Text: fmt.Sprintf("disk %d full", i)}
		if i >= 90 {
			a.Environment, a.Service = "staging", []string{"web"}
		}
		switch i {
		case 7:
			a.Severity, a.Text = incident.SeverityCritical, "needle in the haystack"
		case 8:
			a.Severity = incident.SeverityWarning
		}
		ids = append(ids, incidentReceive(t, f.hub, a).ID)
	}
	// host-005 repeats twice: the most duplicates. host-010 is closed: off the default board.
	for range 2 {
		incidentReceive(t, f.hub, incident.Alert{Resource: "host-005", Event: "DiskFull", Environment: "prod",
			Service: []string{"db"}, Severity: incident.SeverityMinor, Text: "disk 5 full"})
	}
	if _, err := f.hub.Action(t.Context(), ids[10], incident.ActionClose, "", "test", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.hub.Action(t.Context(), ids[11], incident.ActionAck, "", "test", 0); err != nil {
		t.Fatal(err)
	}
	b := login(t, f.url, "vera")

	t.Run("pages", func(t *testing.T) {
		seen := map[string]bool{}
		for page, want := range []int{50, 50, 19} {
			rows := incidentRows(t, incidentGet(t, b, "/incidents?page="+strconv.Itoa(page+1), http.StatusOK))
			if len(rows) != want {
				t.Fatalf("page %d: %d rows, want %d", page+1, len(rows), want)
			}
			for _, r := range rows {
				if seen[r.ID] {
					t.Errorf("alert %s on two pages", r.ID)
				}
				seen[r.ID] = true
			}
		}
		if len(seen) != 119 {
			t.Errorf("the pages show %d alerts, want 119 (120 less the closed one)", len(seen))
		}
		if seen[ids[10]] {
			t.Errorf("the closed alert is on the default board")
		}
	})

	tests := []struct {
		query string
		want  int
		// first is the ID of the first row, when it matters.
		first string
	}{
		{query: "", want: 50, first: ids[5]}, // newest repeat first
		{query: "environment=staging", want: 30},
		{query: "environment=staging&service=web&page=1", want: 30},
		{query: "environment=prod&service=web", want: 0},
		{query: "environment=&service=&q=&severity=", want: 50},
		{query: "severity=critical", want: 1, first: ids[7]},
		{query: "q=NEEDLE", want: 1, first: ids[7]},
		{query: "sort=severity", want: 50, first: ids[7]},
		{query: "sort=duplicateCount", want: 50, first: ids[5]},
		{query: "status=closed", want: 1, first: ids[10]},
		{query: "status=ack", want: 1, first: ids[11]},
		{query: "status=closed&status=ack", want: 2},
		{query: "status=any&environment=prod&page=2", want: 40},
		{query: "environment=prod&page=2", want: 39},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rows := incidentRows(t, incidentGet(t, b, "/incidents?"+tt.query, http.StatusOK))
			if len(rows) != tt.want {
				t.Fatalf("%d rows, want %d", len(rows), tt.want)
			}
			if tt.first != "" && rows[0].ID != tt.first {
				t.Errorf("first row %s, want %s", rows[0].ID, tt.first)
			}
		})
	}

	t.Run("rows", func(t *testing.T) {
		rows := incidentRows(t, incidentGet(t, b, "/incidents?status=any&q=needle", http.StatusOK))
		want := []incidentRow{{ID: ids[7], Severity: "critical", Status: "open"}}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})

	t.Run("severity counts", func(t *testing.T) {
		body := incidentGet(t, b, "/incidents", http.StatusOK)
		counts := regexp.MustCompile(`data-severity="([a-z]+)">[a-z]+ <strong>(\d+)</strong>`).FindAllStringSubmatch(body, -1)
		got := map[string]string{}
		for _, c := range counts {
			got[c[1]] = c[2]
		}
		want := map[string]string{"critical": "1", "warning": "1", "minor": "117"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("severity counts (-want +got):\n%s", diff)
		}
	})

	for _, q := range []string{"severity=loud", "status=asleep", "sort=colour", "page=0", "page=x"} {
		t.Run("bad "+q, func(t *testing.T) {
			incidentGet(t, b, "/incidents?"+q, http.StatusBadRequest)
		})
	}
}

func TestIncidentBoardActions(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	open := incidentReceive(t, f.hub, incident.Alert{Resource: "web-1", Event: "HighLatency", Environment: "prod"})
	acked := incidentReceive(t, f.hub, incident.Alert{Resource: "web-2", Event: "HighLatency", Environment: "prod"})
	if _, err := f.hub.Action(t.Context(), acked.ID, incident.ActionAck, "", "test", 0); err != nil {
		t.Fatal(err)
	}

	t.Run("viewer sees no buttons", func(t *testing.T) {
		body := incidentGet(t, login(t, f.url, "vera"), "/incidents", http.StatusOK)
		if rows := incidentRows(t, body); len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		if strings.Contains(body, `name="action"`) || strings.Contains(body, "/action") {
			t.Errorf("a viewer's board has action forms:\n%s", body)
		}
	})

	b := login(t, f.url, "olga")
	t.Run("operator sees the actions the status allows", func(t *testing.T) {
		got := map[string][]string{}
		for _, r := range incidentRows(t, incidentGet(t, b, "/incidents", http.StatusOK)) {
			got[r.ID] = r.Actions
		}
		want := map[string][]string{open.ID: {"ack", "shelve", "close"}, acked.ID: {"shelve", "close"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
	})

	t.Run("ack", func(t *testing.T) {
		board := incidentGet(t, b, "/incidents?environment=prod", http.StatusOK)
		if !strings.Contains(board, `name="next" value="/incidents?environment=prod"`) {
			t.Fatalf("the row forms do not come back to the board:\n%s", board)
		}
		status, body := b.post("/alerts/"+open.ID+"/action", url.Values{"action": {"ack"}, "text": {"looking"},
			"next": {"/incidents?environment=prod"}})
		if status != http.StatusOK {
			t.Fatalf("ack: status %d\n%s", status, body)
		}
		if !strings.Contains(body, `value="prod"`) {
			t.Errorf("ack did not come back to the filtered board:\n%s", body)
		}
		for _, r := range incidentRows(t, body) {
			if r.ID == open.ID && r.Status != "ack" {
				t.Errorf("board shows status %s after ack", r.Status)
			}
		}
		a, err := f.hub.Get(t.Context(), open.ID)
		if err != nil {
			t.Fatal(err)
		}
		last := a.History[len(a.History)-1]
		if a.Status != incident.StatusAck || last.ChangeType != "ack" || last.User != "olga" || last.Text != "looking" {
			t.Errorf("after ack: status %s, last history %+v", a.Status, last)
		}
		page := incidentGet(t, b, "/alerts/"+open.ID, http.StatusOK)
		if !regexp.MustCompile(`id="alert-status"><span class="badge status-ack">`).MatchString(page) {
			t.Errorf("alert page does not show status ack:\n%s", page)
		}
		history := page[strings.Index(page, `id="alert-history"`):]
		if !regexp.MustCompile(`(?s)<tr data-type="ack">.*?looking.*?<td class="user">olga</td>`).MatchString(history) {
			t.Errorf("history has no ack by olga:\n%s", history)
		}
	})

	t.Run("shelve with a timeout, then unshelve", func(t *testing.T) {
		if status, body := b.post("/alerts/"+acked.ID+"/action", url.Values{"action": {"shelve"}, "timeout": {"600"}}); status != http.StatusOK {
			t.Fatalf("shelve: status %d\n%s", status, body)
		}
		a, err := f.hub.Get(t.Context(), acked.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last := a.History[len(a.History)-1]; a.Status != incident.StatusShelved || last.Timeout != 600 || last.User != "olga" {
			t.Errorf("after shelve: status %s, last history %+v", a.Status, last)
		}
		page := incidentGet(t, b, "/alerts/"+acked.ID, http.StatusOK)
		var actions []string
		for _, m := range incidentActionRE.FindAllStringSubmatch(page, -1) {
			actions = append(actions, m[1])
		}
		if diff := cmp.Diff([]string{"unshelve", "close", "open"}, actions); diff != "" {
			t.Errorf("actions of a shelved alert (-want +got):\n%s", diff)
		}
		// Without next, the action comes back to the alert.
		status, body := b.post("/alerts/"+acked.ID+"/action", url.Values{"action": {"unshelve"}})
		if status != http.StatusOK || !strings.Contains(body, `id="alert-history"`) {
			t.Fatalf("unshelve: status %d, not the alert page\n%s", status, body)
		}
		if a, _ := f.hub.Get(t.Context(), acked.ID); a.Status != incident.StatusAck {
			t.Errorf("after unshelve: status %s, want ack (the status before the shelve)", a.Status)
		}
	})
}

func TestIncidentActionRefusals(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	a := incidentReceive(t, f.hub, incident.Alert{Resource: "db-1", Event: "Down", Environment: "prod"})
	closed := incidentReceive(t, f.hub, incident.Alert{Resource: "db-2", Event: "Down", Environment: "prod"})
	if _, err := f.hub.Action(t.Context(), closed.ID, incident.ActionClose, "", "test", 0); err != nil {
		t.Fatal(err)
	}
	// As stored, with their history, to compare with after the refusals.
	a, closed = incidentStored(t, f.hub, a.ID), incidentStored(t, f.hub, closed.ID)
	viewer, operator := login(t, f.url, "vera"), login(t, f.url, "olga")
	tests := []struct {
		name string
		b    *browser
		id   string
		form url.Values
		want int
	}{
		{"viewer with a CSRF token", viewer, a.ID, url.Values{"action": {"ack"}}, http.StatusForbidden},
		{"no CSRF token", operator, a.ID, url.Values{"action": {"ack"}, "csrf_token": {""}}, http.StatusForbidden},
		{"wrong CSRF token", operator, a.ID, url.Values{"action": {"ack"}, "csrf_token": {viewer.csrf}}, http.StatusForbidden},
		{"unknown action", operator, a.ID, url.Values{"action": {"dance"}}, http.StatusBadRequest},
		{"no action", operator, a.ID, url.Values{}, http.StatusBadRequest},
		{"bad timeout", operator, a.ID, url.Values{"action": {"shelve"}, "timeout": {"soon"}}, http.StatusBadRequest},
		{"negative timeout", operator, a.ID, url.Values{"action": {"shelve"}, "timeout": {"-1"}}, http.StatusBadRequest},
		{"unack an open alert", operator, a.ID, url.Values{"action": {"unack"}}, http.StatusConflict},
		{"ack a closed alert", operator, closed.ID, url.Values{"action": {"ack"}}, http.StatusConflict},
		{"unknown alert", operator, "no-such-alert", url.Values{"action": {"ack"}}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.b.post("/alerts/"+tt.id+"/action", tt.form)
			if status != tt.want {
				t.Errorf("status %d, want %d\n%s", status, tt.want, body)
			}
		})
	}
	// A link to the action (a GET) changes nothing either.
	if status, _ := operator.get("/alerts/" + a.ID + "/action?action=ack"); status == http.StatusOK {
		t.Errorf("GET of the action: status %d", status)
	}
	for _, before := range []incident.Alert{a, closed} {
		if after := incidentStored(t, f.hub, before.ID); after.Status != before.Status || len(after.History) != len(before.History) {
			t.Errorf("alert %s after refused actions: status %s, %d history entries; want %s, %d",
				before.ID, after.Status, len(after.History), before.Status, len(before.History))
		}
	}
}

func TestIncidentAlertPage(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	now := time.Now()
	rel := release.Release{Application: "checkout", Environment: "prod", Revision: strings.Repeat("ab", 20),
		StartedAt: now.Add(-time.Hour), FinishedAt: &now, Result: release.ResultSucceeded}
	if err := f.db.CreateRelease(t.Context(), &rel); err != nil {
		t.Fatal(err)
	}
	a := incidentReceive(t, f.hub, incident.Alert{Resource: "checkout-7f9", Event: "ErrorRate", Environment: "prod",
		Service: []string{"checkout", "payments"}, Group: "Application", Value: "12%", Text: "error rate above 5%",
		Tags: []string{"team=shop", "app=checkout"}, Origin: "prometheus/eu-1", EventType: "prometheusAlert",
		Attributes: map[string]any{"runbook": "https://runbooks.example/checkout", "replicas": 3}, Timeout: 7200})
	if a.ReleaseID != rel.ID {
		t.Fatalf("alert attached to release %d, want %d", a.ReleaseID, rel.ID)
	}
	b := login(t, f.url, "vera")
	page := incidentGet(t, b, "/alerts/"+a.ID, http.StatusOK)
	for _, want := range []string{
		`id="alert-status"><span class="badge status-open">open</span>`,
		`<span class="badge sev-major">major</span>`,
		"checkout-7f9", "ErrorRate", "checkout, payments", "Application", "12%", "error rate above 5%",
		`<span class="badge">team=shop</span>`, "prometheus/eu-1", "prometheusAlert", "7200 s",
		fmt.Sprintf(`href="/releases/%d"`, rel.ID),
		"<code>replicas</code>", "<pre class=\"attr\">3</pre>", "https://runbooks.example/checkout",
		`<tr data-type="new">`,
		`id="alert-history"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("alert page lacks %q", want)
		}
	}
	if strings.Contains(page, `name="action"`) {
		t.Errorf("a viewer's alert page has actions")
	}
	incidentGet(t, b, "/alerts/no-such-alert", http.StatusNotFound)
}

func TestIncidentEscapesAlertContent(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	const script = `<script>alert(1)</script>`
	a := incidentReceive(t, f.hub, incident.Alert{Resource: `"><img src=x onerror=alert(2)>`, Event: "XSS",
		Environment: "prod", Service: []string{script}, Text: script, Tags: []string{script}, Value: script,
		Attributes: map[string]any{script: script, "link": "javascript:alert(3)"}})
	b := login(t, f.url, "olga")
	for _, path := range []string{"/incidents", "/alerts/" + a.ID} {
		body := incidentGet(t, b, path, http.StatusOK)
		for _, bad := range []string{"<script>alert", "<img src=x", "onerror=alert(2)>", `href="javascript:`} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: %q reaches the page unescaped", path, bad)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the escaped text is missing", path)
		}
	}
}

func TestIncidentLivePart(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	a := incidentReceive(t, f.hub, incident.Alert{Resource: "web-1", Event: "Down", Environment: "prod"})
	b := login(t, f.url, "olga")

	full := incidentGet(t, b, "/incidents", http.StatusOK)
	if !strings.Contains(full, `data-live-topic="alerts"`) || !strings.Contains(full, `<div id="live">`) {
		t.Errorf("the board does not subscribe to the alerts topic:\n%s", full)
	}
	for _, path := range []string{"/incidents", "/alerts/" + a.ID} {
		status, body := b.get(path, "X-Ferry-Live", "1")
		if status != http.StatusOK {
			t.Fatalf("live %s: status %d\n%s", path, status, body)
		}
		for _, outside := range []string{"<html", "<head", `id="live"`, `class="filters"`, `id="alert-actions"`} {
			if strings.Contains(body, outside) {
				t.Errorf("live %s has %q: more than the live part", path, outside)
			}
		}
	}
	_, body := b.get("/incidents", "X-Ferry-Live", "1")
	if rows := incidentRows(t, body); len(rows) != 1 || rows[0].ID != a.ID || !strings.Contains(body, `id="alerts-table"`) {
		t.Errorf("live board: rows %+v\n%s", rows, body)
	}
	// The live part keeps its forms working: the CSRF token and the way back.
	if !strings.Contains(body, `value="`+b.csrf+`"`) || !strings.Contains(body, `name="next" value="/incidents"`) {
		t.Errorf("live board forms lack the CSRF token or next:\n%s", body)
	}
}

func TestIncidentBlackouts(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, true)
	b := login(t, f.url, "olga")

	status, body := b.post("/blackouts", url.Values{"environment": {"prod"}, "service": {"web, api,"},
		"event": {"NodeDown"}, "tags": {"dc=eu"}, "duration": {"30"}, "text": {"kernel upgrade <b>now</b>"}})
	if status != http.StatusOK {
		t.Fatalf("create: status %d\n%s", status, body)
	}
	bs, err := f.db.ListBlackouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 {
		t.Fatalf("%d blackouts, want 1", len(bs))
	}
	got := bs[0]
	want := incident.Blackout{ID: got.ID, Priority: got.Priority, Environment: "prod", Service: []string{"web", "api"},
		Event: "NodeDown", Tags: []string{"dc=eu"}, StartTime: got.StartTime, EndTime: got.StartTime.Add(30 * time.Minute),
		Duration: 1800, User: "olga", CreateTime: got.CreateTime, Text: "kernel upgrade <b>now</b>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blackout (-want +got):\n%s", diff)
	}
	if !regexp.MustCompile(`(?s)<tr data-blackout="` + got.ID + `">.*?<td>prod</td>.*?web, api.*?bo-active.*?<td>olga</td>.*?kernel upgrade &lt;b&gt;now&lt;/b&gt;`).MatchString(body) {
		t.Errorf("the blackouts table lacks the new blackout:\n%s", body)
	}

	t.Run("end time and default duration", func(t *testing.T) {
		end := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Minute)
		for _, form := range []url.Values{
			{"environment": {"staging"}, "end": {end.Format("2006-01-02T15:04")}},
			{"environment": {"dev"}, "duration": {"0"}},
			{"environment": {"qa"}},
		} {
			if status, body := b.post("/blackouts", form); status != http.StatusOK {
				t.Fatalf("create %v: status %d\n%s", form, status, body)
			}
		}
		bs, err := f.db.ListBlackouts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ends := map[string]time.Duration{}
		for _, b := range bs {
			ends[b.Environment] = b.EndTime.Sub(b.StartTime)
		}
		if e := bs[slices.IndexFunc(bs, func(b incident.Blackout) bool { return b.Environment == "staging" })].EndTime; !e.Equal(end) {
			t.Errorf("staging ends at %v, want %v", e, end)
		}
		for _, env := range []string{"dev", "qa"} {
			if ends[env] != incident.DefaultBlackoutDuration*time.Second {
				t.Errorf("%s lasts %v, want the default %ds", env, ends[env], incident.DefaultBlackoutDuration)
			}
		}
	})

	bad := []url.Values{
		{"service": {"web"}},
		{"environment": {"  "}},
		{"environment": {"prod"}, "duration": {"soon"}},
		{"environment": {"prod"}, "duration": {"-5"}},
		{"environment": {"prod"}, "duration": {"99999999999999"}},
		{"environment": {"prod"}, "end": {"tomorrow"}},
		{"environment": {"prod"}, "end": {"2001-01-01T00:00"}},
		{"environment": {"prod"}, "resource": {strings.Repeat("r", incident.MaxNameLen+1)}},
	}
	for _, form := range bad {
		t.Run("bad "+form.Encode()[:min(40, len(form.Encode()))], func(t *testing.T) {
			before, _ := f.db.ListBlackouts(t.Context())
			if status, body := b.post("/blackouts", form); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400\n%s", status, body)
			}
			if after, _ := f.db.ListBlackouts(t.Context()); len(after) != len(before) {
				t.Errorf("a bad blackout was stored")
			}
		})
	}

	viewer := login(t, f.url, "vera")
	t.Run("viewer", func(t *testing.T) {
		page := incidentGet(t, viewer, "/heartbeats", http.StatusOK)
		if strings.Contains(page, `id="blackout-form"`) || strings.Contains(page, "/delete") {
			t.Errorf("a viewer sees the blackout form or delete buttons")
		}
		if status, _ := viewer.post("/blackouts", url.Values{"environment": {"prod"}}); status != http.StatusForbidden {
			t.Errorf("viewer create: status %d, want 403", status)
		}
		if status, _ := viewer.post("/blackouts/"+got.ID+"/delete", nil); status != http.StatusForbidden {
			t.Errorf("viewer delete: status %d, want 403", status)
		}
	})

	t.Run("delete", func(t *testing.T) {
		status, body := b.post("/blackouts/"+got.ID+"/delete", nil)
		if status != http.StatusOK {
			t.Fatalf("delete: status %d\n%s", status, body)
		}
		if strings.Contains(body, `data-blackout="`+got.ID+`"`) {
			t.Errorf("the deleted blackout is still listed")
		}
		if _, err := f.db.GetBlackout(t.Context(), got.ID); !errors.Is(err, incident.ErrNotFound) {
			t.Errorf("get the deleted blackout: %v, want not found", err)
		}
		if status, _ := b.post("/blackouts/"+got.ID+"/delete", nil); status != http.StatusNotFound {
			t.Errorf("delete again: status %d, want 404", status)
		}
	})
}

func TestIncidentHeartbeats(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, true)
	now := time.Now()
	alive, _, err := f.db.UpsertHeartbeat(t.Context(), incident.Heartbeat{Origin: "cron/backup", Tags: []string{"nightly"},
		EventType: "Heartbeat", CreateTime: now, ReceiveTime: now, Timeout: 3600})
	if err != nil {
		t.Fatal(err)
	}
	dead, _, err := f.db.UpsertHeartbeat(t.Context(), incident.Heartbeat{Origin: "<b>agent</b>", EventType: "Heartbeat",
		CreateTime: now.Add(-2 * time.Hour), ReceiveTime: now.Add(-2 * time.Hour), Timeout: 60})
	if err != nil {
		t.Fatal(err)
	}

	operator := login(t, f.url, "olga")
	page := incidentGet(t, operator, "/heartbeats", http.StatusOK)
	statuses := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr data-heartbeat="([^"]+)">.*?<span class="badge hb-([a-z]+)">`).FindAllStringSubmatch(page, -1) {
		statuses[m[1]] = m[2]
	}
	if diff := cmp.Diff(map[string]string{alive.ID: "ok", dead.ID: "expired"}, statuses); diff != "" {
		t.Errorf("heartbeat statuses (-want +got):\n%s", diff)
	}
	if !strings.Contains(page, "&lt;b&gt;agent&lt;/b&gt;") || !strings.Contains(page, `<span class="badge">nightly</span>`) {
		t.Errorf("heartbeats table lacks an origin or a tag:\n%s", page)
	}
	if strings.Contains(page, "/heartbeats/"+alive.ID+"/delete") {
		t.Errorf("an operator sees the heartbeat delete button")
	}
	if status, _ := operator.post("/heartbeats/"+dead.ID+"/delete", nil); status != http.StatusForbidden {
		t.Errorf("operator delete: status %d, want 403", status)
	}

	admin := login(t, f.url, "ada")
	if page := incidentGet(t, admin, "/heartbeats", http.StatusOK); !strings.Contains(page, `action="/heartbeats/`+dead.ID+`/delete"`) {
		t.Errorf("an admin does not see the heartbeat delete button")
	}
	if status, body := admin.post("/heartbeats/"+dead.ID+"/delete", nil); status != http.StatusOK || strings.Contains(body, dead.ID) {
		t.Errorf("admin delete: status %d, or still listed\n%s", status, body)
	}
	hbs, err := f.db.ListHeartbeats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(hbs) != 1 || hbs[0].ID != alive.ID {
		t.Errorf("after delete: %+v, want only %s", hbs, alive.ID)
	}
}

func TestIncidentSectionsFollowTheStores(t *testing.T) {
	t.Parallel()
	f := newIncidentFixture(t, false)
	b := login(t, f.url, "ada")
	board := incidentGet(t, b, "/incidents", http.StatusOK)
	if strings.Contains(board, `href="/heartbeats"`) {
		t.Errorf("the board links heartbeats without a heartbeat or blackout store")
	}
	incidentGet(t, b, "/heartbeats", http.StatusNotFound)
	for _, path := range []string{"/blackouts", "/blackouts/x/delete", "/heartbeats/x/delete"} {
		if status, _ := b.post(path, url.Values{"environment": {"prod"}}); status != http.StatusNotFound {
			t.Errorf("POST %s: status %d, want 404", path, status)
		}
	}
}
