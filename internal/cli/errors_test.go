package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// errorServer is a ferry server process with API keys of each scope, made with ferry apikey
// create from the server's own configuration, as an operator makes the first ones.
type errorServer struct {
	incidentServer // base, reader and writer keys; send and cli
	admin          string
}

func startErrorServer(t *testing.T) errorServer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	configPath := filepath.Join(dir, "ferry.yaml")
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\ndelivery: {enabled: false}\n", addr, dir)
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, configPath, &syncBuffer{})
	base := "http://" + addr
	waitReady(t, base, s)
	keys := apiKeyCLI{t: t, env: map[string]string{"FERRY_CONFIG": configPath}}
	return errorServer{
		incidentServer: incidentServer{base: base, reader: keys.create("dashboards"),
			writer: keys.create("oncall", "--scope", "write"), writerName: "oncall"},
		admin: keys.create("errors-admin", "--scope", "admin"),
	}
}

// ingest posts event to the store endpoint that dsn names, authenticated with its key as
// an SDK does, and returns the answer's status.
func ingest(t *testing.T, dsn, event string) int {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := u.Scheme + "://" + u.Host + "/api" + u.Path + "/store/"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=ferry-test/1.0, sentry_key="+u.User.Username())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sentryEvent is a store payload as a Python SDK writes it: an exception raised in a
// library called from the application's main, with numbered breadcrumbs step-00, step-01...
func sentryEvent(n int, typ, value string, breadcrumbs int) string {
	crumbs := make([]map[string]any, breadcrumbs)
	for i := range crumbs {
		crumbs[i] = map[string]any{"timestamp": 1.7e9 + float64(i), "category": "http", "level": "info",
			"message": fmt.Sprintf("step-%02d", i)}
	}
	b, err := json.Marshal(map[string]any{
		"event_id": fmt.Sprintf("%032x", n), "level": "error", "platform": "python",
		"release": "shop@1.0", "environment": "production",
		"exception": map[string]any{"values": []any{map[string]any{
			"type": typ, "value": value,
			"stacktrace": map[string]any{"frames": []any{
				map[string]any{"function": "main", "module": "app", "filename": "app.py", "lineno": 12, "in_app": true},
				map[string]any{"function": "parse", "module": "lib.parser", "filename": "lib/parser.py", "lineno": 40,
					"in_app": false, "context_line": "    raise " + typ + "(msg)"},
			}},
		}}},
		"breadcrumbs": map[string]any{"values": crumbs},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dsnPattern is a DSN of a server on 127.0.0.1: the key, the port and the project ID.
var dsnPattern = regexp.MustCompile(`^http://([0-9a-f]{32})@127\.0\.0\.1:([0-9]+)/([0-9]+)$`)

// getProject runs `ferry project get REF -o json`.
func getProject(t *testing.T, c apiKeyCLI, ref string) projectAnswer {
	t.Helper()
	stdout, _, err := c.run("project", "get", ref, "-o", "json")
	if err != nil {
		t.Fatalf("project get %s: %v", ref, err)
	}
	var ans projectAnswer
	if err := json.Unmarshal([]byte(stdout), &ans); err != nil {
		t.Fatalf("project get -o json: %v", err)
	}
	return ans
}

// TestProjectCommands creates projects, rotates a DSN key and sets a rate limit against a
// real ferry server, checking with an SDK's request that the DSNs printed work, and that the
// key revoked stops working.
func TestProjectCommands(t *testing.T) {
	t.Parallel()
	srv := startErrorServer(t)
	admin, reader := srv.cli(t, srv.admin), srv.cli(t, srv.reader)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.base, "http://"), ":")

	stdout, stderr, err := admin.run("project", "create", "shop", "--rate-limit", "100")
	if err != nil {
		t.Fatal(err)
	}
	m := dsnPattern.FindStringSubmatch(strings.TrimSuffix(stdout, "\n"))
	if m == nil || m[2] != port || !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("project create printed %q on stdout, want the DSN http://KEY@127.0.0.1:%s/ID alone", stdout, port)
	}
	oldDSN, oldKey, shopID := strings.TrimSpace(stdout), m[1], m[3]
	if want := "Created project shop (ID " + shopID + "), accepting 100 events a minute."; !strings.Contains(stderr, want) {
		t.Errorf("project create said %q, want %q", stderr, want)
	}

	stdout, _, err = admin.run("project", "create", "web", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var created projectAnswer
	if err := json.Unmarshal([]byte(stdout), &created); err != nil {
		t.Fatalf("project create -o json printed %q: %v", stdout, err)
	}
	if p := created.Project; p.Name != "web" || p.RateLimit != 0 || len(created.Keys) != 1 ||
		created.Keys[0].DSN != fmt.Sprintf("http://%s@127.0.0.1:%s/%d", created.Keys[0].Public, port, p.ID) {
		t.Errorf("project create -o json = %s", stdout)
	}

	t.Run("list", func(t *testing.T) {
		stdout, _, err := reader.run("project", "list")
		if err != nil {
			t.Fatal(err)
		}
		rows := fields(stdout)
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID NAME RATE LIMIT CREATED" {
			t.Fatalf("project list printed:\n%s", stdout)
		}
		// CREATED is a date and a time, two fields.
		got := [][]string{rows[1][:3], rows[2][:3]}
		want := [][]string{{shopID, "shop", "100/min"}, {strconv.FormatInt(created.Project.ID, 10), "web", "default"}}
		if diff := cmp.Diff(want, got); diff != "" || len(rows[1]) != 5 || len(rows[2]) != 5 {
			t.Errorf("project list rows (-want +got):\n%s\n%s", diff, stdout)
		}

		var fromJSON, fromYAML struct {
			Projects []errtrack.Project `json:"projects"`
		}
		for format, v := range map[string]any{"json": &fromJSON, "yaml": &fromYAML} {
			stdout, _, err := reader.run("project", "list", "-o", format)
			if err == nil {
				err = yaml.Unmarshal([]byte(stdout), v)
			}
			if err != nil {
				t.Fatalf("project list -o %s: %v", format, err)
			}
		}
		if diff := cmp.Diff(fromJSON, fromYAML); diff != "" || len(fromJSON.Projects) != 2 {
			t.Errorf("project list -o yaml differs from -o json (-json +yaml):\n%s", diff)
		}
	})

	t.Run("get", func(t *testing.T) {
		stdout, _, err := reader.run("project", "get", "shop")
		if err != nil {
			t.Fatal(err)
		}
		lines := normalized(stdout)
		for _, want := range []string{"ID: " + shopID, "Name: shop", "Rate limit: 100 events a minute", "Keys:",
			"ID LABEL DSN CREATED REVOKED"} {
			if !lines[want] {
				t.Errorf("project get printed no line %q:\n%s", want, stdout)
			}
		}
		rows := fields(stdout)
		if last := rows[len(rows)-1]; last[1] != "default" || last[2] != oldDSN || last[len(last)-1] != "-" {
			t.Errorf("key row = %q, want the default key's DSN, not revoked", last)
		}
		if byID := getProject(t, reader, shopID); byID.Project.Name != "shop" || len(byID.Keys) != 1 {
			t.Errorf("project get %s -o json = %+v", shopID, byID)
		}
	})

	t.Run("rotate", func(t *testing.T) {
		stdout, stderr, err := admin.run("project", "key", "create", "shop", "--label", "rotation")
		if err != nil {
			t.Fatal(err)
		}
		m := dsnPattern.FindStringSubmatch(strings.TrimSuffix(stdout, "\n"))
		if m == nil || m[1] == oldKey || m[3] != shopID {
			t.Fatalf("project key create printed %q, want a new DSN of project %s", stdout, shopID)
		}
		newDSN := strings.TrimSpace(stdout)
		if !strings.Contains(stderr, "old keys keep working until you revoke them") {
			t.Errorf("project key create said %q, want that the old key still works", stderr)
		}
		if code := ingest(t, newDSN, sentryEvent(1, "ValueError", "bad input", 0)); code != http.StatusOK {
			t.Fatalf("an event with the new key: %d", code)
		}

		stdout, _, err = admin.run("project", "key", "revoke", "shop", oldKey)
		if err != nil || !strings.HasPrefix(stdout, `revoked key 1 "default" of project shop at `) {
			t.Fatalf("project key revoke = %q, %v", stdout, err)
		}
		// The old key was never used, so no server trusts it from its cache.
		if code := ingest(t, oldDSN, sentryEvent(2, "ValueError", "bad input", 0)); code != http.StatusUnauthorized {
			t.Errorf("an event with the revoked key: %d, want 401", code)
		}
		if code := ingest(t, newDSN, sentryEvent(3, "ValueError", "bad input", 0)); code != http.StatusOK {
			t.Errorf("an event with the new key after revoking the old: %d", code)
		}

		p := getProject(t, reader, "shop")
		var got []string
		for _, k := range p.Keys {
			got = append(got, fmt.Sprintf("%s %s revoked=%v", k.Label, k.DSN, k.RevokedAt != nil))
		}
		want := []string{"default " + oldDSN + " revoked=true", "rotation " + newDSN + " revoked=false"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("keys after the rotation (-want +got):\n%s", diff)
		}

		// Revoking it again is the server's conflict, with its message.
		_, _, err = admin.run("project", "key", "revoke", "shop", "1")
		if se := (*serverError)(nil); !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message == "" {
			t.Errorf("revoking a revoked key: %v, want the server's 409", err)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		stdout, _, err := admin.run("project", "rate-limit", "web", "250")
		if err != nil || stdout != "project web now accepts 250 events a minute; running servers apply it within 5s\n" {
			t.Fatalf("project rate-limit = %q, %v", stdout, err)
		}
		if p := getProject(t, reader, "web").Project; p.RateLimit != 250 {
			t.Errorf("rate limit after project rate-limit web 250: %d", p.RateLimit)
		}
		if _, _, err := admin.run("project", "rate-limit", "web", "0"); err != nil {
			t.Fatal(err)
		}
		if p := getProject(t, reader, "web").Project; p.RateLimit != 0 {
			t.Errorf("rate limit after project rate-limit web 0: %d", p.RateLimit)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			cli    apiKeyCLI
			args   []string
			code   int   // of the *serverError, if the server answered
			target error // that the error wraps, if any
		}{
			{"no key", srv.cli(t, ""), []string{"project", "list"}, http.StatusUnauthorized, errNoAPIKey},
			{"read key creates", reader, []string{"project", "create", "api"}, http.StatusForbidden, nil},
			{"name taken", admin, []string{"project", "create", "shop"}, http.StatusConflict, nil},
			{"bad name", admin, []string{"project", "create", "Shop_1"}, http.StatusBadRequest, nil},
			{"no such project", reader, []string{"project", "get", "nosuch"}, http.StatusNotFound, nil},
			{"no such key", admin, []string{"project", "key", "revoke", "web", "99"}, http.StatusNotFound, nil},
			{"key of another project", admin, []string{"project", "key", "revoke", "web", oldKey}, http.StatusNotFound, nil},
			{"rate limit not a number", admin, []string{"project", "rate-limit", "web", "lots"}, 0, nil},
			{"bad output", reader, []string{"project", "list", "-o", "xml"}, 0, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := tt.cli.run(tt.args...)
				checkCLIError(t, err, tt.code, tt.target)
			})
		}
	})
}

// checkCLIError fails t unless err is the server's answer with status code and a message,
// or for code 0 an error found before asking the server; and unless it wraps target.
func checkCLIError(t *testing.T, err error, code int, target error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var se *serverError
	if answered := errors.As(err, &se); answered != (code != 0) || answered && (se.Code != code || se.Message == "") {
		t.Errorf("error %v (from the server: %v), want status %d with the server's message, or 0 for none", err, answered, code)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v, want one wrapping %v", err, target)
	}
}

// serverMessage reads the message of the server's error answer to a request.
func serverMessage(t *testing.T, srv errorServer, method, path, key, body string, wantCode int) string {
	t.Helper()
	code, data := srv.send(t, method, path, key, body)
	var answer struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &answer); code != wantCode || err != nil || answer.Error.Message == "" {
		t.Fatalf("%s %s: %d %s, want %d with a message", method, path, code, data, wantCode)
	}
	return answer.Error.Message
}

