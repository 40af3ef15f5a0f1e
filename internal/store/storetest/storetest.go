// Package storetest is the conformance suite of the store: one set of cases that every
// driver must pass, run by each driver's tests against a real database.
package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// t0 is the suite's reference time; cases place releases and events relative to it.
var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// suite carries what every case needs: a source of fresh databases.
type suite struct {
	newURL func(t *testing.T) string
}

// Run runs every case of the suite in parallel subtests. newURL returns the URL of a fresh,
// empty database, used by one test only and removed when it ends; Run opens it with
// store.Open, and opens it again, or twice at once, where a case needs to.
func Run(t *testing.T, newURL func(t *testing.T) string) {
	s := suite{newURL: newURL}
	cases := []struct {
		name string
		run  func(*testing.T)
	}{
		{"CreateGet", s.testCreateGet},
		{"GetNotFound", s.testGetNotFound},
		{"CreateInvalid", s.testCreateInvalid},
		{"TimesUTC", s.testTimesUTC},
		{"FindFilters", s.testFindFilters},
		{"FindInvalid", s.testFindInvalid},
		{"FindPagination", s.testFindPagination},
		{"FindDefaultLimit", s.testFindDefaultLimit},
		{"BadCursor", s.testBadCursor},
		{"Finish", s.testFinish},
		{"AppendEvent", s.testAppendEvent},
		{"Timeline", s.testTimeline},
		{"Attributes", s.testAttributes},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"ReopenIsNoOp", s.testReopen},
		{"ConcurrentOpen", s.testConcurrentOpen},
		{"ReadyAndClose", s.testReady},
	}
	cases = append(cases, s.outboxCases()...)
	cases = append(cases, s.incidentCases()...)
	cases = append(cases, s.apiKeyCases()...)
	cases = append(cases, s.heartbeatCases()...)
	cases = append(cases, s.errtrackCases()...)
	cases = append(cases, s.userCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

// open opens url and closes it when the test ends.
func open(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// fresh opens a new, empty database.
func (s suite) fresh(t *testing.T) *store.DB {
	t.Helper()
	return open(t, s.newURL(t))
}

// newRelease returns a valid pending release of shop in production started at t0+offset.
func newRelease(offset time.Duration) release.Release {
	return release.Release{
		Application: "shop",
		Environment: "production",
		Revision:    "4f2a9c1",
		StartedAt:   t0.Add(offset),
		Result:      release.ResultPending,
	}
}

func create(t *testing.T, db *store.DB, r release.Release) release.Release {
	t.Helper()
	if err := db.CreateRelease(t.Context(), &r); err != nil {
		t.Fatalf("CreateRelease: %v", err)
	}
	return r
}

func appendEvent(t *testing.T, db *store.DB, e release.Event) release.Event {
	t.Helper()
	if err := db.AppendEvent(t.Context(), &e); err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	return e
}

func ids(rs []release.Release) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// findAll follows f's pages to the end and returns the IDs in order and the page count.
func findAll(t *testing.T, db *store.DB, f release.Filter) (got []int64, pages int) {
	t.Helper()
	got = []int64{}
	for {
		page, err := db.FindReleases(t.Context(), f)
		if err != nil {
			t.Fatalf("FindReleases(%+v): %v", f, err)
		}
		pages++
		got = append(got, ids(page.Releases)...)
		if page.Next == "" {
			return got, pages
		}
		if len(page.Releases) == 0 {
			t.Fatalf("empty page with a next cursor")
		}
		f.Cursor = page.Next
	}
}

// timelineAll follows f's pages of a timeline to the end.
func timelineAll(t *testing.T, db *store.DB, releaseID int64, f release.TimelineFilter) []release.Event {
	t.Helper()
	got := []release.Event{}
	for {
		tl, err := db.Timeline(t.Context(), releaseID, f)
		if err != nil {
			t.Fatalf("Timeline(%d, %+v): %v", releaseID, f, err)
		}
		got = append(got, tl.Events...)
		if tl.Next == "" {
			return got
		}
		if len(tl.Events) == 0 {
			t.Fatalf("empty timeline page with a next cursor")
		}
		f.Cursor = tl.Next
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want an error wrapping %v", what, err, want)
	}
}

func (s suite) testCreateGet(t *testing.T) {
	db := s.fresh(t)
	finished := t0.Add(time.Minute)
	tests := []struct {
		name string
		in   release.Release
		want release.Release
	}{
		{
			name: "all fields",
			in: release.Release{Application: "shop", Environment: "production", Revision: "4f2a9c1",
				CommitMessage: "Fix checkout\n\nIt's \"fixed\" ✓", Author: "Zoë <zoe@example.com>",
				StartedAt: t0, FinishedAt: &finished, Result: release.ResultSucceeded},
		},
		{name: "pending", in: newRelease(0)},
		{name: "same revision again, as a rollback does", in: newRelease(2 * time.Minute)},
		{
			name: "empty result means pending",
			in:   release.Release{Application: "api", Environment: "staging", Revision: "v1.2.3", StartedAt: t0},
			want: release.Release{Application: "api", Environment: "staging", Revision: "v1.2.3", StartedAt: t0,
				Result: release.ResultPending},
		},
	}
	seen := map[int64]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.Application == "" {
				want = tt.in
			}
			r := create(t, db, tt.in)
			if r.ID <= 0 || seen[r.ID] {
				t.Fatalf("CreateRelease set ID %d, want a new positive ID (seen %v)", r.ID, seen)
			}
			seen[r.ID] = true
			want.ID = r.ID
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("release after CreateRelease (-want +got):\n%s", diff)
			}
			got, err := db.GetRelease(t.Context(), r.ID)
			if err != nil {
				t.Fatalf("GetRelease: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetRelease (-want +got):\n%s", diff)
			}
		})
	}
}

