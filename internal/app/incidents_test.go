package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/channel"
	"github.com/ferrycd/ferry/internal/notify/webhook"
	"github.com/ferrycd/ferry/internal/notify/webhook/webhooktest"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/testenv"
)

// incidentEnv is ferry server with delivery off, its store opened beside it, API keys of
// each scope, and a chat channel subscribed to the incident events.
type incidentEnv struct {
	url                string
	db                 *store.DB
	read, write, admin string
	sink               *webhooktest.Sink
	release            release.Release
}

func newIncidentEnv(t *testing.T, mutate ...func(*config.Config)) *incidentEnv {
	t.Helper()
	e := &incidentEnv{sink: webhooktest.NewSink(t, "hmac")}
	storeURL := "sqlite://" + filepath.Join(t.TempDir(), "ferry.db")
	e.url, _ = start(t, func(c *config.Config) {
		c.Delivery.Enabled = false
		c.Store = storeURL
		c.Notify.PanelURL = "https://ferry.example.com"
		c.Notify.Channels = []channel.Config{{Name: "ops", Webhook: &channel.Webhook{
			Hook: channel.Hook{URL: e.sink.URL}, HMACSecret: "hmac", Config: webhook.Config{}}}}
		c.Notify.Subscriptions = []notify.Subscription{{Channels: []string{"ops"}, On: []string{"alert.*"}}}
		for _, m := range mutate {
			m(c)
		}
	})
	db, err := store.Open(t.Context(), storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.db = db
	for _, k := range []struct {
		dst   *string
		scope apikey.Scope
	}{{&e.read, apikey.ScopeRead}, {&e.write, apikey.ScopeWrite}, {&e.admin, apikey.ScopeAdmin}} {
		secret, hash, prefix := apikey.Generate()
		if _, err := db.CreateAPIKey(t.Context(), string(k.scope)+"-key", []apikey.Scope{k.scope}, hash, prefix, nil); err != nil {
			t.Fatal(err)
		}
		*k.dst = secret
	}
	finished := time.Now()
	e.release = release.Release{Application: "web", Environment: "production", Revision: strings.Repeat("c", 40),
		StartedAt: finished.Add(-time.Minute), FinishedAt: &finished, Result: release.ResultSucceeded}
	if err := db.CreateRelease(t.Context(), &e.release); err != nil {
		t.Fatal(err)
	}
	return e
}

// call sends a request with an API key (none if key is empty) and decodes the JSON answer.
func (e *incidentEnv) call(t *testing.T, method, path, key string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	return keyCall(t, method, e.url+path, key, body)
}

// keyCall sends a request to url with an API key (none if key is empty) and decodes the
// JSON answer, if it is JSON.
func keyCall(t *testing.T, method, url, key string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Key "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

// timeline lists the event types on the timeline of the environment's release.
func (e *incidentEnv) timeline(t *testing.T) []string { return timelineTypes(t, e, e.release.ID) }

// TestAlertmanagerEndToEnd points a real Alertmanager at ferry server: the alert it fires is
// stored once however often Alertmanager repeats it, attached to the release of the app its
// labels name, told to the chat once, and closed when Alertmanager resolves it.
func TestAlertmanagerEndToEnd(t *testing.T) {
	e := newIncidentEnv(t)
	am := testenv.NewAlertmanager(t, testenv.AlertmanagerOptions{
		WebhookURL:    e.url + "/api/v1/webhooks/alertmanager",
		Authorization: &testenv.AMAuthorization{Type: "Key", Credentials: e.write},
	})
	labels := map[string]string{"alertname": "HighErrorRate", "instance": "web-1:8080", "severity": "critical",
		"environment": "production", "app": "web", "job": "web"}
	am.PostAlerts(t, testenv.AMAlert{Labels: labels, Annotations: map[string]string{"summary": "5xx above 5%"}})

	var got incident.Alert
	testenv.Eventually(t, "the alert stored and repeated by Alertmanager", func() bool {
		list, err := e.db.FindAlerts(t.Context(), incident.Query{Page: 1, PageSize: 10})
		if err != nil || list.Total != 1 {
			return false
		}
		got = list.Alerts[0]
		return got.DuplicateCount >= 1
	})
	if got.Resource != "web-1:8080" || got.Event != "HighErrorRate" || got.Severity != "critical" ||
		got.Environment != "production" || got.Group != "web" || got.Status != incident.StatusOpen || got.ReleaseID != e.release.ID {
		t.Errorf("alert = %+v; want HighErrorRate on web-1:8080, critical, open, on release %d", got, e.release.ID)
	}
	am.Resolve(t, labels)
	testenv.Eventually(t, "the alert closed by the resolved notification", func() bool {
		a, err := e.db.GetAlert(t.Context(), got.ID)
		return err == nil && a.Status == incident.StatusClosed
	})
	e.sink.Wait(t, 2, 30*time.Second)
	time.Sleep(3 * time.Second) // another repeat would come now; it must not notify
	if types := e.sink.Types(); !slices.Equal(types, []string{notify.EventAlertRaised, notify.EventAlertClosed}) {
		t.Errorf("chat got %v, want one alert.raised and one alert.closed", types)
	}
	if p := e.sink.Payloads()[0]; p.Event.Application != "web" || p.Event.Revision != e.release.Revision ||
		!strings.HasPrefix(p.Link, "https://ferry.example.com/alerts/") {
		t.Errorf("alert.raised message = %+v; want it on web's release with a panel link", p)
	}
	if types := e.timeline(t); !slices.Equal(types, []string{"alert.raised", "alert.closed"}) {
		t.Errorf("release timeline = %v, want alert.raised then alert.closed", types)
	}
}

// TestAlertaAPI drives the Alerta-compatible API as an Alerta client would, with the keys and
// the bad input it must refuse.
func TestAlertaAPI(t *testing.T) {
	e := newIncidentEnv(t)
	body := func(v map[string]any) []byte {
		b, _ := json.Marshal(v)
		return b
	}
	alert := map[string]any{"resource": "db1", "event": "DiskFull", "environment": "production", "severity": "major",
		"service": []string{"db"}, "text": "disk 95% full", "tags": []string{"app=web"}}

	code, _, h := e.call(t, "POST", "/api/alert", "", body(alert))
	if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Key") {
		t.Errorf("no key: %d, WWW-Authenticate %q; want 401 with a Key challenge", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := e.call(t, "POST", "/api/alert", "ferry_wrong", body(alert)); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", code)
	}
	if code, _, _ := e.call(t, "POST", "/api/alert", e.read, body(alert)); code != http.StatusForbidden {
		t.Errorf("read key on a write: %d, want 403", code)
	}
	if code, _, _ := e.call(t, "POST", "/api/alert", e.write, []byte(`{"resource": "db1",`)); code != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d, want 400", code)
	}
	code, out, _ := e.call(t, "POST", "/api/alert", e.write, []byte(`{"event": "DiskFull", "environment": "production"}`))
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out), "resource") {
		t.Errorf("missing resource: %d %v, want 400 naming resource", code, out)
	}
	huge := body(map[string]any{"resource": "db1", "event": "DiskFull", "text": strings.Repeat("x", 2<<20)})
	if code, _, _ := e.call(t, "POST", "/api/alert", e.write, huge); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB alert: %d, want 413", code)
	}

	code, out, _ = e.call(t, "POST", "/api/alert", e.write, body(alert))
	if code != http.StatusCreated || out["status"] != "ok" || out["id"] == "" {
		t.Fatalf("create: %d %v, want 201 with Alerta's answer", code, out)
	}
	id, _ := out["id"].(string)
	if a, _ := out["alert"].(map[string]any); a["releaseId"] != float64(e.release.ID) {
		t.Errorf("alert releaseId = %v, want %d (tag app=web)", a["releaseId"], e.release.ID)
	}
	// 50 identical alerts at once: one alert, counted.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if code, out, _ := e.call(t, "POST", "/api/alert", e.write, body(alert)); code != http.StatusCreated {
				t.Errorf("concurrent create: %d %v", code, out)
			}
		})
	}
	wg.Wait()
	code, out, _ = e.call(t, "GET", "/api/alert/"+id, e.read, nil)
	if a, _ := out["alert"].(map[string]any); code != http.StatusOK || a["duplicateCount"] != float64(50) {
		t.Errorf("get: %d, duplicateCount %v; want 200 and 50", code, a["duplicateCount"])
	}

	if code, _, _ := e.call(t, "PUT", "/api/alert/"+id+"/action", e.write, []byte(`{"action": "ack", "text": "on it"}`)); code != http.StatusOK {
		t.Errorf("ack: %d, want 200", code)
	}
	if code, _, _ := e.call(t, "PUT", "/api/alert/"+id+"/action", e.write, []byte(`{"action": "unshelve"}`)); code != http.StatusConflict {
		t.Errorf("unshelve an acked alert: %d, want 409", code)
	}
	code, out, _ = e.call(t, "GET", "/api/alerts?status=ack&environment=production", e.read, nil)
	if code != http.StatusOK || out["total"] != float64(1) {
		t.Errorf("list status=ack: %d total %v, want 1", code, out["total"])
	}
	if code, _, _ := e.call(t, "GET", "/api/alerts?sort-by=nonsense", e.read, nil); code != http.StatusBadRequest {
		t.Errorf("bad sort: %d, want 400", code)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/alert/"+id, e.write, nil); code != http.StatusForbidden {
		t.Errorf("delete with a write key: %d, want 403", code)
	}
	if code, _, _ := e.call(t, "DELETE", "/api/alert/"+id, e.admin, nil); code != http.StatusOK {
		t.Errorf("delete with an admin key: %d, want 200", code)
	}
	if code, _, _ := e.call(t, "GET", "/api/alert/"+id, e.read, nil); code != http.StatusNotFound {
		t.Errorf("get after delete: %d, want 404", code)
	}

	// An Alertmanager batch with one alert that cannot map: the rest is received, the answer
	// names what failed.
	batch := []byte(`{"version":"4","status":"firing","receiver":"ferry","alerts":[
		{"status":"firing","labels":{"alertname":"CPUHigh","instance":"node1","severity":"major"},"startsAt":"2026-11-26T00:00:00Z"},
		{"status":"firing","labels":{"instance":"node2"},"startsAt":"2026-11-26T00:00:00Z"}]}`)
	code, out, _ = e.call(t, "POST", "/api/v1/webhooks/alertmanager", e.write, batch)
	if code != http.StatusUnprocessableEntity || out["received"] != float64(1) || out["failed"] != float64(1) {
		t.Errorf("batch with a bad alert: %d %v; want 422, 1 received, 1 failed", code, out)
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/webhooks/alertmanager", e.write, []byte(`[1,2]`)); code != http.StatusBadRequest {
		t.Errorf("not a payload: %d, want 400", code)
	}
}

