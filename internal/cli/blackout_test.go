package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/incident"
)

// blackoutAPI records the blackout requests the CLI sends and answers them in Alerta's format,
// as ferry server's /api/blackout endpoints do (see internal/web/heartbeats_test.go for those).
type blackoutAPI struct {
	mu       sync.Mutex
	requests []string // "METHOD path body"
	stored   incident.Blackout
}

func (a *blackoutAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "id": a.stored.ID, "blackout": a.stored})
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "total": 1, "blackouts": []incident.Blackout{a.stored}})
	case r.URL.Path == "/api/blackout/b-1":
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "message": "not found", "code": 404})
	}
}

func runBlackout(t *testing.T, server string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, lookupEnv: func(string) (string, bool) { return "", false }}
	cmd := newBlackoutCmd(e)
	cmd.SetArgs(append(args, "--server", server))
	cmd.SetOut(&out)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestBlackoutCreate(t *testing.T) {
	start := time.Date(2026, 5, 4, 22, 0, 0, 0, time.UTC)
	api := &blackoutAPI{stored: incident.Blackout{ID: "b-1", Environment: "Production", Resource: "db1", Service: []string{"billing"},
		StartTime: start, EndTime: start.Add(2 * time.Hour), Duration: 7200, Status: incident.BlackoutPending, Remaining: 7200}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	tests := []struct {
		name string
		args []string
		want string // the request
	}{
		{"environment only", []string{"--environment", "Production"},
			`POST /api/blackout {"environment":"Production"}`},
		{"narrowed, with a duration", []string{"--environment", "Production", "--service", "billing", "--service", "web",
			"--resource", "db1", "--event", "DiskFull", "--group", "Storage", "--tag", "eu", "--duration", "2h30m", "--text", "swap"},
			`POST /api/blackout {"environment":"Production","service":["billing","web"],"resource":"db1","event":"DiskFull",` +
				`"group":"Storage","tags":["eu"],"duration":9000,"text":"swap"}`},
		{"a window", []string{"--environment", "Production", "--start", "2026-05-05T00:00:00+02:00", "--end", "2026-05-05T02:00:00+02:00"},
			`POST /api/blackout {"environment":"Production","startTime":"2026-05-04T22:00:00.000Z","endTime":"2026-05-05T00:00:00.000Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api.mu.Lock()
			api.requests = nil
			api.mu.Unlock()
			out, err := runBlackout(t, srv.URL, append([]string{"create"}, tt.args...)...)
			if err != nil {
				t.Fatalf("blackout create: %v\n%s", err, out)
			}
			if diff := cmp.Diff([]string{tt.want}, api.requests); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(out, "created blackout b-1 covering service=billing,resource=db1 in Production, pending from ") {
				t.Errorf("output %q", out)
			}
		})
	}

	out, err := runBlackout(t, srv.URL, "create", "--environment", "Production", "-o", "json")
	var b incident.Blackout
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.ID != "b-1" {
		t.Errorf("create -o json = %q, %v; want the blackout as JSON", out, err)
	}
}

func TestBlackoutCreateBadFlags(t *testing.T) {
	api := &blackoutAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, args := range [][]string{
		{},
		{"--environment", " "},
		{"--environment", "E", "--duration", "1h", "--end", "2026-05-05T02:00:00Z"},
		{"--environment", "E", "--duration", "-1h"},
		{"--environment", "E", "--duration", "10ms"},
		{"--environment", "E", "--start", "tomorrow"},
		{"--environment", "E", "-o", "xml"},
	} {
		if _, err := runBlackout(t, srv.URL, append([]string{"create"}, args...)...); err == nil {
			t.Errorf("blackout create %v succeeded", args)
		}
	}
	if len(api.requests) != 0 {
		t.Errorf("bad flags reached the server: %v", api.requests)
	}
}

func TestBlackoutListDelete(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	api := &blackoutAPI{stored: incident.Blackout{ID: "b-1", Environment: "Production", Tags: []string{"eu", "rack=7"},
		StartTime: start, EndTime: start.Add(time.Hour), Status: incident.BlackoutActive, Remaining: 3540, User: "alice",
		Text: "disk\nswap"}}
	srv := httptest.NewServer(api)
	defer srv.Close()

	out, err := runBlackout(t, srv.URL, "list", "--status", "active")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Fields(lines[0])[0] != "ID" {
		t.Fatalf("list printed %q, want a header and one row", out)
	}
	for _, want := range []string{"b-1", "Production", "tags=eu+rack=7", "active", "59m0s", "alice", "disk swap"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	out, err = runBlackout(t, srv.URL, "list", "-o", "json")
	var bs []incident.Blackout
	if err != nil || json.Unmarshal([]byte(out), &bs) != nil || len(bs) != 1 {
		t.Errorf("list -o json = %q, %v", out, err)
	}

	if out, err := runBlackout(t, srv.URL, "delete", "b-1"); err != nil || out != "deleted blackout b-1\n" {
		t.Errorf("delete = %q, %v", out, err)
	}
	if _, err := runBlackout(t, srv.URL, "delete", "nope"); err == nil {
		t.Errorf("delete of an unknown blackout succeeded")
	}
	want := []string{"GET /api/blackouts?status=active", "GET /api/blackouts", "DELETE /api/blackout/b-1", "DELETE /api/blackout/nope"}
	if diff := cmp.Diff(want, api.requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