func (s suite) testGetNotFound(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	for _, id := range []int64{r.ID + 1, 0, -1} {
		_, err := db.GetRelease(t.Context(), id)
		wantErr(t, "GetRelease of a missing release", err, release.ErrNotFound)
	}
}

func (s suite) testCreateInvalid(t *testing.T) {
	db := s.fresh(t)
	finished := t0.Add(time.Minute)
	tests := []struct {
		name   string
		modify func(*release.Release)
	}{
		{"ID set", func(r *release.Release) { r.ID = 42 }},
		{"no application", func(r *release.Release) { r.Application = "" }},
		{"no revision", func(r *release.Release) { r.Revision = "" }},
		{"no start", func(r *release.Release) { r.StartedAt = time.Time{} }},
		{"unknown result", func(r *release.Release) { r.Result = "done" }},
		{"pending with finish", func(r *release.Release) { r.FinishedAt = &finished }},
		{"succeeded without finish", func(r *release.Release) { r.Result = release.ResultSucceeded }},
		{"invalid UTF-8", func(r *release.Release) { r.Author = "\xc3\x28" }},
		{"NUL byte", func(r *release.Release) { r.Revision = "abc\x00" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRelease(0)
			tt.modify(&r)
			wantErr(t, "CreateRelease", db.CreateRelease(t.Context(), &r), release.ErrInvalid)
		})
	}
	wantErr(t, "CreateRelease(nil)", db.CreateRelease(t.Context(), nil), release.ErrInvalid)
	page, err := db.FindReleases(t.Context(), release.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Releases) != 0 {
		t.Errorf("invalid releases were stored: %+v", page.Releases)
	}
}