// TestBlackoutAndHeartbeat keeps alerts in a blackout window stored but untold, tells them
// once the window is gone, and raises and clears an alert for a sender whose heartbeat stops
// and comes back.
func TestBlackoutAndHeartbeat(t *testing.T) {
	e := newIncidentEnv(t, func(c *config.Config) { c.Incidents.HousekeepingInterval = 100 * time.Millisecond })
	body := func(v any) []byte {
		b, _ := json.Marshal(v)
		return b
	}
	code, out, _ := e.call(t, "POST", "/api/blackout", e.write, body(map[string]any{
		"environment": "production", "resource": "db1", "duration": 3600, "text": "disk swap"}))
	bo, _ := out["blackout"].(map[string]any)
	if code != http.StatusCreated || bo["id"] == nil {
		t.Fatalf("create blackout: %d %v", code, out)
	}
	alert := body(map[string]any{"resource": "db1", "event": "DiskFull", "environment": "production", "severity": "major"})
	code, out, _ = e.call(t, "POST", "/api/alert", e.write, alert)
	a, _ := out["alert"].(map[string]any)
	if code != http.StatusCreated || a["status"] != "blackout" {
		t.Fatalf("alert in the window: %d status %v, want stored with status blackout", code, a["status"])
	}
	if code, _, _ := e.call(t, "DELETE", "/api/blackout/"+bo["id"].(string), e.write, nil); code != http.StatusOK {
		t.Fatalf("delete blackout: %d", code)
	}
	if code, out, _ = e.call(t, "POST", "/api/alert", e.write, alert); out["alert"].(map[string]any)["status"] != "open" {
		t.Errorf("repeat after the window: %d %v, want open", code, out["alert"].(map[string]any)["status"])
	}

	e.sink.Wait(t, 1, 30*time.Second) // told alone, before the heartbeat's alerts could join it

	// A sender with a 1 s heartbeat goes quiet, then comes back with a longer one.
	hb := body(map[string]any{"origin": "billing-cron", "timeout": 1, "tags": []string{"environment=production"}})
	if code, out, _ := e.call(t, "POST", "/api/heartbeat", e.write, hb); code != http.StatusCreated {
		t.Fatalf("heartbeat: %d %v", code, out)
	}
	var fail incident.Alert
	testenv.Eventually(t, "a HeartbeatFail alert", func() bool {
		list, err := e.db.FindAlerts(t.Context(), incident.Query{Page: 1, PageSize: 10,
			Filters: []incident.Filter{{Field: "resource", Values: []string{"billing-cron"}}}})
		if err != nil || list.Total != 1 {
			return false
		}
		fail = list.Alerts[0]
		return fail.Event == "HeartbeatFail" && fail.Status == incident.StatusOpen
	})
	hb = body(map[string]any{"origin": "billing-cron", "timeout": 3600, "tags": []string{"environment=production"}})
	if code, _, _ := e.call(t, "POST", "/api/heartbeat", e.write, hb); code != http.StatusCreated {
		t.Fatalf("heartbeat again: %d", code)
	}
	testenv.Eventually(t, "the heartbeat alert cleared", func() bool {
		a, err := e.db.GetAlert(t.Context(), fail.ID)
		return err == nil && a.Status == incident.StatusClosed
	})
	code, out, _ = e.call(t, "GET", "/api/heartbeats", e.read, nil)
	if code != http.StatusOK || out["total"] != float64(1) {
		t.Errorf("list heartbeats: %d %v", code, out)
	}
	// The chat heard of DiskFull once the blackout was gone, and of the heartbeat's silence
	// and return (one message or, grouped as a burst, one); never of the alert inside the
	// window.
	told := func() (n int, text string) {
		for _, p := range e.sink.Payloads() {
			if g, err := strconv.Atoi(p.Event.Attributes["grouped"]); err == nil {
				n += g
			} else {
				n++
			}
			text += p.Event.Type + " " + p.Event.Object + " | " + p.Title + " | " + p.Text + "\n"
		}
		return n, text
	}
	testenv.Eventually(t, "three alert changes told", func() bool { n, _ := told(); return n >= 3 })
	time.Sleep(time.Second)
	n, text := told()
	first := e.sink.Payloads()[0]
	if n != 3 || first.Event.Type != notify.EventAlertRaised || first.Event.Object != "db1" ||
		!strings.Contains(text, "HeartbeatFail on billing-cron") || !strings.Contains(text, "closed") {
		t.Errorf("chat was told %d changes:\n%s\nwant DiskFull raised on db1, then HeartbeatFail raised and closed", n, text)
	}
}
