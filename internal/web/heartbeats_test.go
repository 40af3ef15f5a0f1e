package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
)

// heartbeatFixture serves the heartbeat and blackout API over a SQLite store, with the hub
// over the same store, behind the keys of authFixture.
type heartbeatFixture struct {
	*authFixture
	hub *incident.Hub
	h   http.Handler
}

func newHeartbeatFixture(t *testing.T) *heartbeatFixture {
	t.Helper()
	f := &heartbeatFixture{authFixture: newAuthFixture(t)}
	f.hub = incident.NewHub(f.db, incident.HubOptions{})
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	s := &server{log: log, opts: Options{Logger: log, Incidents: IncidentOptions{
		Hub: f.hub, Keys: f.db, Alerta: alerta.Options{DefaultEnvironment: "Staging"},
	}}}
	mux := http.NewServeMux()
	s.routeHeartbeats(func(pattern, _ string, h http.Handler) { mux.Handle(pattern, h) },
		func(scope apikey.Scope, h http.HandlerFunc) http.Handler { return RequireKey(log, f.db, scope, h) }, f.db, f.db)
	f.h = mux
	return f
}

// do sends a request with the key secret and decodes the JSON answer into a map.
func (f *heartbeatFixture) do(t *testing.T, method, path, secret, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if secret != "" {
		req.Header.Set("Authorization", "Key "+secret)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, rec.Body, err)
	}
	return rec.Code, out, rec.Header()
}

func TestHeartbeatAPI(t *testing.T) {
	f := newHeartbeatFixture(t)
	code, res, _ := f.do(t, "POST", "/api/heartbeat", f.write,
		`{"origin":"cron/db1","tags":["db"],"attributes":{"region":"eu"},"timeout":120,"createTime":"`+
			time.Now().UTC().Format(time.RFC3339Nano)+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/heartbeat = %d %v, want 201", code, res)
	}
	hb, _ := res["heartbeat"].(map[string]any)
	id, _ := res["id"].(string)
	if res["status"] != "ok" || id == "" || hb["id"] != id {
		t.Fatalf("answer %v: want status ok and the heartbeat's id", res)
	}
	for k, want := range map[string]any{"origin": "cron/db1", "type": "Heartbeat", "timeout": 120.0, "maxLatency": 2000.0,
		"status": "ok", "since": 0.0, "tags": []any{"db"}, "attributes": map[string]any{"region": "eu"}} {
		if diff := cmp.Diff(want, hb[k]); diff != "" {
			t.Errorf("heartbeat %s (-want +got):\n%s", k, diff)
		}
	}
	for _, k := range []string{"createTime", "receiveTime", "latency"} {
		if _, ok := hb[k]; !ok {
			t.Errorf("heartbeat has no %s: %v", k, hb)
		}
	}

	// The same sender again: the same heartbeat.
	if code, res, _ := f.do(t, "POST", "/api/heartbeat", f.admin, `{"origin":"cron/db1"}`); code != http.StatusCreated || res["id"] != id {
		t.Errorf("second heartbeat = %d %v, want 201 with id %s", code, res, id)
	}
	code, res, _ = f.do(t, "GET", "/api/heartbeats", f.read, "")
	if list, _ := res["heartbeats"].([]any); code != http.StatusOK || res["total"] != 1.0 || len(list) != 1 {
		t.Errorf("GET /api/heartbeats = %d %v, want one", code, res)
	}
	code, res, _ = f.do(t, "GET", "/api/heartbeats?status=expired", f.read, "")
	if code != http.StatusOK || res["total"] != 0.0 || res["message"] != "not found" {
		t.Errorf("GET /api/heartbeats?status=expired = %d %v, want none", code, res)
	}
	code, res, _ = f.do(t, "GET", "/api/heartbeat/"+id, f.read, "")
	if hb, _ := res["heartbeat"].(map[string]any); code != http.StatusOK || res["total"] != 1.0 || hb["id"] != id {
		t.Errorf("GET /api/heartbeat/{id} = %d %v", code, res)
	}

	// Deleting takes admin.
	if code, _, _ := f.do(t, "DELETE", "/api/heartbeat/"+id, f.write, ""); code != http.StatusForbidden {
		t.Errorf("DELETE with a write key = %d, want 403", code)
	}
	if code, res, _ := f.do(t, "DELETE", "/api/heartbeat/"+id, f.admin, ""); code != http.StatusOK || res["status"] != "ok" {
		t.Errorf("DELETE with an admin key = %d %v, want 200 ok", code, res)
	}
	code, res, _ = f.do(t, "GET", "/api/heartbeat/"+id, f.read, "")
	if code != http.StatusNotFound || res["status"] != "error" || res["code"] != 404.0 {
		t.Errorf("GET after DELETE = %d %v, want Alerta's 404", code, res)
	}
}

