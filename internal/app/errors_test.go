package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// errorsEnv is incidentEnv with the chat subscribed to the error tracker's events too.
func errorsEnv(t *testing.T, mutate ...func(*config.Config)) *incidentEnv {
	return newIncidentEnv(t, append([]func(*config.Config){func(c *config.Config) {
		c.Notify.Subscriptions[0].On = []string{"error.*"}
	}}, mutate...)...)
}

// createProject makes a project through the API and returns its DSN.
func (e *incidentEnv) createProject(t *testing.T, name string, rateLimit int) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "rateLimit": rateLimit})
	status, out, _ := e.call(t, http.MethodPost, "/api/v1/projects", e.admin, body)
	if status != http.StatusCreated {
		t.Fatalf("create project %s: %d %v", name, status, out)
	}
	dsn, _ := out["keys"].([]any)[0].(map[string]any)["dsn"].(string)
	if !strings.HasPrefix(dsn, "http://") || !strings.HasSuffix(dsn, "/"+fmt.Sprint(out["project"].(map[string]any)["id"])) {
		t.Fatalf("DSN %q: want http://KEY@HOST/PROJECT_ID", dsn)
	}
	return dsn
}

// sdk is the official Go SDK, as an application sets it up, reporting synchronously so that
// each capture has reached the server when it returns.
func sdk(t *testing.T, dsn, rel string) *sentry.Hub {
	t.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: dsn, Release: rel, Environment: "production",
		Transport: sentry.NewHTTPSyncTransport()})
	if err != nil {
		t.Fatal(err)
	}
	return sentry.NewHub(client, sentry.NewScope())
}

// chargeCard fails the way the test's application does: one call site, so every failure has
// the same in-app stack.
func chargeCard(hub *sentry.Hub, order int) {
	hub.AddBreadcrumb(&sentry.Breadcrumb{Category: "payment", Message: fmt.Sprintf("charging order %d", order)}, nil)
	hub.CaptureException(fmt.Errorf("charge order %d: %w", order, errors.New("card declined")))
}

func (e *incidentEnv) issues(t *testing.T, query string) []errtrack.Issue {
	t.Helper()
	return readMember[[]errtrack.Issue](t, e, "/api/v1/issues?"+query, "issues")
}

