package release_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/release"
)

var (
	start  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	finish = start.Add(90 * time.Second)
)

func validRelease() release.Release {
	return release.Release{
		Application: "shop",
		Environment: "production",
		Revision:    "4f2a9c1",
		StartedAt:   start,
		Result:      release.ResultPending,
	}
}

func TestReleaseValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*release.Release)
		valid  bool
	}{
		{"pending", func(*release.Release) {}, true},
		{"succeeded with finish", func(r *release.Release) { r.Result, r.FinishedAt = release.ResultSucceeded, &finish }, true},
		{"finish equal to start", func(r *release.Release) { r.Result, r.FinishedAt = release.ResultFailed, &start }, true},
		{"unicode author", func(r *release.Release) { r.Author = "Zoë Ångström" }, true},
		{"no application", func(r *release.Release) { r.Application = "" }, false},
		{"no environment", func(r *release.Release) { r.Environment = "" }, false},
		{"no revision", func(r *release.Release) { r.Revision = "" }, false},
		{"long application", func(r *release.Release) { r.Application = strings.Repeat("a", 254) }, false},
		{"invalid UTF-8", func(r *release.Release) { r.Author = "\xff" }, false},
		{"NUL byte", func(r *release.Release) { r.CommitMessage = "fix\x00" }, false},
		{"no start", func(r *release.Release) { r.StartedAt = time.Time{} }, false},
		{"year 10000", func(r *release.Release) { r.StartedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"empty result", func(r *release.Release) { r.Result = "" }, false},
		{"unknown result", func(r *release.Release) { r.Result = "rolled-back" }, false},
		{"pending with finish", func(r *release.Release) { r.FinishedAt = &finish }, false},
		{"succeeded without finish", func(r *release.Release) { r.Result = release.ResultSucceeded }, false},
		{"finish before start", func(r *release.Release) {
			early := start.Add(-time.Second)
			r.Result, r.FinishedAt = release.ResultFailed, &early
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRelease()
			tt.modify(&r)
			checkValid(t, r.Validate(), tt.valid)
		})
	}
}

func checkValid(t *testing.T, err error, valid bool) {
	t.Helper()
	if valid && err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	if !valid && !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("Validate() = %v, want ErrInvalid", err)
	}
}

func TestReleaseFinish(t *testing.T) {
	finished := validRelease()
	finished.Result, finished.FinishedAt = release.ResultSucceeded, &finish
	tests := []struct {
		name    string
		release release.Release
		result  release.Result
		at      time.Time
		wantErr error
	}{
		{"succeeded", validRelease(), release.ResultSucceeded, finish, nil},
		{"failed", validRelease(), release.ResultFailed, finish, nil},
		{"pending is not an outcome", validRelease(), release.ResultPending, finish, release.ErrInvalid},
		{"unknown outcome", validRelease(), "aborted", finish, release.ErrInvalid},
		{"before start", validRelease(), release.ResultFailed, start.Add(-time.Nanosecond), release.ErrInvalid},
		{"no time", validRelease(), release.ResultFailed, time.Time{}, release.ErrInvalid},
		{"already finished", finished, release.ResultFailed, finish, release.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.release
			err := r.Finish(tt.result, tt.at)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("Finish() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if diff := cmp.Diff(tt.release, r); diff != "" {
					t.Errorf("failed Finish changed the release (-want +got):\n%s", diff)
				}
				return
			}
			want := tt.release
			want.Result, want.FinishedAt = tt.result, &tt.at
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("release after Finish (-want +got):\n%s", diff)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("finished release does not validate: %v", err)
			}
		})
	}
}