func TestHeartbeatAPIErrors(t *testing.T) {
	f := newHeartbeatFixture(t)
	tests := []struct {
		name, method, path, secret, body string
		status                           int
		errors                           []any // Alerta's errors list, when the test checks it
	}{
		{"no key", "POST", "/api/heartbeat", "", `{"origin":"o"}`, http.StatusUnauthorized, nil},
		{"read key", "POST", "/api/heartbeat", f.read, `{"origin":"o"}`, http.StatusForbidden, nil},
		{"malformed", "POST", "/api/heartbeat", f.write, `{"origin":`, http.StatusBadRequest, nil},
		{"no origin", "POST", "/api/heartbeat", f.write, `{"timeout":60}`, http.StatusBadRequest, []any{"origin: required"}},
		{"bad fields", "POST", "/api/heartbeat", f.write, `{"origin":"o","tags":"a","timeout":-5}`, http.StatusBadRequest,
			[]any{"tags: want a list of strings"}},
		{"too large", "POST", "/api/heartbeat", f.write, `{"origin":"` + strings.Repeat("x", maxAlertaBody) + `"}`,
			http.StatusRequestEntityTooLarge, nil},
		{"unknown status", "GET", "/api/heartbeats?status=stale", f.read, "", http.StatusBadRequest,
			[]any{`status: "stale" is not a status`}},
		{"unknown heartbeat", "GET", "/api/heartbeat/nope", f.read, "", http.StatusNotFound, nil},
		{"delete unknown", "DELETE", "/api/heartbeat/nope", f.admin, "", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, res, _ := f.do(t, tt.method, tt.path, tt.secret, tt.body)
			if code != tt.status {
				t.Fatalf("status = %d %v, want %d", code, res, tt.status)
			}
			if tt.errors != nil {
				if diff := cmp.Diff(tt.errors, res["errors"]); diff != "" || res["status"] != "error" || res["code"] != float64(tt.status) {
					t.Errorf("answer %v; errors (-want +got):\n%s", res, diff)
				}
			}
		})
	}
}