// testTimesUTC checks that instants come back as the same instant, in UTC, to the
// microsecond, whatever zone they went in with, from every read path.
func (s suite) testTimesUTC(t *testing.T) {
	db := s.fresh(t)
	india := time.FixedZone("IST", 5*3600+1800)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zone and nanoseconds", time.Date(2026, 5, 4, 15, 30, 0, 123456789, india),
			time.Date(2026, 5, 4, 10, 0, 0, 123456000, time.UTC)},
		{"local zone", time.Date(2026, 1, 2, 3, 4, 5, 6000, time.Local),
			time.Date(2026, 1, 2, 3, 4, 5, 6000, time.Local).UTC()},
		{"before 1970", time.Date(1969, 7, 20, 20, 17, 40, 999999999, time.UTC),
			time.Date(1969, 7, 20, 20, 17, 40, 999999000, time.UTC)},
		{"last microsecond of 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			finished := tt.in
			r := newRelease(0)
			r.Application = tt.name
			r.StartedAt, r.FinishedAt, r.Result = tt.in, &finished, release.ResultFailed
			r = create(t, db, r)
			e := appendEvent(t, db, release.Event{ReleaseID: r.ID, Type: release.EventDeployFailed,
				Time: tt.in, Summary: "failed"})
			got, err := db.GetRelease(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			page, err := db.FindReleases(t.Context(), release.Filter{Application: tt.name})
			if err != nil || len(page.Releases) != 1 {
				t.Fatalf("FindReleases = %+v, %v; want the release", page, err)
			}
			tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{})
			if err != nil || len(tl.Events) != 1 {
				t.Fatalf("Timeline = %+v, %v; want one event", tl, err)
			}
			for what, tm := range map[string]time.Time{
				"CreateRelease's start": r.StartedAt,
				"AppendEvent's time":    e.Time,
				"GetRelease's start":    got.StartedAt,
				"FindReleases' start":   page.Releases[0].StartedAt,
				"Timeline's time":       tl.Events[0].Time,
			} {
				if !tm.Equal(tt.want) || tm.Location() != time.UTC {
					t.Errorf("%s = %v, want %v in UTC", what, tm, tt.want)
				}
			}
			if got.FinishedAt == nil || !got.FinishedAt.Equal(tt.want) || got.FinishedAt.Location() != time.UTC {
				t.Errorf("GetRelease's finish = %v, want %v in UTC", got.FinishedAt, tt.want)
			}
		})
	}
}

func storedMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (s suite) testFindFilters(t *testing.T) {
	db := s.fresh(t)
	finish := func(r release.Release, result release.Result) release.Release {
		at := r.StartedAt.Add(30 * time.Second)
		r.Result, r.FinishedAt = result, &at
		return r
	}
	at := func(offset time.Duration, app, env, rev string) release.Release {
		r := newRelease(offset)
		r.Application, r.Environment, r.Revision = app, env, rev
		return r
	}
	// The last is a rollback of shop production to revision a.
	seed := []release.Release{
		finish(at(0, "shop", "production", "a"), release.ResultSucceeded),
		at(time.Minute, "shop", "staging", "a"),
		finish(at(2*time.Minute, "api", "production", "b"), release.ResultFailed),
		at(3*time.Minute, "shop", "production", "b"),
		at(4*time.Minute, "shop", "production", "a"),
	}
	var id []int64 // id[i] is seed[i]'s ID
	for _, r := range seed {
		id = append(id, create(t, db, r).ID)
	}
	tests := []struct {
		name     string
		filter   release.Filter
		want     []int
		wantNext bool
	}{
		{"all, newest first", release.Filter{}, []int{4, 3, 2, 1, 0}, false},
		{"application", release.Filter{Application: "shop"}, []int{4, 3, 1, 0}, false},
		{"environment", release.Filter{Environment: "production"}, []int{4, 3, 2, 0}, false},
		{"revision", release.Filter{Revision: "a"}, []int{4, 1, 0}, false},
		{"result", release.Filter{Result: release.ResultFailed}, []int{2}, false},
		{"result pending", release.Filter{Result: release.ResultPending}, []int{4, 3, 1}, false},
		{"since is inclusive", release.Filter{Since: t0.Add(2 * time.Minute)}, []int{4, 3, 2}, false},
		{"until is exclusive", release.Filter{Until: t0.Add(2 * time.Minute)}, []int{1, 0}, false},
		{"since and until", release.Filter{Since: t0.Add(2 * time.Minute), Until: t0.Add(3 * time.Minute)}, []int{2}, false},
		{"application, environment and revision",
			release.Filter{Application: "shop", Environment: "production", Revision: "a"}, []int{4, 0}, false},
		{"application, result and since",
			release.Filter{Application: "shop", Result: release.ResultPending, Since: t0.Add(time.Minute)}, []int{4, 3, 1}, false},
		{"since in another zone", release.Filter{Since: t0.Add(3 * time.Minute).In(time.FixedZone("X", -7*3600))},
			[]int{4, 3}, false},
		{"limit", release.Filter{Limit: 2}, []int{4, 3}, true},
		{"limit equal to matches", release.Filter{Application: "api", Limit: 1}, []int{2}, false},
		{"no match", release.Filter{Application: "nope"}, []int{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := db.FindReleases(t.Context(), tt.filter)
			if err != nil {
				t.Fatalf("FindReleases: %v", err)
			}
			want := []int64{}
			for _, i := range tt.want {
				want = append(want, id[i])
			}
			if diff := cmp.Diff(want, ids(page.Releases)); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
			if page.Releases == nil {
				t.Errorf("Releases is nil, want an empty slice")
			}
			if got := page.Next != ""; got != tt.wantNext {
				t.Errorf("Next = %q, want a cursor: %v", page.Next, tt.wantNext)
			}
		})
	}
}