func TestEventTypeValid(t *testing.T) {
	tests := []struct {
		typ  release.EventType
		want bool
	}{
		{release.EventDeployStarted, true},
		{release.EventDeploySucceeded, true},
		{release.EventDeployFailed, true},
		{"alert.firing", true},
		{"error.new_issue", true},
		{"incident.status.resolved", true},
		{"", false},
		{"deploy", false},
		{"deploy.", false},
		{".started", false},
		{"Deploy.started", false},
		{"deploy.started!", false},
		{"deploy..started", false},
		{"de_ploy.started", false},
		{"deploy.started\n", false},
		{"deploy.st4rted", false},
		{release.EventType("a." + strings.Repeat("b", 63)), false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if got := tt.typ.Valid(); got != tt.want {
				t.Errorf("EventType(%q).Valid() = %v, want %v", tt.typ, got, tt.want)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	valid := func() release.Event {
		return release.Event{
			ReleaseID:  7,
			Type:       "alert.firing",
			Time:       start,
			Summary:    "HighErrorRate firing",
			Attributes: map[string]string{"severity": "critical", "empty": ""},
		}
	}
	tests := []struct {
		name   string
		modify func(*release.Event)
		valid  bool
	}{
		{"valid", func(*release.Event) {}, true},
		{"no attributes", func(e *release.Event) { e.Attributes = nil }, true},
		{"no release", func(e *release.Event) { e.ReleaseID = 0 }, false},
		{"garbage type", func(e *release.Event) { e.Type = "DROP TABLE" }, false},
		{"no time", func(e *release.Event) { e.Time = time.Time{} }, false},
		{"no summary", func(e *release.Event) { e.Summary = "" }, false},
		{"empty attribute name", func(e *release.Event) { e.Attributes[""] = "x" }, false},
		{"NUL in attribute", func(e *release.Event) { e.Attributes["k"] = "a\x00b" }, false},
		{"too many attributes", func(e *release.Event) {
			for i := range 101 {
				e.Attributes[strings.Repeat("k", i+1)] = "v"
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.modify(&e)
			checkValid(t, e.Validate(), tt.valid)
		})
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		valid bool
	}{
		{"zero filter", release.Filter{}.Validate(), true},
		{"full filter", release.Filter{Application: "a", Environment: "e", Revision: "r", Result: release.ResultFailed,
			Since: start, Until: finish, Limit: 1000}.Validate(), true},
		{"unknown result", release.Filter{Result: "done"}.Validate(), false},
		{"negative limit", release.Filter{Limit: -1}.Validate(), false},
		{"since equals until", release.Filter{Since: start, Until: start}.Validate(), false},
		{"since year 0", release.Filter{Since: time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC)}.Validate(), false},
		{"timeline zero filter", release.TimelineFilter{}.Validate(), true},
		{"timeline types", release.TimelineFilter{Types: []release.EventType{release.EventDeployFailed, "alert.firing"}}.Validate(), true},
		{"timeline garbage type", release.TimelineFilter{Types: []release.EventType{"deploy"}}.Validate(), false},
		{"timeline negative limit", release.TimelineFilter{Limit: -5}.Validate(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValid(t, tt.err, tt.valid)
		})
	}
}

// TestJSON pins the wire names the HTTP API and the panel rely on.
func TestJSON(t *testing.T) {
	r := validRelease()
	r.ID, r.Result, r.FinishedAt, r.Author, r.CommitMessage = 3, release.ResultSucceeded, &finish, "ann", "fix"
	e := release.Event{ID: 9, ReleaseID: 3, Type: release.EventDeployStarted, Time: start, Summary: "s",
		Attributes: map[string]string{"k": "v"}}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"release", r, `{"id":3,"application":"shop","environment":"production","revision":"4f2a9c1",` +
			`"commitMessage":"fix","author":"ann","startedAt":"2026-03-01T12:00:00Z",` +
			`"finishedAt":"2026-03-01T12:01:30Z","result":"succeeded"}`},
		{"pending release", validRelease(), `{"id":0,"application":"shop","environment":"production",` +
			`"revision":"4f2a9c1","startedAt":"2026-03-01T12:00:00Z","result":"pending"}`},
		{"event", e, `{"id":9,"releaseId":3,"type":"deploy.started","time":"2026-03-01T12:00:00Z",` +
			`"summary":"s","attributes":{"k":"v"}}`},
		{"page", release.Page{Releases: []release.Release{}, Next: "abc"}, `{"releases":[],"next":"abc"}`},
		{"timeline", release.Timeline{Events: []release.Event{}}, `{"events":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}