// TestHeartbeatClearsItsAlert walks an expiry as housekeeping and a returning sender see it:
// the raised HeartbeatFail is closed by the sender's next heartbeat, once.
func TestHeartbeatClearsItsAlert(t *testing.T) {
	f := newHeartbeatFixture(t)
	ctx := t.Context()
	if code, res, _ := f.do(t, "POST", "/api/heartbeat", f.write, `{"origin":"cron/db1","timeout":60,"tags":["environment=Prod"]}`); code != http.StatusCreated {
		t.Fatalf("POST /api/heartbeat = %d %v", code, res)
	}
	// Housekeeping, two minutes on.
	later := time.Now().Add(2 * time.Minute)
	expired, err := f.db.ExpiredHeartbeats(ctx, later)
	if err != nil || len(expired) != 1 {
		t.Fatalf("ExpiredHeartbeats = %v, %v; want the one", expired, err)
	}
	raised, err := f.hub.Receive(ctx, expired[0].FailAlert(later, "Staging"))
	if err != nil {
		t.Fatal(err)
	}
	if marked, err := f.db.MarkHeartbeatAlerted(ctx, expired[0], true); err != nil || !marked {
		t.Fatalf("MarkHeartbeatAlerted = %v, %v", marked, err)
	}
	if raised.Alert.Status != incident.StatusOpen || raised.Alert.Environment != "Prod" || raised.Alert.Resource != "cron/db1" {
		t.Fatalf("raised %+v, want an open alert on cron/db1 in Prod", raised.Alert)
	}

	// The sender comes back: the alert closes.
	if code, res, _ := f.do(t, "POST", "/api/heartbeat", f.write, `{"origin":"cron/db1","timeout":60}`); code != http.StatusCreated {
		t.Fatalf("POST /api/heartbeat after expiry = %d %v", code, res)
	}
	a, err := f.hub.Get(ctx, raised.Alert.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != incident.StatusClosed || a.Event != incident.EventHeartbeatOK || a.Severity != incident.SeverityNormal {
		t.Errorf("alert after the sender came back: %s %s %s, want a closed HeartbeatOK", a.Event, a.Severity, a.Status)
	}
	// Once: the next heartbeat touches no alert.
	if code, _, _ := f.do(t, "POST", "/api/heartbeat", f.write, `{"origin":"cron/db1","timeout":60}`); code != http.StatusCreated {
		t.Fatal(code)
	}
	list, err := f.hub.Find(ctx, incident.Query{Page: 1, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Alerts) != 1 || list.Alerts[0].DuplicateCount != 0 || len(list.Alerts[0].History) != 2 {
		t.Errorf("alerts after another heartbeat: %+v; want the one, raised and cleared once", list.Alerts)
	}
}

func TestBlackoutAPI(t *testing.T) {
	f := newHeartbeatFixture(t)
	code, res, header := f.do(t, "POST", "/api/blackout", f.write,
		`{"environment":"Production","resource":"db1","duration":7200,"user":"mallory","text":"disk swap"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/blackout = %d %v, want 201", code, res)
	}
	b, _ := res["blackout"].(map[string]any)
	id, _ := res["id"].(string)
	if res["status"] != "ok" || id == "" || b["id"] != id || header.Get("Location") != "/api/blackout/"+id {
		t.Fatalf("answer %v, Location %q: want status ok, the blackout's id and its Location", res, header.Get("Location"))
	}
	for k, want := range map[string]any{"environment": "Production", "resource": "db1", "priority": 2.0, "duration": 7200.0,
		"status": "active", "user": "writer", "text": "disk swap", "service": []any{}, "tags": []any{}} {
		if diff := cmp.Diff(want, b[k]); diff != "" {
			t.Errorf("blackout %s (-want +got):\n%s", k, diff)
		}
	}
	if r, _ := b["remaining"].(float64); r < 7190 || r > 7200 {
		t.Errorf("remaining = %v, want about 7200", b["remaining"])
	}

	// An admin may name the user; a pending window is listed as pending.
	start := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, res, _ = f.do(t, "POST", "/api/blackout", f.admin,
		`{"environment":"Production","service":["billing"],"startTime":"`+start+`","user":"ops"}`)
	pending, _ := res["blackout"].(map[string]any)
	if code != http.StatusCreated || pending["user"] != "ops" || pending["status"] != "pending" || pending["remaining"] != 3600.0 {
		t.Errorf("pending blackout = %d %v", code, res)
	}

	code, res, _ = f.do(t, "GET", "/api/blackouts", f.read, "")
	if list, _ := res["blackouts"].([]any); code != http.StatusOK || res["total"] != 2.0 || len(list) != 2 {
		t.Errorf("GET /api/blackouts = %d %v, want two", code, res)
	}
	code, res, _ = f.do(t, "GET", "/api/blackouts?status=pending", f.read, "")
	if list, _ := res["blackouts"].([]any); code != http.StatusOK || res["total"] != 1.0 || len(list) != 1 {
		t.Errorf("GET /api/blackouts?status=pending = %d %v, want one", code, res)
	}
	code, res, _ = f.do(t, "GET", "/api/blackout/"+id, f.read, "")
	if got, _ := res["blackout"].(map[string]any); code != http.StatusOK || res["total"] != 1.0 || got["id"] != id {
		t.Errorf("GET /api/blackout/{id} = %d %v", code, res)
	}

	// The active one is what the hub's blackout check sees.
	active, err := f.db.ActiveBlackouts(t.Context(), time.Now())
	if err != nil || len(active) != 1 || active[0].ID != id {
		t.Errorf("ActiveBlackouts = %v, %v; want %s", active, err, id)
	}

	if code, res, _ := f.do(t, "DELETE", "/api/blackout/"+id, f.write, ""); code != http.StatusOK || res["status"] != "ok" {
		t.Errorf("DELETE /api/blackout/{id} = %d %v, want 200 ok", code, res)
	}
	if code, _, _ := f.do(t, "GET", "/api/blackout/"+id, f.read, ""); code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
}

func TestBlackoutAPIErrors(t *testing.T) {
	f := newHeartbeatFixture(t)
	tests := []struct {
		name, method, path, secret, body string
		status                           int
		errors                           []any
	}{
		{"no key", "POST", "/api/blackout", "", `{"environment":"E"}`, http.StatusUnauthorized, nil},
		{"read key", "POST", "/api/blackout", f.read, `{"environment":"E"}`, http.StatusForbidden, nil},
		{"read key deletes", "DELETE", "/api/blackout/x", f.read, "", http.StatusForbidden, nil},
		{"not an object", "POST", "/api/blackout", f.write, `[]`, http.StatusBadRequest, nil},
		{"no environment", "POST", "/api/blackout", f.write, `{"resource":"db1"}`, http.StatusBadRequest,
			[]any{"environment: required"}},
		{"inverted window", "POST", "/api/blackout", f.write,
			`{"environment":"E","startTime":"2026-05-04T10:00:00Z","endTime":"2026-05-04T09:00:00Z"}`, http.StatusBadRequest,
			[]any{"endTime: must be after startTime"}},
		{"unknown status", "GET", "/api/blackouts?status=on", f.read, "", http.StatusBadRequest, nil},
		{"unknown blackout", "GET", "/api/blackout/nope", f.read, "", http.StatusNotFound, nil},
		{"delete unknown", "DELETE", "/api/blackout/nope", f.write, "", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, res, _ := f.do(t, tt.method, tt.path, tt.secret, tt.body)
			if code != tt.status {
				t.Fatalf("status = %d %v, want %d", code, res, tt.status)
			}
			if tt.errors != nil {
				if diff := cmp.Diff(tt.errors, res["errors"]); diff != "" || res["status"] != "error" {
					t.Errorf("answer %v; errors (-want +got):\n%s", res, diff)
				}
			}
		})
	}
	if code, res, _ := f.do(t, "GET", "/api/blackouts", f.read, ""); code != http.StatusOK || res["message"] != "not found" {
		t.Errorf("GET /api/blackouts of none = %d %v, want 200 not found", code, res)
	}
}