func (s suite) testFindInvalid(t *testing.T) {
	db := s.fresh(t)
	tests := []struct {
		name   string
		filter release.Filter
	}{
		{"unknown result", release.Filter{Result: "done"}},
		{"negative limit", release.Filter{Limit: -1}},
		{"since after until", release.Filter{Since: t0.Add(time.Hour), Until: t0}},
		{"since year 0", release.Filter{Since: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.FindReleases(t.Context(), tt.filter)
			wantErr(t, "FindReleases", err, release.ErrInvalid)
		})
	}
}

// testFindPagination walks pages over releases that share start times, so only the ID
// orders them, and checks the pages join into exactly the full, ordered list.
func (s suite) testFindPagination(t *testing.T) {
	db := s.fresh(t)
	var all []release.Release
	for i := range 23 {
		r := newRelease(time.Duration(i%4) * time.Minute)
		if i%2 == 0 {
			r.Application = "api"
		}
		all = append(all, create(t, db, r))
	}
	newestFirst := func(app string) []int64 {
		var rs []release.Release
		for _, r := range all {
			if app == "" || r.Application == app {
				rs = append(rs, r)
			}
		}
		slices.SortFunc(rs, func(a, b release.Release) int {
			if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
				return c
			}
			return int(b.ID - a.ID)
		})
		return ids(rs)
	}
	tests := []struct {
		name      string
		filter    release.Filter
		want      []int64
		wantPages int
	}{
		{"by 5", release.Filter{Limit: 5}, newestFirst(""), 5},
		{"by 1", release.Filter{Limit: 1}, newestFirst(""), 23},
		{"by 23", release.Filter{Limit: 23}, newestFirst(""), 1},
		{"by 22", release.Filter{Limit: 22}, newestFirst(""), 2},
		{"filtered by 3", release.Filter{Application: "api", Limit: 3}, newestFirst("api"), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := findAll(t, db, tt.filter)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("IDs across pages (-want +got):\n%s", diff)
			}
			if pages != tt.wantPages {
				t.Errorf("took %d pages, want %d", pages, tt.wantPages)
			}
		})
	}
	t.Run("new releases do not shift later pages", func(t *testing.T) {
		first, err := db.FindReleases(t.Context(), release.Filter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		create(t, db, newRelease(time.Hour))            // newer than the cursor: not on later pages
		create(t, db, newRelease(2*time.Minute))        // ties the cursor's time with a higher ID: same
		oldest := create(t, db, newRelease(-time.Hour)) // older: on the last page
		rest, _ := findAll(t, db, release.Filter{Limit: 10, Cursor: first.Next})
		want := append(newestFirst("")[10:], oldest.ID)
		if diff := cmp.Diff(want, rest); diff != "" {
			t.Errorf("pages after the first (-want +got):\n%s", diff)
		}
	})
}