// readMember GETs path with the read-scope key and decodes the member of its JSON answer.
func readMember[T any](t *testing.T, e *incidentEnv, path, member string) T {
	t.Helper()
	status, out, _ := e.call(t, http.MethodGet, path, e.read, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, status, out)
	}
	raw, _ := json.Marshal(out[member])
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func timelineTypes(t *testing.T, e *incidentEnv, releaseID int64) []string {
	t.Helper()
	tl, err := e.db.Timeline(t.Context(), releaseID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range tl.Events {
		types = append(types, string(ev.Type))
	}
	return types
}

// TestSentrySDKEndToEnd reports errors with the official Go SDK, unchanged, to a project
// made through the API: exceptions group into one issue by their stack, a message and a
// recovered panic make their own, each first sighting lands on the Ferry release the SDK
// names and is told to the chat, and an issue resolved in the next release reopens only
// when a later deploy has it again.
func TestSentrySDKEndToEnd(t *testing.T) {
	e := errorsEnv(t)
	dsn := e.createProject(t, "web", 0)
	rel1 := errtrack.ReleaseName(e.release.Application, e.release.Revision) // web@ccccccc
	hub := sdk(t, dsn, rel1)
	hub.ConfigureScope(func(s *sentry.Scope) {
		s.SetUser(sentry.User{ID: "u-1", Email: "ann@example.com"})
		s.SetTag("region", "eu-west")
	})
	chargeCard(hub, 1234)
	chargeCard(hub, 98765)
	hub.CaptureMessage("cache stampede on /checkout")
	func() {
		defer func() {
			if r := recover(); r != nil {
				hub.RecoverWithContext(context.Background(), r)
			}
		}()
		panic(fmt.Sprintf("checkout: cart %d has no owner", 7))
	}()

	list := e.issues(t, "project=web&sort=count")
	if len(list) != 3 {
		t.Fatalf("issues = %d, want 3 (the exception twice, the message, the panic): %+v", len(list), list)
	}
	card := list[0]
	if card.Count != 2 || card.UsersAffected != 1 || !strings.Contains(card.Title, "card declined") ||
		card.FirstRelease != rel1 || card.Status != errtrack.StatusUnresolved || !slices.Contains(card.Environments, "production") {
		t.Errorf("exception issue = %+v; want count 2, 1 user, the error's title, first seen in %s", card, rel1)
	}
	if !strings.Contains(card.Culprit, "chargeCard") {
		t.Errorf("culprit = %q, want the in-app function chargeCard", card.Culprit)
	}

	status, out, _ := e.call(t, http.MethodGet, fmt.Sprintf("/api/v1/issues/%d", card.ID), e.read, nil)
	if status != http.StatusOK {
		t.Fatalf("get issue: %d %v", status, out)
	}
	raw, _ := json.Marshal(out["latestEvent"])
	var latest errtrack.StoredEvent
	if err := json.Unmarshal(raw, &latest); err != nil {
		t.Fatal(err)
	}
	ev := latest.Event
	if len(ev.Exception) == 0 || ev.Exception[len(ev.Exception)-1].Stacktrace == nil {
		t.Fatalf("latest event has no exception with a stack trace: %s", raw)
	}
	var inApp []string
	for _, f := range ev.Exception[len(ev.Exception)-1].Stacktrace.Frames {
		if f.InApp != nil && *f.InApp {
			inApp = append(inApp, f.Function)
		}
	}
	if !slices.Contains(inApp, "chargeCard") {
		t.Errorf("in-app frames = %v, want chargeCard among them", inApp)
	}
	if len(ev.Breadcrumbs) == 0 || !strings.Contains(ev.Breadcrumbs[len(ev.Breadcrumbs)-1].Message, "98765") {
		t.Errorf("breadcrumbs = %+v, want the last one about order 98765", ev.Breadcrumbs)
	}
	if v, _ := ev.Tags.Get("region"); v != "eu-west" || ev.Release != rel1 || ev.Environment != "production" {
		t.Errorf("event tags %v, release %q, environment %q", ev.Tags, ev.Release, ev.Environment)
	}

	// Each new issue is on the release's timeline and in the chat, once.
	if types := timelineTypes(t, e, e.release.ID); !slices.Equal(types, []string{"error.new", "error.new", "error.new"}) {
		t.Errorf("release timeline = %v, want three error.new", types)
	}
	e.sink.Wait(t, 3, 30*time.Second)
	if p := e.sink.Payloads()[0]; p.Event.Type != notify.EventErrorNew || p.Event.Application != "web" ||
		p.Event.Revision != e.release.Revision || !strings.HasPrefix(p.Link, "https://ferry.example.com/issues/") {
		t.Errorf("error.new message = %+v; want it on web's release with a panel link", p)
	}

	// Resolved in the next release: the same release does not reopen it; the next deploy does.
	body := []byte(`{"action":"resolve_in_next_release","release":"` + rel1 + `"}`)
	if status, out, _ := e.call(t, http.MethodPost, fmt.Sprintf("/api/v1/issues/%d/actions", card.ID), e.write, body); status != http.StatusOK {
		t.Fatalf("resolve: %d %v", status, out)
	}
	chargeCard(hub, 1)
	if got := e.issues(t, "project=web&status=resolved_in_next_release"); len(got) != 1 || got[0].ID != card.ID {
		t.Errorf("after an event from the resolving release, resolved issues = %+v; want the card issue still", got)
	}
	finished := time.Now()
	next := release.Release{Application: "web", Environment: "production", Revision: strings.Repeat("d", 40),
		StartedAt: finished, FinishedAt: &finished, Result: release.ResultSucceeded}
	if err := e.db.CreateRelease(t.Context(), &next); err != nil {
		t.Fatal(err)
	}
	chargeCard(sdk(t, dsn, errtrack.ReleaseName("web", next.Revision)), 2)
	got := e.issues(t, "project=web&status=unresolved&query=card")
	if len(got) != 1 || got[0].ID != card.ID || got[0].Count != 4 || got[0].LastRelease != "web@ddddddd" {
		t.Fatalf("after an event from the next deploy, unresolved card issues = %+v; want it reopened, count 4", got)
	}
	if types := timelineTypes(t, e, next.ID); !slices.Equal(types, []string{"error.regressed"}) {
		t.Errorf("next release's timeline = %v, want error.regressed", types)
	}
	if got := e.issues(t, "release=web@ddddddd"); len(got) != 1 {
		t.Errorf("issues seen in web@ddddddd = %d, want 1", len(got))
	}
}

// TestSentryEventsOutliveTheirRequests: the server reads each request body into a buffer
// that the next request reuses, so an event, or an issue summing it, that kept a reference
// into its body would change when the next request arrived. Events of one issue, each with
// its own tag value and breadcrumb, sent one after another, must be stored and summed as
// they were sent.
func TestSentryEventsOutliveTheirRequests(t *testing.T) {
	e := errorsEnv(t)
	hub := sdk(t, e.createProject(t, "bodies", 0), "")
	const events = 6
	for i := range events {
		hub.WithScope(func(s *sentry.Scope) {
			s.SetTag("shard", fmt.Sprintf("shard-%d", i))
			chargeCard(hub, 1000+i)
		})
	}
	list := e.issues(t, "project=bodies")
	if len(list) != 1 || list[0].Count != events {
		t.Fatalf("issues = %+v, want one with %d events", list, events)
	}
	var shards []string
	for _, ts := range list[0].TagsSummary {
		if ts.Key != "shard" {
			continue
		}
		for _, v := range ts.Values {
			shards = append(shards, v.Value)
		}
	}
	slices.Sort(shards)
	if want := []string{"shard-0", "shard-1", "shard-2", "shard-3", "shard-4", "shard-5"}; !slices.Equal(shards, want) {
		t.Errorf("the issue's shard values = %v, want %v", shards, want)
	}
	stored := readMember[[]errtrack.StoredEvent](t, e, fmt.Sprintf("/api/v1/issues/%d/events?limit=%d", list[0].ID, events), "events")
	if len(stored) != events {
		t.Fatalf("stored events = %d, want %d", len(stored), events)
	}
	for _, se := range stored {
		shard, _ := se.Event.Tags.Get("shard")
		var i int
		if _, err := fmt.Sscanf(shard, "shard-%d", &i); err != nil {
			t.Errorf("event %s: tag shard = %q", se.Event.EventID, shard)
			continue
		}
		bc := se.Event.Breadcrumbs
		if want := fmt.Sprintf("charging order %d", 1000+i); len(bc) == 0 || bc[len(bc)-1].Message != want {
			t.Errorf("event %s with shard %q: breadcrumbs %+v, want the last %q", se.Event.EventID, shard, bc, want)
		}
	}
}

// TestSentryRateLimit: a project over its quota gets 429 with the headers the SDK honours,
// and the SDK then stops sending until the quota's window ends.
func TestSentryRateLimit(t *testing.T) {
	e := errorsEnv(t)
	hub := sdk(t, e.createProject(t, "chatty", 2), "chatty@1.0.0")
	for i := range 6 {
		hub.CaptureMessage(fmt.Sprintf("attempt %d", i))
	}
	// Six captures in at most two windows of a minute: some were refused; after the first
	// refusal the SDK sent nothing more, so exactly one was answered 429.
	if n := metricValue(t, e.url, `ferry_errors_items_total{outcome="rate_limited",type="event"}`); n != 1 {
		t.Errorf("events answered 429 = %v, want 1 (the SDK holds back after it)", n)
	}
	var total int64
	for _, is := range e.issues(t, "project=chatty") {
		total += is.Count
	}
	if total != 2 && total != 4 {
		t.Errorf("events stored = %d, want the quota of one or two windows (2 or 4)", total)
	}
}

// metricValue reads one sample of /metrics, 0 when absent.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// TestSentryIngestBadInput: every malformed, oversized or unauthorized request gets a clear
// 4xx, and the server goes on storing good events.
func TestSentryIngestBadInput(t *testing.T) {
	e := errorsEnv(t)
	dsn := e.createProject(t, "web", 0)
	u, _ := url.Parse(dsn)
	key, project := u.User.Username(), strings.TrimPrefix(u.Path, "/")
	auth := "Sentry sentry_version=7, sentry_key=" + key
	event := []byte(`{"event_id":"0123456789abcdef0123456789abcdef","message":"hello","level":"error"}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(event)
	_ = zw.Close()
	bomb := new(bytes.Buffer)
	zw = gzip.NewWriter(bomb)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 120<<20)) // 120 MiB of spaces, 120 KiB on the wire
	_ = zw.Close()

	// Revoke a second key before it is ever used.
	status, out, _ := e.call(t, http.MethodPost, "/api/v1/projects/web/keys", e.admin, []byte(`{"label":"old"}`))
	if status != http.StatusCreated {
		t.Fatalf("create key: %d %v", status, out)
	}
	revoked := out["key"].(map[string]any)["public"].(string)
	if status, out, _ := e.call(t, http.MethodDelete, "/api/v1/projects/web/keys/"+revoked, e.admin, nil); status != http.StatusOK {
		t.Fatalf("revoke key: %d %v", status, out)
	}

	tests := []struct {
		name, path, auth, encoding string
		body                       []byte
		want                       int
	}{
		{"no credentials", "/store/", "", "", event, http.StatusUnauthorized},
		// Refused before the body is read: no bomb is decompressed for a client without a key.
		{"bomb without credentials", "/store/", "", "gzip", bomb.Bytes(), http.StatusUnauthorized},
		{"unknown key", "/store/", "Sentry sentry_key=" + strings.Repeat("f", 32), "", event, http.StatusUnauthorized},
		{"revoked key", "/store/", "Sentry sentry_key=" + revoked, "", event, http.StatusUnauthorized},
		{"malformed auth", "/store/", "Sentry sentry_key=", "", event, http.StatusUnauthorized},
		{"unknown project", "", auth, "", event, http.StatusNotFound},
		{"not JSON", "/store/", auth, "", []byte("{not json"), http.StatusBadRequest},
		{"truncated gzip", "/store/", auth, "gzip", gz.Bytes()[:gz.Len()/2], http.StatusBadRequest},
		{"decompression bomb", "/store/", auth, "gzip", bomb.Bytes(), http.StatusRequestEntityTooLarge},
		{"event over 1 MiB", "/store/", auth, "", []byte(`{"message":"` + strings.Repeat("x", 1<<20+1) + `"}`),
			http.StatusRequestEntityTooLarge},
		{"deeply nested", "/store/", auth, "", []byte(`{"extra":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`),
			http.StatusBadRequest},
		{"invalid UTF-8", "/store/", auth, "", []byte("{\"message\":\"\xff\xfe\"}"), http.StatusBadRequest},
		{"envelope length that lies", "/envelope/", auth, "",
			[]byte("{}\n{\"type\":\"event\",\"length\":500}\n{\"message\":\"short\"}\n"), http.StatusBadRequest},
		{"envelope header not JSON", "/envelope/", auth, "", []byte("nope\n"), http.StatusBadRequest},
		{"unknown encoding", "/store/", auth, "compress", event, http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/" + project + tt.path
			if tt.name == "unknown project" {
				path = "/api/999999/store/"
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, bytes.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("X-Sentry-Auth", tt.auth)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct{ Detail string }
			if resp.StatusCode != tt.want || json.Unmarshal(raw, &body) != nil || body.Detail == "" ||
				resp.Header.Get("X-Sentry-Error") == "" {
				t.Errorf("status %d, body %.200s; want %d with a detail and X-Sentry-Error", resp.StatusCode, raw, tt.want)
			}
		})
	}

	// Browsers' preflight, and an envelope with only items that are not events.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, e.url+"/api/"+project+"/envelope/", nil)
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Sentry-Auth") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	sessions := "{\"event_id\":\"" + strings.Repeat("a", 32) + "\"}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n" +
		"{\"type\":\"client_report\"}\n{}\n{\"type\":\"made_up\",\"length\":3}\nabc\n"
	resp, err = http.Post(e.url+"/api/"+project+"/envelope/?sentry_key="+key, "application/x-sentry-envelope",
		strings.NewReader(sessions))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), strings.Repeat("a", 32)) {
		t.Errorf("envelope without an event: %d %s; want 200 with its event id", resp.StatusCode, raw)
	}

	// Nothing above stored anything, and a good event still goes in.
	hub := sdk(t, dsn, "web@1.0.0")
	hub.CaptureMessage("still serving")
	if list := e.issues(t, "project=web"); len(list) != 1 || list[0].Title != "still serving" {
		t.Errorf("issues = %+v, want only the good event's", list)
	}
}

// TestSentrySpike: a burst of one issue's events past errors.spike_count within the window
// is told once, as error.spike, after the new issue's error.new.
func TestSentrySpike(t *testing.T) {
	e := errorsEnv(t, func(c *config.Config) { c.Errors.SpikeCount, c.Errors.SpikeWindow = 3, time.Hour })
	hub := sdk(t, e.createProject(t, "web", 0), errtrack.ReleaseName(e.release.Application, e.release.Revision))
	for i := range 5 {
		chargeCard(hub, i)
	}
	e.sink.Wait(t, 2, 30*time.Second)
	time.Sleep(2 * time.Second) // a second spike message would come now; it must not
	if types := e.sink.Types(); !slices.Equal(types, []string{notify.EventErrorNew, notify.EventErrorSpike}) {
		t.Errorf("chat got %v, want error.new then one error.spike", types)
	}
	if types := timelineTypes(t, e, e.release.ID); !slices.Equal(types, []string{"error.new", "error.spike"}) {
		t.Errorf("release timeline = %v, want error.new then error.spike", types)
	}
}
