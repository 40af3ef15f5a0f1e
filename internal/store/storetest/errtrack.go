package storetest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// errtrackCases are the conformance cases of the error tracker.
func (s suite) errtrackCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"Projects", s.testProjects},
		{"ProjectKeys", s.testProjectKeys},
		{"IngestGroups", s.testIngestGroups},
		{"IngestDuplicate", s.testIngestDuplicate},
		{"IngestConcurrentFirstEvents", s.testIngestConcurrentFirstEvents},
		{"IngestRegression", s.testIngestRegression},
		{"IngestRelease", s.testIngestRelease},
		{"IngestSpike", s.testIngestSpike},
		{"FindIssues", s.testFindIssues},
		{"PurgeEvents", s.testPurgeEvents},
		{"EventWithNUL", s.testEventWithNUL},
	}
}

func newProject(t *testing.T, db *store.DB, name string) (errtrack.Project, errtrack.ProjectKey) {
	t.Helper()
	p, k, err := db.CreateProject(t.Context(), errtrack.Project{Name: name})
	if err != nil {
		t.Fatalf("CreateProject(%s): %v", name, err)
	}
	return p, k
}

// errorEvent returns a normalized message event at t0+offset, grouped by group.
func errorEvent(group, message string, offset time.Duration) errtrack.Event {
	e := errtrack.Event{
		Timestamp:   t0.Add(offset),
		LogEntry:    &errtrack.LogEntry{Formatted: message},
		Fingerprint: []string{group},
		Environment: "production",
	}
	e.Normalize()
	return e
}

func ingest(t *testing.T, db *store.DB, projectID int64, e errtrack.Event, opts errtrack.IngestOptions) errtrack.Outcome {
	t.Helper()
	o, err := db.IngestEvent(t.Context(), projectID, e, opts)
	if err != nil {
		t.Fatalf("IngestEvent(%s): %v", e.EventID, err)
	}
	return o
}

// at ingests e as received at t0+offset.
func at(offset time.Duration) errtrack.IngestOptions {
	return errtrack.IngestOptions{Now: t0.Add(offset)}
}

func updateIssue(t *testing.T, db *store.DB, id int64, action errtrack.Action, rel string) errtrack.Issue {
	t.Helper()
	is, err := db.UpdateIssue(t.Context(), id, func(is errtrack.Issue) (errtrack.Issue, error) {
		return errtrack.Apply(is, action, rel, t0)
	}, nil)
	if err != nil {
		t.Fatalf("UpdateIssue(%d, %s %s): %v", id, action, rel, err)
	}
	return is
}

var publicKey = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s suite) testProjects(t *testing.T) {
	db := s.fresh(t)
	shop, key := newProject(t, db, "shop")
	if shop.ID == 0 || shop.CreatedAt.IsZero() || shop.CreatedAt.Location() != time.UTC {
		t.Errorf("project = %+v, want an ID and a UTC creation time", shop)
	}
	if key.ProjectID != shop.ID || key.Label != "default" || !publicKey.MatchString(key.Public) || key.RevokedAt != nil {
		t.Errorf("first key = %+v, want a live key labelled default of project %d with 32 hex digits", key, shop.ID)
	}
	api, _ := newProject(t, db, "api")
	for _, ref := range []string{fmt.Sprint(shop.ID), "shop"} {
		got, err := db.GetProject(t.Context(), ref)
		if err != nil {
			t.Fatalf("GetProject(%s): %v", ref, err)
		}
		if diff := cmp.Diff(shop, got); diff != "" {
			t.Errorf("GetProject(%s) (-want +got):\n%s", ref, diff)
		}
	}
	// A name of digits that is no project's ID is still found by name.
	digits, _ := newProject(t, db, "9999")
	if got, err := db.GetProject(t.Context(), "9999"); err != nil || got.ID != digits.ID {
		t.Errorf("GetProject(9999) = %+v, %v; want project %d", got, err, digits.ID)
	}
	_, err := db.GetProject(t.Context(), "nope")
	wantErr(t, "GetProject(nope)", err, errtrack.ErrNotFound)

	list, err := db.ListProjects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]errtrack.Project{digits, api, shop}, list); diff != "" {
		t.Errorf("ListProjects, by name (-want +got):\n%s", diff)
	}
	_, _, err = db.CreateProject(t.Context(), errtrack.Project{Name: "shop"})
	wantErr(t, "CreateProject(shop) again", err, errtrack.ErrConflict)
	_, _, err = db.CreateProject(t.Context(), errtrack.Project{Name: "Shop!"})
	wantErr(t, "CreateProject(Shop!)", err, errtrack.ErrInvalid)

	limited, err := db.SetProjectRateLimit(t.Context(), shop.ID, 600)
	if err != nil || limited.RateLimit != 600 || limited.Name != "shop" {
		t.Errorf("SetProjectRateLimit = %+v, %v; want shop at 600", limited, err)
	}
	if got, _ := db.GetProject(t.Context(), "shop"); got.RateLimit != 600 {
		t.Errorf("stored rate limit = %d, want 600", got.RateLimit)
	}
	_, err = db.SetProjectRateLimit(t.Context(), shop.ID, -1)
	wantErr(t, "SetProjectRateLimit(-1)", err, errtrack.ErrInvalid)
	_, err = db.SetProjectRateLimit(t.Context(), 1<<40, 10)
	wantErr(t, "SetProjectRateLimit(unknown)", err, errtrack.ErrNotFound)
}