func (s suite) testFindDefaultLimit(t *testing.T) {
	db := s.fresh(t)
	for i := range release.DefaultLimit + 1 {
		create(t, db, newRelease(time.Duration(i)*time.Second))
	}
	page, err := db.FindReleases(t.Context(), release.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Releases) != release.DefaultLimit || page.Next == "" {
		t.Errorf("got %d releases and next %q, want %d and a cursor", len(page.Releases), page.Next, release.DefaultLimit)
	}
	page, err = db.FindReleases(t.Context(), release.Filter{Limit: release.MaxLimit + 1})
	if err != nil {
		t.Fatalf("FindReleases with a limit over the maximum: %v", err)
	}
	if len(page.Releases) != release.DefaultLimit+1 || page.Next != "" {
		t.Errorf("got %d releases and next %q, want all %d", len(page.Releases), page.Next, release.DefaultLimit+1)
	}
}

func (s suite) testBadCursor(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	create(t, db, newRelease(time.Minute))
	for range 2 {
		appendEvent(t, db, release.Event{ReleaseID: r.ID, Type: "alert.firing", Time: t0, Summary: "x"})
	}
	page, err := db.FindReleases(t.Context(), release.Filter{Limit: 1})
	if err != nil || page.Next == "" {
		t.Fatalf("FindReleases = %+v, %v; want a next cursor", page, err)
	}
	tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{Limit: 1})
	if err != nil || tl.Next == "" {
		t.Fatalf("Timeline = %+v, %v; want a next cursor", tl, err)
	}
	malformed := []string{"garbage!", "bm9wZQ", "cjox", page.Next[:len(page.Next)-1], page.Next + "A", " " + page.Next}
	for _, cursor := range append(malformed, tl.Next) {
		t.Run("release cursor "+cursor, func(t *testing.T) {
			_, err := db.FindReleases(t.Context(), release.Filter{Cursor: cursor})
			wantErr(t, "FindReleases", err, release.ErrInvalid)
		})
	}
	for _, cursor := range append(malformed, page.Next) {
		t.Run("timeline cursor "+cursor, func(t *testing.T) {
			_, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{Cursor: cursor})
			wantErr(t, "Timeline", err, release.ErrInvalid)
		})
	}
}

func (s suite) testFinish(t *testing.T) {
	db := s.fresh(t)
	ctx := t.Context()
	r := create(t, db, newRelease(0))
	pending := create(t, db, newRelease(time.Minute))

	at := time.Date(2026, 5, 4, 12, 1, 30, 987654321, time.FixedZone("CEST", 2*3600))
	if err := db.FinishRelease(ctx, r.ID, release.ResultSucceeded, at); err != nil {
		t.Fatalf("FinishRelease: %v", err)
	}
	want := r
	wantAt := storedMicro(at)
	want.Result, want.FinishedAt = release.ResultSucceeded, &wantAt
	got, err := db.GetRelease(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finished release (-want +got):\n%s", diff)
	}

	tests := []struct {
		name   string
		id     int64
		result release.Result
		at     time.Time
		want   error
	}{
		{"twice", r.ID, release.ResultFailed, at.Add(time.Minute), release.ErrConflict},
		{"missing release", pending.ID + 100, release.ResultFailed, at, release.ErrNotFound},
		{"as pending", pending.ID, release.ResultPending, at, release.ErrInvalid},
		{"unknown result", pending.ID, "aborted", at, release.ErrInvalid},
		{"no time", pending.ID, release.ResultFailed, time.Time{}, release.ErrInvalid},
		{"before start", pending.ID, release.ResultFailed, pending.StartedAt.Add(-time.Microsecond), release.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "FinishRelease", db.FinishRelease(ctx, tt.id, tt.result, tt.at), tt.want)
		})
	}
	for _, check := range []release.Release{want, pending} {
		got, err := db.GetRelease(ctx, check.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(check, got); diff != "" {
			t.Errorf("refused finishes changed release %d (-want +got):\n%s", check.ID, diff)
		}
	}
	if err := db.FinishRelease(ctx, pending.ID, release.ResultFailed, pending.StartedAt); err != nil {
		t.Errorf("FinishRelease at the start time: %v", err)
	}
}

