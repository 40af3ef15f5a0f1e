package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
)

// incidentServer is a ferry server process with keys of each scope in its store.
type incidentServer struct {
	base           string
	reader, writer string // secrets of a read and a write key
	writerName     string
}

func startIncidentServer(t *testing.T) incidentServer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	dbPath := filepath.Join(dir, "ferry.db")
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nstore: sqlite://%s\ndelivery: {enabled: false}\n", addr, dir, dbPath)
	configPath := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, configPath, &syncBuffer{})
	base := "http://" + addr
	waitReady(t, base, s)

	db := openStore(t, dbPath)
	key := func(name string, scope apikey.Scope) string {
		secret, hash, prefix := apikey.Generate()
		if _, err := db.CreateAPIKey(t.Context(), name, []apikey.Scope{scope}, hash, prefix, nil); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	return incidentServer{base: base, reader: key("dashboards", apikey.ScopeRead), writer: key("oncall", apikey.ScopeWrite), writerName: "oncall"}
}

// send makes an HTTP request to the server with an API key and returns the answer's status
// and body.
func (s incidentServer) send(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// post sends an alert as an Alerta client does and returns its ID.
func (s incidentServer) post(t *testing.T, alert string) string {
	t.Helper()
	status, body := s.send(t, http.MethodPost, "/api/alert", s.writer, alert)
	var resp alerta.AlertResponse
	if err := json.Unmarshal(body, &resp); status != http.StatusCreated || err != nil || resp.Alert == nil {
		t.Fatalf("POST /api/alert: %d %s", status, body)
	}
	return resp.ID
}

// cli returns a runner of ferry commands that finds the server, and presents key when it
// is not empty, through the environment.
func (s incidentServer) cli(t *testing.T, key string) apiKeyCLI {
	env := map[string]string{"FERRY_SERVER": s.base}
	if key != "" {
		env["FERRY_API_KEY"] = key
	}
	return apiKeyCLI{t: t, env: env}
}

// getAlert runs `ferry incident get ID -o json`.
func getAlert(t *testing.T, c apiKeyCLI, id string) incident.Alert {
	t.Helper()
	stdout, _, err := c.run("incident", "get", id, "-o", "json")
	if err != nil {
		t.Fatalf("incident get %s: %v", id, err)
	}
	var a incident.Alert
	if err := json.Unmarshal([]byte(stdout), &a); err != nil {
		t.Fatalf("incident get -o json: %v", err)
	}
	return a
}

// TestIncidentCommands lists, reads and acts on alerts that an Alerta client sent to a real
// ferry server, checking each change through the API, and the errors a user meets: no key,
// a key of too weak a scope, an alert that does not exist, an action the status forbids.
func TestIncidentCommands(t *testing.T) {
	srv := startIncidentServer(t)
	web := srv.post(t, `{"resource":"web01","event":"NodeDown","environment":"production","severity":"major",
		"service":["web"],"text":"web01 is down","attributes":{"region":"eu"}}`)
	if again := srv.post(t, `{"resource":"web01","event":"NodeDown","environment":"production","severity":"major",
		"service":["web"],"text":"web01 is down"}`); again != web {
		t.Fatalf("the duplicate got ID %s, want %s", again, web)
	}
	disk := srv.post(t, `{"resource":"db01","event":"DiskFull","environment":"stage","severity":"minor",
		"service":["db"],"text":"disk 95% full"}`)
	writer := srv.cli(t, srv.writer)

	t.Run("list", func(t *testing.T) {
		stdout, _, err := writer.run("incident", "list")
		if err != nil {
			t.Fatal(err)
		}
		rows := fields(stdout)
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID SEVERITY STATUS ENVIRONMENT RESOURCE EVENT DUPL LAST RECEIVED RELEASE TEXT" {
			t.Fatalf("incident list printed:\n%s", stdout)
		}
		// Newest first; LAST RECEIVED is a date and a time, two fields.
		got := [][]string{append(rows[1][:7:7], rows[1][9:]...), append(rows[2][:7:7], rows[2][9:]...)}
		want := [][]string{
			{disk[:8], "minor", "open", "stage", "db01", "DiskFull", "0", "-", "disk", "95%", "full"},
			{web[:8], "major", "open", "production", "web01", "NodeDown", "1", "-", "web01", "is", "down"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("incident list rows (-want +got):\n%s", diff)
		}
	})

	t.Run("filters", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"--severity", "major"}, []string{web}},
			{[]string{"--status", "open", "--environment", "stage"}, []string{disk}},
			{[]string{"--service", "web", "--resource", "web01", "--event", "NodeDown"}, []string{web}},
			{[]string{"-q", "DISK"}, []string{disk}},
			{[]string{"--severity", "major,minor"}, []string{disk, web}},
			{[]string{"--status", "closed"}, nil},
		} {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				stdout, _, err := writer.run(append([]string{"incident", "list", "-o", "json"}, tt.args...)...)
				if err != nil {
					t.Fatal(err)
				}
				var list alerta.ListResponse
				if err := json.Unmarshal([]byte(stdout), &list); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, a := range list.Alerts {
					got = append(got, a.ID)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" || list.Total != len(tt.want) {
					t.Errorf("alerts (-want +got):\n%s(total %d)", diff, list.Total)
				}
			})
		}
		_, stderr, err := writer.run("incident", "list", "--limit", "1")
		if err != nil || !strings.Contains(stderr, "Showing 1 of 2 alerts") {
			t.Errorf("incident list --limit 1: err %v, stderr %q; want a note that there are more", err, stderr)
		}
	})

	t.Run("get", func(t *testing.T) {
		stdout, _, err := writer.run("incident", "get", web[:8])
		if err != nil {
			t.Fatal(err)
		}
		lines := normalized(stdout)
		for _, want := range []string{"ID: " + web, "Resource: web01", "Severity: major (was indeterminate, moreSevere)",
			"Status: open", "Service: web", "Attributes: region=eu", "Duplicates: 1 (last one a repeat)", "History:"} {
			if !lines[want] {
				t.Errorf("incident get printed no line %q:\n%s", want, stdout)
			}
		}
		if a := getAlert(t, writer, web); a.ID != web || a.DuplicateCount != 1 || len(a.History) == 0 {
			t.Errorf("incident get -o json = %+v", a)
		}
	})

	t.Run("actions", func(t *testing.T) {
		for _, tt := range []struct {
			args       []string
			status     incident.Status
			text       string
			timeoutSec int
		}{
			{[]string{"ack", web[:8], "--text", "looking", "--timeout", "2h"}, incident.StatusAck, "looking", 7200},
			{[]string{"shelve", web, "--timeout", "1h"}, incident.StatusShelved, "shelve operator action", 3600},
			{[]string{"unshelve", web}, incident.StatusAck, "unshelve operator action", 0},
			{[]string{"unack", web}, incident.StatusOpen, "unack operator action", 0},
			{[]string{"close", web, "--text", "fixed"}, incident.StatusClosed, "fixed", 0},
			{[]string{"open", web}, incident.StatusOpen, "open operator action", 0},
		} {
			stdout, _, err := writer.run(append([]string{"incident"}, tt.args...)...)
			if err != nil {
				t.Fatalf("incident %s: %v", tt.args[0], err)
			}
			if want := fmt.Sprintf("alert %s (NodeDown on web01 in production) is now %s\n", web[:8], tt.status); stdout != want {
				t.Errorf("incident %s printed %q, want %q", tt.args[0], stdout, want)
			}
			a := getAlert(t, writer, web)
			last := a.History[len(a.History)-1]
			got := []any{a.Status, last.ChangeType, last.Text, last.User, last.Timeout}
			want := []any{tt.status, tt.args[0], tt.text, srv.writerName, tt.timeoutSec}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after incident %s, status and last history (-want +got):\n%s", tt.args[0], diff)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		// The server's own message for the conflict, read with an HTTP client.
		code, body := srv.send(t, http.MethodPut, "/api/alert/"+disk+"/action", srv.writer, `{"action":"unshelve"}`)
		var answer alerta.ErrorResponse
		if err := json.Unmarshal(body, &answer); code != http.StatusConflict || err != nil || answer.Message == "" {
			t.Fatalf("unshelve of an open alert: %d %s", code, body)
		}
		var stdout, stderr bytes.Buffer
		t.Setenv("FERRY_SERVER", srv.base)
		t.Setenv("FERRY_API_KEY", srv.writer)
		if exit := Main(t.Context(), []string{"incident", "unshelve", disk}, &stdout, &stderr); exit != 1 ||
			stderr.String() != "ferry: "+answer.Message+"\n" {
			t.Errorf("ferry incident unshelve: exit %d, stderr %q; want the server's message %q", exit, stderr.String(), answer.Message)
		}

		missing := "00000000-0000-4000-8000-000000000000"
		for _, tt := range []struct {
			name   string
			cli    apiKeyCLI
			args   []string
			code   int   // of the *serverError, if the server answered
			target error // that the error wraps, if any
		}{
			{"no key", srv.cli(t, ""), []string{"incident", "list"}, http.StatusUnauthorized, errNoAPIKey},
			{"unknown key", srv.cli(t, "ferry_nosuchkey"), []string{"incident", "list"}, http.StatusUnauthorized, nil},
			{"read key acts", srv.cli(t, srv.reader), []string{"incident", "close", web}, http.StatusForbidden, nil},
			{"conflict", writer, []string{"incident", "unshelve", disk}, http.StatusConflict, nil},
			{"no such alert", writer, []string{"incident", "get", missing}, http.StatusNotFound, nil},
			{"no such prefix", writer, []string{"incident", "ack", "ffffffff"}, 0, errNotFound},
			{"prefix too short", writer, []string{"incident", "get", web[:4]}, 0, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := tt.cli.run(tt.args...)
				if err == nil {
					t.Fatal("no error")
				}
				var se *serverError
				switch {
				case tt.code != 0 && (!errors.As(err, &se) || se.Code != tt.code || se.Message == ""):
					t.Errorf("error %v, want the server's message with status %d", err, tt.code)
				case tt.code == 0 && errors.As(err, &se):
					t.Errorf("error %v came from the server, want one found before asking", err)
				}
				if tt.target != nil && !errors.Is(err, tt.target) {
					t.Errorf("error %v, want one wrapping %v", err, tt.target)
				}
			})
		}

		// Without a key, the message tells the user where to put one.
		stderr.Reset()
		t.Setenv("FERRY_API_KEY", "")
		if exit := Main(t.Context(), []string{"incident", "list"}, &stdout, &stderr); exit != 1 ||
			!strings.Contains(stderr.String(), "FERRY_API_KEY") || !strings.Contains(stderr.String(), "the server said: unauthorized") {
			t.Errorf("ferry incident list without a key: exit %d, stderr %q", exit, stderr.String())
		}
		// --api-key stands in for the environment.
		stdout.Reset()
		if exit := Main(t.Context(), []string{"incident", "list", "--api-key", srv.reader}, &stdout, &stderr); exit != 0 ||
			!strings.Contains(stdout.String(), disk[:8]) {
			t.Errorf("ferry incident list --api-key: exit %d, stdout %q, stderr %q", exit, stdout.String(), stderr.String())
		}
	})

	t.Run("notify with a key", func(t *testing.T) {
		// ferry notify's endpoints need no key; presenting one does no harm.
		stdout, _, err := writer.run("notify", "channels")
		if err != nil || strings.Join(strings.Fields(stdout), " ") != "NAME TYPE" {
			t.Errorf("notify channels with FERRY_API_KEY: err %v, stdout %q", err, stdout)
		}
	})
}