func (s suite) testProjectKeys(t *testing.T) {
	db := s.fresh(t)
	shop, first := newProject(t, db, "shop")
	api, apiKey := newProject(t, db, "api")
	second, err := db.CreateProjectKey(t.Context(), shop.ID, "rotated")
	if err != nil {
		t.Fatal(err)
	}
	if second.Public == first.Public || second.Label != "rotated" || !publicKey.MatchString(second.Public) {
		t.Errorf("second key = %+v, want a new public part labelled rotated", second)
	}
	_, err = db.CreateProjectKey(t.Context(), 1<<40, "x")
	wantErr(t, "CreateProjectKey(unknown project)", err, errtrack.ErrNotFound)

	for _, k := range []errtrack.ProjectKey{first, second} {
		if p, err := db.AuthenticateProjectKey(t.Context(), shop.ID, k.Public); err != nil || p.ID != shop.ID {
			t.Errorf("AuthenticateProjectKey(%s) = %+v, %v; want shop", k.Label, p, err)
		}
	}
	revoked, err := db.RevokeProjectKey(t.Context(), shop.ID, first.Public)
	if err != nil || revoked.ID != first.ID || revoked.RevokedAt == nil {
		t.Fatalf("RevokeProjectKey = %+v, %v; want key %d revoked", revoked, err, first.ID)
	}
	_, err = db.RevokeProjectKey(t.Context(), shop.ID, fmt.Sprint(first.ID))
	wantErr(t, "RevokeProjectKey twice", err, errtrack.ErrConflict)
	_, err = db.RevokeProjectKey(t.Context(), shop.ID, fmt.Sprint(apiKey.ID))
	wantErr(t, "RevokeProjectKey(another project's key)", err, errtrack.ErrNotFound)
	_, err = db.RevokeProjectKey(t.Context(), shop.ID, strings.Repeat("0", 32))
	wantErr(t, "RevokeProjectKey(unknown)", err, errtrack.ErrNotFound)

	keys, err := db.ProjectKeys(t.Context(), shop.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]errtrack.ProjectKey{revoked, second}, keys); diff != "" {
		t.Errorf("ProjectKeys, revoked included (-want +got):\n%s", diff)
	}
	_, err = db.ProjectKeys(t.Context(), 1<<40)
	wantErr(t, "ProjectKeys(unknown project)", err, errtrack.ErrNotFound)

	for _, tt := range []struct {
		name      string
		projectID int64
		public    string
		want      error
	}{
		{"revoked", shop.ID, first.Public, errtrack.ErrUnauthorized},
		{"another project's", shop.ID, apiKey.Public, errtrack.ErrUnauthorized},
		{"another project's, seen from it", api.ID, second.Public, errtrack.ErrUnauthorized},
		{"unknown", shop.ID, strings.Repeat("ab", 16), errtrack.ErrUnauthorized},
		{"upper case", shop.ID, strings.ToUpper(second.Public), errtrack.ErrUnauthorized},
		{"unknown project", 1 << 40, second.Public, errtrack.ErrNotFound},
	} {
		_, err := db.AuthenticateProjectKey(t.Context(), tt.projectID, tt.public)
		wantErr(t, "AuthenticateProjectKey, "+tt.name, err, tt.want)
	}
}