func (s suite) testAppendEvent(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	valid := release.Event{ReleaseID: r.ID, Type: release.EventDeployStarted, Time: t0, Summary: "deploying"}
	tests := []struct {
		name   string
		modify func(*release.Event)
		want   error
	}{
		{"missing release", func(e *release.Event) { e.ReleaseID = r.ID + 1 }, release.ErrNotFound},
		{"no release", func(e *release.Event) { e.ReleaseID = 0 }, release.ErrInvalid},
		{"ID set", func(e *release.Event) { e.ID = 7 }, release.ErrInvalid},
		{"garbage type", func(e *release.Event) { e.Type = "deploy started" }, release.ErrInvalid},
		{"no summary", func(e *release.Event) { e.Summary = "" }, release.ErrInvalid},
		{"no time", func(e *release.Event) { e.Time = time.Time{} }, release.ErrInvalid},
		{"NUL in attribute", func(e *release.Event) { e.Attributes = map[string]string{"k": "\x00"} }, release.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid
			tt.modify(&e)
			wantErr(t, "AppendEvent", db.AppendEvent(t.Context(), &e), tt.want)
		})
	}
	wantErr(t, "AppendEvent(nil)", db.AppendEvent(t.Context(), nil), release.ErrInvalid)

	// An unknown type that follows the grammar is a later subsystem's, and welcome.
	e := valid
	e.Type = "error.regressed"
	e = appendEvent(t, db, e)
	if e.ID <= 0 {
		t.Errorf("AppendEvent set ID %d, want a positive ID", e.ID)
	}
	tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]release.Event{e}, tl.Events); diff != "" {
		t.Errorf("timeline after refused and accepted appends (-want +got):\n%s", diff)
	}
}

