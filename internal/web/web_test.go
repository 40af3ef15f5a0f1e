package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// fixture is a handler over a real SQLite store holding three releases of two applications.
type fixture struct {
	srv      *httptest.Server
	db       *store.DB
	releases []release.Release
	ready    error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	f := &fixture{db: db}
	base := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for i, r := range []release.Release{
		{Application: "shop", Environment: "production", Revision: "aaa111", Author: "Alice", CommitMessage: "first"},
		{Application: "shop", Environment: "stage", Revision: "bbb222", Author: "Bob"},
		{Application: "billing", Environment: "production", Revision: "ccc333"},
	} {
		r.StartedAt = base.Add(time.Duration(i) * time.Minute)
		r.Result = release.ResultPending
		if err := db.CreateRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
		f.releases = append(f.releases, r)
	}
	for i, typ := range []release.EventType{release.EventDeployStarted, release.EventDeploySucceeded} {
		ev := release.Event{ReleaseID: f.releases[0].ID, Type: typ, Time: base.Add(time.Duration(i) * time.Second),
			Summary: string(typ), Attributes: map[string]string{"step": fmt.Sprint(i)}}
		if err := db.AppendEvent(ctx, &ev); err != nil {
			t.Fatal(err)
		}
	}

	f.srv = httptest.NewServer(New(Options{
		Logger:   slog.New(slog.DiscardHandler),
		Registry: prometheus.NewRegistry(),
		Ready: []Check{
			{Name: "store", Fn: db.Ready},
			{Name: "switch", Fn: func(context.Context) error { return f.ready }},
		},
		Releases: db,
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if into != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("GET %s: Content-Type %q, body %s", path, ct, body)
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode
}

func TestListReleases(t *testing.T) {
	f := newFixture(t)
	ids := func(rs ...int) []int64 {
		var out []int64
		for _, i := range rs {
			out = append(out, f.releases[i].ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []int64
	}{
		{"", ids(2, 1, 0)},
		{"?application=shop", ids(1, 0)},
		{"?environment=production", ids(2, 0)},
		{"?application=shop&environment=production", ids(0)},
		{"?revision=bbb222", ids(1)},
		{"?result=pending", ids(2, 1, 0)},
		{"?result=failed", nil},
		{"?since=2026-11-25T20:01:00Z", ids(2, 1)},
		{"?until=2026-11-25T20:01:00Z", ids(0)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var page release.Page
			if code := f.get(t, "/api/v1/releases"+tt.query, &page); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []int64
			for _, r := range page.Releases {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("release ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListReleasesPaginates(t *testing.T) {
	f := newFixture(t)
	var got []int64
	path := "/api/v1/releases?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		var page release.Page
		if code := f.get(t, path, &page); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, code)
		}
		for _, r := range page.Releases {
			got = append(got, r.ID)
		}
		path = ""
		if page.Next != "" {
			path = "/api/v1/releases?limit=2&cursor=" + page.Next
		}
	}
	want := []int64{f.releases[2].ID, f.releases[1].ID, f.releases[0].ID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids over all pages (-want +got):\n%s", diff)
	}
}

func TestGetReleaseAndTimeline(t *testing.T) {
	f := newFixture(t)
	first := f.releases[0]

	var got release.Release
	if code := f.get(t, fmt.Sprintf("/api/v1/releases/%d", first.ID), &got); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("release (-want +got):\n%s", diff)
	}

	var tl release.Timeline
	if code := f.get(t, fmt.Sprintf("/api/v1/releases/%d/timeline", first.ID), &tl); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var types []release.EventType
	for _, e := range tl.Events {
		types = append(types, e.Type)
	}
	if diff := cmp.Diff([]release.EventType{release.EventDeployStarted, release.EventDeploySucceeded}, types); diff != "" {
		t.Errorf("timeline types (-want +got):\n%s", diff)
	}

	tl = release.Timeline{}
	if code := f.get(t, fmt.Sprintf("/api/v1/releases/%d/timeline?type=deploy.succeeded", first.ID), &tl); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(tl.Events) != 1 || tl.Events[0].Attributes["step"] != "1" {
		t.Errorf("filtered timeline = %+v, want the one deploy.succeeded event", tl.Events)
	}
}

func TestAPIErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path string
		want int
	}{
		{"/api/v1/releases/999999", http.StatusNotFound},
		{"/api/v1/releases/999999/timeline", http.StatusNotFound},
		{"/api/v1/releases/abc", http.StatusBadRequest},
		{"/api/v1/releases/-1", http.StatusBadRequest},
		{"/api/v1/releases?cursor=not-a-cursor", http.StatusBadRequest},
		{"/api/v1/releases?result=exploded", http.StatusBadRequest},
		{"/api/v1/releases?since=yesterday", http.StatusBadRequest},
		{"/api/v1/releases?limit=0", http.StatusBadRequest},
		{"/api/v1/releases?limit=many", http.StatusBadRequest},
		{"/api/v1/releases?app=shop", http.StatusBadRequest},
		{"/api/v1/releases/1/timeline?type=NOT%20A%20TYPE", http.StatusBadRequest},
		{"/api/v1/nothing-here", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var body apiError
			code := f.get(t, tt.path, &body)
			if code != tt.want || body.Error.Status != tt.want || body.Error.Message == "" {
				t.Errorf("status %d, body %+v; want %d with a message", code, body, tt.want)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t)
	read := func() (int, string) {
		resp, err := http.Get(f.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := read(); code != http.StatusOK || !strings.Contains(body, "[+]store ok") {
		t.Errorf("ready: %d %q", code, body)
	}
	f.ready = errors.New("api server gone")
	if code, body := read(); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]switch failed: api server gone") {
		t.Errorf("unready check: %d %q", code, body)
	}
	f.ready = nil
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := read(); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]store failed") {
		t.Errorf("closed store: %d %q", code, body)
	}
	if code := f.get(t, "/healthz", nil); code != http.StatusOK {
		t.Errorf("healthz with the store down = %d, want 200 (liveness is not readiness)", code)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	f.get(t, "/api/v1/releases", nil)
	f.get(t, "/api/v1/releases/999999", nil)
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`ferry_http_requests_total{code="200",handler="releases.list",method="get"} 1`,
		`ferry_http_requests_total{code="404",handler="releases.get",method="get"} 1`,
		`ferry_http_request_duration_seconds_bucket{handler="releases.list",method="get"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