func (s suite) testIngestGroups(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	var events []errtrack.Event
	for i, ev := range []struct {
		offset       time.Duration
		user, region string
		rel, env     string
	}{
		{0, "u1", "eu", "shop@aaaaaaa", "production"},
		{time.Minute, "u1", "eu", "shop@aaaaaaa", "production"},
		{time.Hour, "u2", "us", "shop@bbbbbbb", "staging"},
	} {
		e := errorEvent("checkout", fmt.Sprintf("checkout failed (%d)", i), ev.offset)
		e.User = &errtrack.User{ID: ev.user}
		e.Tags = errtrack.Pairs{{Key: "region", Value: ev.region}}
		e.Release, e.Environment = ev.rel, ev.env
		events = append(events, e)
	}
	first := ingest(t, db, p.ID, events[0], at(0))
	if first.Kind != errtrack.KindNew || first.Previous != nil || first.Issue.ID == 0 || first.Issue.Count != 1 {
		t.Fatalf("first = %s, %+v; want a new issue counted once", first.Kind, first.Issue)
	}
	second := ingest(t, db, p.ID, events[1], at(time.Minute))
	third := ingest(t, db, p.ID, events[2], at(time.Hour))
	if second.Kind != errtrack.KindGrouped || third.Kind != errtrack.KindGrouped || third.Issue.ID != first.Issue.ID ||
		third.Previous == nil || third.Previous.Count != 2 {
		t.Fatalf("second, third = %s, %s of issue %d (previous %+v); want grouped into %d", second.Kind, third.Kind,
			third.Issue.ID, third.Previous, first.Issue.ID)
	}
	got, err := db.GetIssue(t.Context(), first.Issue.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(third.Issue, got); diff != "" {
		t.Errorf("stored issue differs from the outcome (-outcome +stored):\n%s", diff)
	}
	want := errtrack.Issue{
		ID: first.Issue.ID, ProjectID: p.ID, Fingerprint: first.Issue.Fingerprint, Grouping: errtrack.GroupByFingerprint,
		Title: "checkout failed (2)", Level: errtrack.LevelError, Platform: "other", Status: errtrack.StatusUnresolved,
		FirstSeen: t0, LastSeen: t0.Add(time.Hour), Count: 3, UsersAffected: 2,
		FirstRelease: "shop@aaaaaaa", LastRelease: "shop@bbbbbbb", Environments: []string{"production", "staging"},
		LastEventID: events[2].EventID,
	}
	summary := got.TagsSummary
	got.TagsSummary = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issue (-want +got):\n%s", diff)
	}
	i := slices.IndexFunc(summary, func(s errtrack.TagSummary) bool { return s.Key == "region" })
	if i < 0 || !cmp.Equal(summary[i], errtrack.TagSummary{Key: "region", Count: 3,
		Values: []errtrack.TagValue{{Value: "eu", Count: 2}, {Value: "us", Count: 1}}}) {
		t.Errorf("tags summary = %+v, want region eu 2, us 1", summary)
	}

	releases, err := db.IssueReleases(t.Context(), first.Issue.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantReleases := []errtrack.ReleaseCount{
		{Release: "shop@aaaaaaa", Environment: "production", Count: 2, FirstSeen: t0, LastSeen: t0.Add(time.Minute)},
		{Release: "shop@bbbbbbb", Environment: "staging", Count: 1, FirstSeen: t0.Add(time.Hour), LastSeen: t0.Add(time.Hour)},
	}
	if diff := cmp.Diff(wantReleases, releases); diff != "" {
		t.Errorf("IssueReleases (-want +got):\n%s", diff)
	}
	hours, err := db.IssueHours(t.Context(), first.Issue.ID, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]errtrack.HourCount{{Hour: t0, Count: 2}, {Hour: t0.Add(time.Hour), Count: 1}}, hours); diff != "" {
		t.Errorf("IssueHours (-want +got):\n%s", diff)
	}
	if hours, err := db.IssueHours(t.Context(), first.Issue.ID, t0.Add(90*time.Minute)); err != nil || len(hours) != 1 {
		t.Errorf("IssueHours from within the second hour = %+v, %v; want that hour", hours, err)
	}

	stored, err := db.IssueEvents(t.Context(), first.Issue.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].Event.EventID != events[2].EventID || stored[1].Event.EventID != events[1].EventID {
		t.Errorf("IssueEvents(2) = %d events, want the newest two, newest first", len(stored))
	}
	ev, err := db.GetEvent(t.Context(), p.ID, events[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.IssueID != first.Issue.ID || ev.ProjectID != p.ID || !ev.ReceivedAt.Equal(t0) || ev.ReceivedAt.Location() != time.UTC {
		t.Errorf("GetEvent = issue %d, project %d, received %v; want %d, %d, %v", ev.IssueID, ev.ProjectID, ev.ReceivedAt,
			first.Issue.ID, p.ID, t0)
	}
	if diff := cmp.Diff(events[0], ev.Event); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}

	// Another fingerprint is another issue.
	other := ingest(t, db, p.ID, errorEvent("payment", "payment failed", 0), at(0))
	if other.Kind != errtrack.KindNew || other.Issue.ID == first.Issue.ID {
		t.Errorf("another fingerprint = %s issue %d, want a new issue", other.Kind, other.Issue.ID)
	}
	for name, err := range map[string]error{
		"GetIssue":      second2(db.GetIssue(t.Context(), 1<<40)),
		"IssueEvents":   second2(db.IssueEvents(t.Context(), 1<<40, 10)),
		"IssueReleases": second2(db.IssueReleases(t.Context(), 1<<40)),
		"IssueHours":    second2(db.IssueHours(t.Context(), 1<<40, t0)),
		"GetEvent":      second2(db.GetEvent(t.Context(), p.ID, strings.Repeat("0", 32))),
		"IngestEvent":   second2(db.IngestEvent(t.Context(), 1<<40, errorEvent("x", "x", 0), at(0))),
	} {
		wantErr(t, name+" of nothing", err, errtrack.ErrNotFound)
	}
	for _, limit := range []int{0, 101} {
		_, err := db.IssueEvents(t.Context(), first.Issue.ID, limit)
		wantErr(t, fmt.Sprintf("IssueEvents(limit %d)", limit), err, errtrack.ErrInvalid)
	}
}

// second2 returns the error of a call that returns a value and an error.
func second2[T any](_ T, err error) error { return err }

func (s suite) testIngestDuplicate(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	calls := 0
	opts := errtrack.IngestOptions{Now: t0, Effects: func(errtrack.Outcome) errtrack.Effects {
		calls++
		return errtrack.Effects{}
	}}
	e := errorEvent("checkout", "checkout failed", 0)
	e.User = &errtrack.User{ID: "u1"}
	first := ingest(t, db, p.ID, e, opts)
	// A resent event, even one that would group elsewhere now, is the same event.
	resent := e
	resent.Fingerprint = []string{"elsewhere"}
	for _, ev := range []errtrack.Event{e, resent} {
		dup := ingest(t, db, p.ID, ev, opts)
		if dup.Kind != errtrack.KindDuplicate || dup.Issue.ID != first.Issue.ID || dup.Issue.Count != 1 || dup.Spike {
			t.Errorf("resent event = %s, issue %d counted %d; want a duplicate of %d counted once", dup.Kind,
				dup.Issue.ID, dup.Issue.Count, first.Issue.ID)
		}
	}
	if calls != 1 {
		t.Errorf("effects called %d times, want once: never for a duplicate", calls)
	}
	list, err := db.FindIssues(t.Context(), errtrack.IssueQuery{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || list.Issues[0].Count != 1 || list.Issues[0].UsersAffected != 1 {
		t.Errorf("issues = %+v, want one counted once", list)
	}
	if hours, _ := db.IssueHours(t.Context(), first.Issue.ID, t0); len(hours) != 1 || hours[0].Count != 1 {
		t.Errorf("hours = %+v, want one event", hours)
	}
	// Event IDs are per project.
	other, _ := newProject(t, db, "api")
	if o := ingest(t, db, other.ID, e, opts); o.Kind != errtrack.KindNew {
		t.Errorf("the same event ID in another project = %s, want new", o.Kind)
	}
}

// testIngestConcurrentFirstEvents sends 50 events of one new issue at once over separate
// connections: one issue, counted 50 times.
func (s suite) testIngestConcurrentFirstEvents(t *testing.T) {
	url := s.newURL(t)
	dbs := []*store.DB{open(t, url), open(t, url), open(t, url), open(t, url)}
	p, _ := newProject(t, dbs[0], "shop")
	const n = 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		kinds = map[errtrack.Kind]int{}
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			e := errorEvent("checkout", "checkout failed", time.Duration(i)*time.Second)
			e.User = &errtrack.User{ID: fmt.Sprint(i % 5)}
			o, err := dbs[i%len(dbs)].IngestEvent(t.Context(), p.ID, e, at(0))
			if err != nil {
				t.Errorf("IngestEvent: %v", err)
				return
			}
			mu.Lock()
			kinds[o.Kind]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if diff := cmp.Diff(map[errtrack.Kind]int{errtrack.KindNew: 1, errtrack.KindGrouped: n - 1}, kinds); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	list, err := dbs[1].FindIssues(t.Context(), errtrack.IssueQuery{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || list.Issues[0].Count != n || list.Issues[0].UsersAffected != 5 {
		t.Fatalf("%d issues, first %+v; want one counted %d with 5 users", list.Total, list.Issues, n)
	}
	if events, _ := dbs[2].IssueEvents(t.Context(), list.Issues[0].ID, 100); len(events) != n {
		t.Errorf("%d events stored, want %d", len(events), n)
	}
}

// deployed creates a finished release of shop in production at revision rev.
func deployed(t *testing.T, db *store.DB, rev string, result release.Result) release.Release {
	t.Helper()
	r := create(t, db, release.Release{Application: "shop", Environment: "production", Revision: rev, StartedAt: t0})
	if err := db.FinishRelease(t.Context(), r.ID, result, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r.Result = result
	return r
}

func (s suite) testIngestRegression(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	// Deployed in the order old, fix, next; the names sort otherwise.
	old := strings.Repeat("c", 40)
	fix := strings.Repeat("a", 40)
	next := strings.Repeat("b", 40)
	for _, rev := range []string{old, fix, next} {
		deployed(t, db, rev, release.ResultSucceeded)
	}
	event := func(rev string) errtrack.Event {
		e := errorEvent("checkout", "checkout failed", time.Minute)
		e.Release = errtrack.ReleaseName("shop", rev)
		return e
	}
	first := ingest(t, db, p.ID, event(old), at(time.Minute))
	resolved := updateIssue(t, db, first.Issue.ID, errtrack.ActionResolve, errtrack.ReleaseName("shop", fix))
	if resolved.Status != errtrack.StatusResolved || resolved.ResolvedIn != "shop@aaaaaaa" {
		t.Fatalf("resolved issue = %s in %q", resolved.Status, resolved.ResolvedIn)
	}
	_, err := db.UpdateIssue(t.Context(), first.Issue.ID, func(is errtrack.Issue) (errtrack.Issue, error) {
		return errtrack.Apply(is, errtrack.ActionResolve, "", t0)
	}, nil)
	wantErr(t, "resolve a resolved issue", err, errtrack.ErrConflict)
	_, err = db.UpdateIssue(t.Context(), 1<<40, func(is errtrack.Issue) (errtrack.Issue, error) { return is, nil }, nil)
	wantErr(t, "UpdateIssue(unknown)", err, errtrack.ErrNotFound)

	// An old pod still reporting does not reopen the issue.
	if o := ingest(t, db, p.ID, event(old), at(time.Minute)); o.Kind != errtrack.KindGrouped || o.Issue.Status != errtrack.StatusResolved {
		t.Errorf("event from the release before the fix = %s, %s; want grouped, still resolved", o.Kind, o.Issue.Status)
	}
	// The next release has the error again: a regression.
	o := ingest(t, db, p.ID, event(next), at(time.Minute))
	if o.Kind != errtrack.KindRegressed || o.Issue.Status != errtrack.StatusUnresolved || o.Issue.ResolvedIn != "" ||
		o.Previous == nil || o.Previous.Status != errtrack.StatusResolved || o.Issue.Count != 3 {
		t.Errorf("event from the release after the fix = %s, %+v; want regressed, unresolved, counted 3", o.Kind, o.Issue)
	}
	if got, _ := db.GetIssue(t.Context(), first.Issue.ID); got.Status != errtrack.StatusUnresolved {
		t.Errorf("stored status = %s, want unresolved", got.Status)
	}
	// An ignored issue stays ignored whatever comes.
	updateIssue(t, db, first.Issue.ID, errtrack.ActionIgnore, "")
	for _, rev := range []string{old, fix, next} {
		if o := ingest(t, db, p.ID, event(rev), at(time.Minute)); o.Kind != errtrack.KindGrouped || o.Issue.Status != errtrack.StatusIgnored {
			t.Errorf("event from %s on an ignored issue = %s, %s; want grouped, ignored", rev[:7], o.Kind, o.Issue.Status)
		}
	}
}

func (s suite) testIngestRelease(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	rev := strings.Repeat("d", 40)
	rel := deployed(t, db, rev, release.ResultSucceeded)
	deployed(t, db, rev, release.ResultFailed) // a later deploy of it failed: not the one running
	effects := func(o errtrack.Outcome) errtrack.Effects {
		typ := "error." + string(o.Kind)
		return errtrack.Effects{
			Events: []release.Event{{Type: release.EventType(typ), Time: o.Issue.LastSeen, Summary: o.Issue.Title,
				Key: fmt.Sprintf("issue/%d/%s", o.Issue.ID, o.Kind)}},
			Notifications: []notify.Notification{{Channel: "ops", Key: fmt.Sprintf("issue/%d/%d", o.Issue.ID, o.Issue.Count),
				Event: notify.Event{Type: typ, Time: o.Issue.LastSeen, Summary: o.Issue.Title}}},
		}
	}
	e := errorEvent("checkout", "checkout failed", 0)
	e.Release = errtrack.ReleaseName("shop", rev)
	o := ingest(t, db, p.ID, e, errtrack.IngestOptions{Now: t0, Effects: effects})
	if o.Release == nil || o.Release.ID != rel.ID {
		t.Fatalf("outcome release = %+v, want the succeeded release %d", o.Release, rel.ID)
	}
	// Not Ferry's release name: no release, and no timeline event, but still a notification.
	other := errorEvent("payment", "payment failed", 0)
	other.Release = "shop@1.2.3"
	if o := ingest(t, db, p.ID, other, errtrack.IngestOptions{Now: t0, Effects: effects}); o.Release != nil {
		t.Errorf("outcome release of shop@1.2.3 = %+v, want none", o.Release)
	}
	// Another environment: not the release either.
	e.EventID, e.Environment = errtrack.NewEventID(), "staging"
	if o := ingest(t, db, p.ID, e, at(0)); o.Release != nil {
		t.Errorf("outcome release in staging = %+v, want none", o.Release)
	}
	// The operator's change has effects too, on the release the issue is resolved in.
	_, err := db.UpdateIssue(t.Context(), o.Issue.ID, func(is errtrack.Issue) (errtrack.Issue, error) {
		return errtrack.Apply(is, errtrack.ActionResolve, e.Release, t0)
	}, func(o errtrack.Outcome) errtrack.Effects {
		if o.Kind != "" || o.Previous == nil || o.Previous.Status != errtrack.StatusUnresolved {
			t.Errorf("UpdateIssue outcome = %s, previous %+v; want no kind, previous unresolved", o.Kind, o.Previous)
		}
		return errtrack.Effects{Events: []release.Event{{Type: "error.resolved", Time: t0, Summary: "resolved"}}}
	})
	if err != nil {
		t.Fatal(err)
	}

	tl, err := db.Timeline(t.Context(), rel.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []release.EventType
	for _, ev := range tl.Events {
		types = append(types, ev.Type)
	}
	if diff := cmp.Diff([]release.EventType{"error.new", "error.resolved"}, types); diff != "" {
		t.Errorf("timeline of release %d (-want +got):\n%s", rel.ID, diff)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{Channel: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	var releaseIDs []int64
	for _, n := range page.Notifications {
		releaseIDs = append(releaseIDs, n.Event.ReleaseID)
	}
	slices.Sort(releaseIDs)
	if diff := cmp.Diff([]int64{0, rel.ID}, releaseIDs); diff != "" {
		t.Errorf("release IDs of the notifications (-want +got):\n%s", diff)
	}
}

func (s suite) testIngestSpike(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	spike := errtrack.Spike{Count: 3, Window: time.Minute}
	var fired []int
	// Three within a minute fire once; the fourth is in the same window; then a new window
	// starts with the first event after it ended, and fills again.
	offsets := []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second,
		2 * time.Minute, 2*time.Minute + 10*time.Second, 2*time.Minute + 50*time.Second, 3*time.Minute + 30*time.Second}
	for i, off := range offsets {
		o := ingest(t, db, p.ID, errorEvent("checkout", "checkout failed", off), errtrack.IngestOptions{Now: t0.Add(off), Spike: spike})
		if o.Spike {
			fired = append(fired, i)
		}
	}
	if diff := cmp.Diff([]int{2, 6}, fired); diff != "" {
		t.Errorf("events that fired a spike (-want +got):\n%s", diff)
	}
	// Without a threshold nothing fires.
	if o := ingest(t, db, p.ID, errorEvent("checkout", "checkout failed", 0), at(0)); o.Spike {
		t.Errorf("spike without a threshold")
	}
}

func (s suite) testFindIssues(t *testing.T) {
	db := s.fresh(t)
	shop, _ := newProject(t, db, "shop")
	api, _ := newProject(t, db, "api")
	type spec struct {
		project int64
		title   string
		level   errtrack.Level
		env     string
		rel     string
		events  int
		offset  time.Duration
	}
	specs := []spec{
		{shop.ID, "disk 100% full", errtrack.LevelError, "production", "shop@aaaaaaa", 3, 0},
		{shop.ID, "disk 1000 full", errtrack.LevelWarning, "staging", "shop@bbbbbbb", 1, time.Minute},
		{shop.ID, "Timeout in Checkout", errtrack.LevelFatal, "production", "shop@bbbbbbb", 2, 2 * time.Minute},
		{api.ID, "token_expired", errtrack.LevelError, "production", "", 4, 3 * time.Minute},
		{api.ID, "tokenXexpired", errtrack.LevelInfo, "production", "api@ccccccc", 1, 4 * time.Minute},
	}
	ids := map[string]int64{}
	for _, sp := range specs {
		for i := range sp.events {
			e := errtrack.Event{Timestamp: t0.Add(sp.offset + time.Duration(i)*time.Second), Level: sp.level,
				LogEntry: &errtrack.LogEntry{Formatted: sp.title}, Fingerprint: []string{sp.title},
				Environment: sp.env, Release: sp.rel}
			e.Normalize()
			ids[sp.title] = ingest(t, db, sp.project, e, at(sp.offset)).Issue.ID
		}
	}
	updateIssue(t, db, ids["disk 1000 full"], errtrack.ActionResolve, "")
	updateIssue(t, db, ids["tokenXexpired"], errtrack.ActionIgnore, "")

	titles := func(q errtrack.IssueQuery) []string {
		t.Helper()
		list, err := db.FindIssues(t.Context(), q)
		if err != nil {
			t.Fatalf("FindIssues(%+v): %v", q, err)
		}
		out := []string{}
		for _, is := range list.Issues {
			out = append(out, is.Title)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		q    errtrack.IssueQuery
		want []string
	}{
		{"all, last seen first", errtrack.IssueQuery{},
			[]string{"tokenXexpired", "token_expired", "Timeout in Checkout", "disk 1000 full", "disk 100% full"}},
		{"project", errtrack.IssueQuery{ProjectID: api.ID}, []string{"tokenXexpired", "token_expired"}},
		{"environment", errtrack.IssueQuery{ProjectID: shop.ID, Environment: "production"},
			[]string{"Timeout in Checkout", "disk 100% full"}},
		{"environment without releases", errtrack.IssueQuery{ProjectID: api.ID, Environment: "production"},
			[]string{"tokenXexpired", "token_expired"}},
		{"release", errtrack.IssueQuery{Release: "shop@bbbbbbb"}, []string{"Timeout in Checkout", "disk 1000 full"}},
		{"release and environment", errtrack.IssueQuery{Release: "shop@bbbbbbb", Environment: "staging"},
			[]string{"disk 1000 full"}},
		{"status", errtrack.IssueQuery{Status: []errtrack.Status{errtrack.StatusResolved, errtrack.StatusIgnored}},
			[]string{"tokenXexpired", "disk 1000 full"}},
		{"level", errtrack.IssueQuery{Level: []errtrack.Level{errtrack.LevelFatal, errtrack.LevelWarning}},
			[]string{"Timeout in Checkout", "disk 1000 full"}},
		{"text, any case", errtrack.IssueQuery{Text: "CHECKOUT"}, []string{"Timeout in Checkout"}},
		{"text with a % literal", errtrack.IssueQuery{Text: "100%"}, []string{"disk 100% full"}},
		{"text with a _ literal", errtrack.IssueQuery{Text: "n_e"}, []string{"token_expired"}},
		{"text matching nothing", errtrack.IssueQuery{Text: `\`}, []string{}},
		{"by count", errtrack.IssueQuery{Sort: errtrack.SortCount, Limit: 3},
			[]string{"token_expired", "disk 100% full", "Timeout in Checkout"}},
		{"by first seen", errtrack.IssueQuery{Sort: errtrack.SortFirstSeen, ProjectID: shop.ID},
			[]string{"Timeout in Checkout", "disk 1000 full", "disk 100% full"}},
		{"page", errtrack.IssueQuery{Limit: 2, Offset: 1}, []string{"token_expired", "Timeout in Checkout"}},
		{"past the end", errtrack.IssueQuery{Offset: 10}, []string{}},
	} {
		if diff := cmp.Diff(tt.want, titles(tt.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	list, err := db.FindIssues(t.Context(), errtrack.IssueQuery{ProjectID: shop.ID, Limit: 1, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 3 || len(list.Issues) != 1 {
		t.Errorf("page of one = %d issues of %d, want 1 of 3", len(list.Issues), list.Total)
	}
	for _, q := range []errtrack.IssueQuery{
		{Limit: 1001}, {Limit: -1}, {Offset: -1}, {Sort: "title"}, {Status: []errtrack.Status{"open"}},
	} {
		_, err := db.FindIssues(t.Context(), q)
		wantErr(t, fmt.Sprintf("FindIssues(%+v)", q), err, errtrack.ErrInvalid)
	}
	if got := titles(errtrack.IssueQuery{Limit: 1000}); len(got) != 5 {
		t.Errorf("limit 1000 = %d issues, want 5", len(got))
	}
}

func (s suite) testPurgeEvents(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	var issueID int64
	for _, off := range []time.Duration{0, 30 * time.Minute, 3 * time.Hour} {
		issueID = ingest(t, db, p.ID, errorEvent("checkout", "checkout failed", off), at(off)).Issue.ID
	}
	n, err := db.PurgeEvents(t.Context(), t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("PurgeEvents = %d, %v; want 2", n, err)
	}
	events, err := db.IssueEvents(t.Context(), issueID, 100)
	if err != nil || len(events) != 1 || !events[0].ReceivedAt.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("events left = %+v, %v; want the latest", events, err)
	}
	hours, err := db.IssueHours(t.Context(), issueID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The hour from t0 ended before the purge's time; the hour of t0+3h did not start.
	if diff := cmp.Diff([]errtrack.HourCount{{Hour: t0.Add(3 * time.Hour), Count: 1}}, hours); diff != "" {
		t.Errorf("hours left (-want +got):\n%s", diff)
	}
	is, err := db.GetIssue(t.Context(), issueID)
	if err != nil || is.Count != 3 {
		t.Errorf("issue after purge = count %d, %v; want 3", is.Count, err)
	}
	if n, err := db.PurgeEvents(t.Context(), t0.Add(90*time.Minute)); err != nil || n != 0 {
		t.Errorf("PurgeEvents again = %d, %v; want 0", n, err)
	}
}

// testEventWithNUL stores an event whose strings hold NUL characters, which PostgreSQL's
// text refuses, everywhere an event's strings go: documents, columns and keys.
func (s suite) testEventWithNUL(t *testing.T) {
	db := s.fresh(t)
	p, _ := newProject(t, db, "shop")
	e := errtrack.Event{
		Timestamp:   t0,
		LogEntry:    &errtrack.LogEntry{Formatted: "a\x00b"},
		Environment: "prod\x00",
		Release:     "shop@\x00",
		User:        &errtrack.User{ID: "u\x00"},
		Tags:        errtrack.Pairs{{Key: "k\x00", Value: "v\x00"}},
		Extra:       map[string]json.RawMessage{"x": json.RawMessage(`"\u0000"`)},
	}
	e.Normalize()
	o := ingest(t, db, p.ID, e, at(0))
	if o.Issue.Title != "a\x00b" {
		t.Errorf("title = %q, want a\\x00b", o.Issue.Title)
	}
	got, err := db.GetEvent(t.Context(), p.ID, e.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got.Event); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}
	is, err := db.GetIssue(t.Context(), o.Issue.ID)
	if err != nil || is.Title != "a\x00b" || is.UsersAffected != 1 || !slices.Equal(is.Environments, []string{"prod\x00"}) {
		t.Errorf("stored issue = %+v, %v; want the NUL characters kept", is, err)
	}
	list, err := db.FindIssues(t.Context(), errtrack.IssueQuery{Text: "a\x00b", Environment: "prod\x00", Release: "shop@\x00"})
	if err != nil || list.Total != 1 {
		t.Errorf("FindIssues by text, environment and release with NUL = %+v, %v; want the issue", list, err)
	}
	if rs, err := db.IssueReleases(t.Context(), o.Issue.ID); err != nil || len(rs) != 1 {
		t.Errorf("IssueReleases = %+v, %v; want one", rs, err)
	}
}