func (s suite) testTimeline(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	other := create(t, db, newRelease(time.Minute))
	empty := create(t, db, newRelease(2*time.Minute))
	// Appended out of time order, with ties that only the ID breaks.
	appends := []struct {
		offset time.Duration
		typ    release.EventType
	}{
		{2 * time.Second, release.EventDeploySucceeded},
		{0, release.EventDeployStarted},
		{time.Second, "alert.firing"},
		{time.Second, "error.new_issue"},
		{0, "alert.firing"},
		{3 * time.Second, "alert.resolved"},
	}
	var events []release.Event
	for i, a := range appends {
		events = append(events, appendEvent(t, db, release.Event{ReleaseID: r.ID, Type: a.typ,
			Time: t0.Add(a.offset), Summary: string(a.typ), Attributes: map[string]string{"n": string(rune('a' + i))}}))
	}
	appendEvent(t, db, release.Event{ReleaseID: other.ID, Type: "alert.firing", Time: t0, Summary: "elsewhere"})
	oldestFirst := func(types ...release.EventType) []release.Event {
		out := []release.Event{}
		for _, e := range events {
			if len(types) == 0 || slices.Contains(types, e.Type) {
				out = append(out, e)
			}
		}
		slices.SortFunc(out, func(a, b release.Event) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return int(a.ID - b.ID)
		})
		return out
	}
	tests := []struct {
		name   string
		filter release.TimelineFilter
		want   []release.Event
	}{
		{"all", release.TimelineFilter{}, oldestFirst()},
		{"one type", release.TimelineFilter{Types: []release.EventType{"alert.firing"}}, oldestFirst("alert.firing")},
		{"two types", release.TimelineFilter{Types: []release.EventType{release.EventDeployStarted, "error.new_issue"}},
			oldestFirst(release.EventDeployStarted, "error.new_issue")},
		{"type without events", release.TimelineFilter{Types: []release.EventType{"deploy.failed"}}, oldestFirst("deploy.failed")},
		{"pages of 2", release.TimelineFilter{Limit: 2}, oldestFirst()},
		{"pages of 1", release.TimelineFilter{Limit: 1}, oldestFirst()},
		{"typed pages of 1", release.TimelineFilter{Types: []release.EventType{"alert.firing", "alert.resolved"}, Limit: 1},
			oldestFirst("alert.firing", "alert.resolved")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := timelineAll(t, db, r.ID, tt.filter)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("timeline (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("first page", func(t *testing.T) {
		tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(oldestFirst()[:4], tl.Events); diff != "" || tl.Next == "" {
			t.Errorf("first page (-want +got):\n%s\nnext %q", diff, tl.Next)
		}
	})
	t.Run("no events", func(t *testing.T) {
		tl, err := db.Timeline(t.Context(), empty.ID, release.TimelineFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if tl.Events == nil || len(tl.Events) != 0 || tl.Next != "" {
			t.Errorf("Timeline = %#v, want an empty, non-nil page", tl)
		}
	})
	t.Run("missing release", func(t *testing.T) {
		_, err := db.Timeline(t.Context(), empty.ID+1, release.TimelineFilter{})
		wantErr(t, "Timeline", err, release.ErrNotFound)
	})
	t.Run("invalid filter", func(t *testing.T) {
		for _, f := range []release.TimelineFilter{{Types: []release.EventType{"alert"}}, {Limit: -1}} {
			_, err := db.Timeline(t.Context(), r.ID, f)
			wantErr(t, "Timeline", err, release.ErrInvalid)
		}
	})
}

func (s suite) testAttributes(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	many := map[string]string{}
	for i := range 100 {
		many[string(rune('a'+i%26))+time.Duration(i).String()] = time.Duration(i * 1000).String()
	}
	tests := []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{"none", nil, nil},
		{"empty map reads back as none", map[string]string{}, nil},
		{"plain", map[string]string{"alertname": "HighErrorRate", "severity": "critical"},
			map[string]string{"alertname": "HighErrorRate", "severity": "critical"}},
		{"empty value", map[string]string{"note": ""}, map[string]string{"note": ""}},
		{"unicode and JSON syntax", map[string]string{"ключ ✓": "ä\"\\/<>&\n\t\u2028{}[]", "emoji": "🚀"},
			map[string]string{"ключ ✓": "ä\"\\/<>&\n\t\u2028{}[]", "emoji": "🚀"}},
		{"100 attributes", many, many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := appendEvent(t, db, release.Event{ReleaseID: r.ID, Type: "alert.firing", Time: t0,
				Summary: tt.name, Attributes: tt.in})
			if diff := cmp.Diff(tt.want, e.Attributes); diff != "" {
				t.Errorf("attributes after AppendEvent (-want +got):\n%s", diff)
			}
			for _, got := range timelineAll(t, db, r.ID, release.TimelineFilter{}) {
				if got.ID == e.ID {
					if diff := cmp.Diff(tt.want, got.Attributes); diff != "" {
						t.Errorf("attributes read back (-want +got):\n%s", diff)
					}
					return
				}
			}
			t.Fatalf("event %d not on the timeline", e.ID)
		})
	}
}

// testConcurrentWriters checks that writers racing on one DB lose nothing, and that of
// racing finishers exactly one wins.
func (s suite) testConcurrentWriters(t *testing.T) {
	db := s.fresh(t)
	const writers, each = 8, 20
	writeConcurrently(t, []*store.DB{db}, writers, each)
	target := create(t, db, newRelease(0))
	var wg sync.WaitGroup
	finishErrs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			finishErrs <- db.FinishRelease(t.Context(), target.ID, release.ResultSucceeded, t0.Add(time.Hour))
		})
	}
	wg.Wait()
	close(finishErrs)
	won := 0
	for err := range finishErrs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, release.ErrConflict):
			t.Errorf("racing FinishRelease = %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d racing finishers succeeded, want exactly 1", won)
	}
}