// TestIssueCommands lists, reads and acts on the issue a Sentry event opened on a real
// ferry server, and checks the errors a user meets: no key, an issue that does not exist,
// an action the status forbids.
func TestIssueCommands(t *testing.T) {
	t.Parallel()
	srv := startErrorServer(t)
	admin, reader, writer := srv.cli(t, srv.admin), srv.cli(t, srv.reader), srv.cli(t, srv.writer)
	dsn, _, err := admin.run("project", "create", "shop")
	if err != nil {
		t.Fatal(err)
	}
	dsn = strings.TrimSpace(dsn)
	if code := ingest(t, dsn, sentryEvent(1, "ValueError", "bad input", 12)); code != http.StatusOK {
		t.Fatalf("ingest: %d", code)
	}

	stdout, _, err := reader.run("issue", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list errtrack.IssueList
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || len(list.Issues) != 1 || list.Total != 1 {
		t.Fatalf("issue list -o json = %s (%v), want the one issue", stdout, err)
	}
	id := strconv.FormatInt(list.Issues[0].ID, 10)

	t.Run("list", func(t *testing.T) {
		stdout, _, err := reader.run("issue", "list")
		if err != nil {
			t.Fatal(err)
		}
		rows := fields(stdout)
		if len(rows) != 2 || strings.Join(rows[0], " ") != "ID STATUS LEVEL COUNT USERS LAST SEEN FIRST RELEASE TITLE" {
			t.Fatalf("issue list printed:\n%s", stdout)
		}
		// LAST SEEN is a date and a time, two fields.
		got := append(rows[1][:5:5], rows[1][7:]...)
		want := []string{id, "unresolved", "error", "1", "0", "shop@1.0", "ValueError:", "bad", "input"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("issue list row (-want +got):\n%s", diff)
		}
	})

	t.Run("filters", func(t *testing.T) {
		// A second issue, seen first after the first, which then happens again.
		for n, event := range []string{sentryEvent(2, "KeyError", "'sku'", 0), sentryEvent(3, "ValueError", "bad input", 12)} {
			if code := ingest(t, dsn, event); code != http.StatusOK {
				t.Fatalf("ingest of event %d: %d", n+2, code)
			}
		}
		for _, tt := range []struct {
			args []string
			want []string // titles
		}{
			{nil, []string{"ValueError: bad input", "KeyError: 'sku'"}},
			{[]string{"--sort", "first_seen"}, []string{"KeyError: 'sku'", "ValueError: bad input"}},
			{[]string{"--project", "shop", "--environment", "production", "--release", "shop@1.0", "--sort", "count"},
				[]string{"ValueError: bad input", "KeyError: 'sku'"}},
			{[]string{"--status", "unresolved,ignored", "--level", "error", "-q", "BAD"}, []string{"ValueError: bad input"}},
			{[]string{"--status", "resolved"}, nil},
			{[]string{"--release", "shop@2.0"}, nil},
		} {
			t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
				stdout, _, err := reader.run(append([]string{"issue", "list", "-o", "json"}, tt.args...)...)
				if err != nil {
					t.Fatal(err)
				}
				var list errtrack.IssueList
				if err := json.Unmarshal([]byte(stdout), &list); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, is := range list.Issues {
					got = append(got, is.Title)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" || list.Total != len(tt.want) {
					t.Errorf("issues (-want +got):\n%s(total %d)", diff, list.Total)
				}
			})
		}
		_, stderr, err := reader.run("issue", "list", "--limit", "1")
		if err != nil || !strings.Contains(stderr, "Showing 1 of 2 issues") {
			t.Errorf("issue list --limit 1: err %v, stderr %q; want a note that there are more", err, stderr)
		}
		_, stderr, err = reader.run("issue", "list", "--status", "ignored")
		if err != nil || stderr != "No issues.\n" {
			t.Errorf("issue list with nothing to list: err %v, stderr %q", err, stderr)
		}
	})

	t.Run("get", func(t *testing.T) {
		stdout, _, err := reader.run("issue", "get", id)
		if err != nil {
			t.Fatal(err)
		}
		lines := normalized(stdout)
		for _, want := range []string{"ID: " + id, "Title: ValueError: bad input", "Culprit: app.main in app.py",
			"Status: unresolved", "Events: 2", "First release: shop@1.0", "Environments: production",
			"RELEASE ENVIRONMENT EVENTS FIRST SEEN LAST SEEN", "ValueError: bad input",
			"Breadcrumbs (the last 10 of 12):"} {
			if !lines[want] {
				t.Errorf("issue get printed no line %q:\n%s", want, stdout)
			}
		}
		// The stack trace, innermost frame first, the application's own marked.
		want := "ValueError: bad input\n" +
			"    lib.parser.parse at lib/parser.py:40\n" +
			"        raise ValueError(msg)\n" +
			"  → app.main at app.py:12\n"
		if !strings.Contains(stdout, want) {
			t.Errorf("issue get printed no stack trace\n%s\nin:\n%s", want, stdout)
		}
		if !slices.ContainsFunc(fields(stdout), func(row []string) bool {
			return len(row) > 3 && cmp.Equal(row[:3], []string{"shop@1.0", "production", "2"})
		}) {
			t.Errorf("issue get printed no row for release shop@1.0:\n%s", stdout)
		}
		for i := range 12 {
			crumb := fmt.Sprintf("step-%02d", i)
			if shown := strings.Contains(stdout, crumb); shown != (i >= 2) {
				t.Errorf("breadcrumb %s shown: %v, want only the last 10", crumb, shown)
			}
		}

		// -o json is the server's answer as it sent it.
		stdout, _, err = reader.run("issue", "get", id, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		_, body := srv.send(t, http.MethodGet, "/api/v1/issues/"+id, srv.reader, "")
		var fromCLI, fromAPI any
		if err := json.Unmarshal([]byte(stdout), &fromCLI); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &fromAPI); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fromAPI, fromCLI); diff != "" {
			t.Errorf("issue get -o json differs from the API's answer (-api +cli):\n%s", diff)
		}
	})

	t.Run("actions", func(t *testing.T) {
		for _, tt := range []struct {
			args       []string
			status     errtrack.Status
			resolvedIn string
			said       string
		}{
			{[]string{"resolve", id}, errtrack.StatusResolved, "", "resolved"},
			{[]string{"ignore", id}, errtrack.StatusIgnored, "", "ignored"},
			{[]string{"reopen", id}, errtrack.StatusUnresolved, "", "unresolved"},
			{[]string{"resolve", id, "--in-next-release"}, errtrack.StatusResolvedInNextRelease, "shop@1.0",
				"resolved in the next release after shop@1.0"},
			{[]string{"resolve", id, "--release", "shop@1.1"}, errtrack.StatusResolved, "shop@1.1", "resolved in shop@1.1"},
		} {
			stdout, _, err := writer.run(append([]string{"issue"}, tt.args...)...)
			if err != nil {
				t.Fatalf("issue %s: %v", strings.Join(tt.args, " "), err)
			}
			if want := fmt.Sprintf("issue %s (ValueError: bad input) is now %s\n", id, tt.said); stdout != want {
				t.Errorf("issue %s printed %q, want %q", strings.Join(tt.args, " "), stdout, want)
			}
			var d issueDetail
			stdout, _, err = reader.run("issue", "get", id, "-o", "json")
			if err := errors.Join(err, json.Unmarshal([]byte(stdout), &d)); err != nil {
				t.Fatal(err)
			}
			if got := []string{string(d.Issue.Status), d.Issue.ResolvedIn}; !cmp.Equal(got, []string{string(tt.status), tt.resolvedIn}) {
				t.Errorf("after issue %s: status and release %q, want %s %q", strings.Join(tt.args, " "), got, tt.status, tt.resolvedIn)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		// The server's own messages, read with an HTTP client.
		missing := serverMessage(t, srv, http.MethodGet, "/api/v1/issues/999999", srv.reader, "", http.StatusNotFound)
		var stdout, stderr bytes.Buffer
		if exit := Main(t.Context(), []string{"issue", "get", "999999", "--server", srv.base, "--api-key", srv.reader},
			&stdout, &stderr); exit != 1 || stderr.String() != "ferry: "+missing+"\n" {
			t.Errorf("ferry issue get 999999: exit %d, stderr %q; want the server's message %q", exit, stderr.String(), missing)
		}

		unauthorized := serverMessage(t, srv, http.MethodPost, "/api/v1/issues/"+id+"/actions", "",
			`{"action":"reopen"}`, http.StatusUnauthorized)
		_, _, err := srv.cli(t, "").run("issue", "resolve", id)
		checkCLIError(t, err, http.StatusUnauthorized, errNoAPIKey)
		if err != nil && !strings.HasSuffix(err.Error(), "the server said: "+unauthorized) {
			t.Errorf("issue resolve without a key: %q, want the server's message %q", err, unauthorized)
		}

		for _, tt := range []struct {
			name string
			cli  apiKeyCLI
			args []string
			code int
		}{
			{"read key acts", reader, []string{"issue", "ignore", id}, http.StatusForbidden},
			{"status forbids", writer, []string{"issue", "resolve", id}, http.StatusConflict},
			{"no such issue", writer, []string{"issue", "reopen", "999999"}, http.StatusNotFound},
			{"not an issue ID", reader, []string{"issue", "get", "abc"}, http.StatusBadRequest},
			{"unknown status", reader, []string{"issue", "list", "--status", "fixed"}, http.StatusBadRequest},
			{"unknown sort", reader, []string{"issue", "list", "--sort", "title"}, http.StatusBadRequest},
			{"no such project", reader, []string{"issue", "list", "--project", "nosuch"}, http.StatusNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := tt.cli.run(tt.args...)
				checkCLIError(t, err, tt.code, nil)
			})
		}
	})
}