// writeConcurrently runs writers goroutines, spread over dbs, that each create, append to
// and finish each releases, then checks every write landed. It returns the releases' IDs.
func writeConcurrently(t *testing.T, dbs []*store.DB, writers, each int) []int64 {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		made []int64
	)
	errs := make(chan error, writers*each)
	for w := range writers {
		db := dbs[w%len(dbs)]
		wg.Go(func() {
			for i := range each {
				r := newRelease(time.Duration(i) * time.Second)
				r.Author = string(rune('A' + w))
				if err := db.CreateRelease(t.Context(), &r); err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				made = append(made, r.ID)
				mu.Unlock()
				e := release.Event{ReleaseID: r.ID, Type: release.EventDeployStarted, Time: r.StartedAt, Summary: "go"}
				if err := db.AppendEvent(t.Context(), &e); err != nil {
					errs <- err
				}
				// A read, then a write: the pattern that meets SQLITE_BUSY if a transaction
				// takes its write lock late.
				if err := db.FinishRelease(t.Context(), r.ID, release.ResultSucceeded, r.StartedAt); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, db := range dbs {
		got, _ := findAll(t, db, release.Filter{Result: release.ResultSucceeded, Limit: release.MaxLimit})
		slices.Sort(got)
		slices.Sort(made)
		if diff := cmp.Diff(made, got); diff != "" {
			t.Errorf("finished releases (-made +found):\n%s", diff)
		}
		if len(got) != writers*each {
			t.Errorf("found %d finished releases, want %d", len(got), writers*each)
		}
		for _, id := range []int64{made[0], made[len(made)-1]} {
			if tl := timelineAll(t, db, id, release.TimelineFilter{}); len(tl) != 1 {
				t.Errorf("release %d has %d events, want 1", id, len(tl))
			}
		}
	}
	return made
}

// checkMigrations checks that each migration is recorded once, in order, from version 1.
func checkMigrations(t *testing.T, ms []store.Migration) {
	t.Helper()
	if len(ms) == 0 {
		t.Fatalf("no migrations recorded")
	}
	for i, m := range ms {
		if m.Version != i+1 || m.Name == "" || m.AppliedAt.IsZero() {
			t.Errorf("migration %d = %+v, want version %d, named, with a time", i, m, i+1)
		}
	}
}

func (s suite) testReopen(t *testing.T) {
	url := s.newURL(t)
	first, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := create(t, first, newRelease(0))
	before, err := first.Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkMigrations(t, before)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db := open(t, url)
	after, err := db.Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("migrations after reopening (-before +after):\n%s", diff)
	}
	got, err := db.GetRelease(t.Context(), r.ID)
	if err != nil {
		t.Fatalf("GetRelease after reopening: %v", err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("release after reopening (-want +got):\n%s", diff)
	}
}

// testConcurrentOpen opens one fresh database twice at once, as two replicas starting
// together do: both must succeed and share one schema, each migration recorded once, and
// then take writes side by side.
func (s suite) testConcurrentOpen(t *testing.T) {
	url := s.newURL(t)
	const n = 2
	var (
		wg    sync.WaitGroup
		dbs   [n]*store.DB
		errs  [n]error
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = store.Open(t.Context(), url, store.Options{})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() {
			if err := dbs[i].Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	first, err := dbs[0].Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkMigrations(t, first)
	second, err := dbs[1].Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("migrations seen by the two handles (-first +second):\n%s", diff)
	}
	r := create(t, dbs[0], newRelease(0))
	got, err := dbs[1].GetRelease(t.Context(), r.ID)
	if err != nil {
		t.Fatalf("GetRelease through the other handle: %v", err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("release through the other handle (-want +got):\n%s", diff)
	}
	writeConcurrently(t, dbs[:], 4, 10)
}

func (s suite) testReady(t *testing.T) {
	db, err := store.Open(t.Context(), s.newURL(t), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if d := db.Driver(); d != "sqlite" && d != "postgres" {
		t.Errorf("Driver() = %q, want sqlite or postgres", d)
	}
	if err := db.Ready(t.Context()); err != nil {
		t.Errorf("Ready of an open store: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Ready(t.Context()); err == nil {
		t.Errorf("Ready of a closed store = nil, want an error")
	}
	if _, err := db.GetRelease(t.Context(), 1); err == nil {
		t.Errorf("GetRelease of a closed store = nil error, want one")
	}
}
