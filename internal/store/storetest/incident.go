package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// incidentCases are the conformance cases of the incident hub's alerts.
func (s suite) incidentCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"AlertLifecycle", s.testAlertLifecycle},
		{"ConcurrentIdenticalAlerts", s.testConcurrentIdenticalAlerts},
		{"AlertOnRelease", s.testAlertOnRelease},
		{"FindAlerts", s.testFindAlerts},
		{"FindAlertsInSQL", s.testFindAlertsInSQL},
		{"Housekeeping", s.testHousekeeping},
	}
}

var alertIDs atomic.Int64

func newAlertID() string { return fmt.Sprintf("a-%d-%d", time.Now().UnixNano(), alertIDs.Add(1)) }

func alert(resource, event string, sev incident.Severity) incident.Alert {
	return incident.Alert{Resource: resource, Event: event, Environment: "production", Severity: sev,
		Service: []string{"web"}, Group: "Misc", EventType: "exceptionAlert", Text: event + " on " + resource,
		Tags: []string{"app=web"}, Attributes: map[string]any{}}
}

func receive(t *testing.T, db *store.DB, a incident.Alert, opts incident.ReceiveOptions) incident.Outcome {
	t.Helper()
	if opts.NewID == nil {
		opts.NewID = newAlertID
	}
	o, err := db.ReceiveAlert(t.Context(), a, opts)
	if err != nil {
		t.Fatalf("ReceiveAlert(%s/%s/%s): %v", a.Resource, a.Event, a.Severity, err)
	}
	return o
}

func (s suite) testAlertLifecycle(t *testing.T) {
	db := s.fresh(t)
	first := receive(t, db, alert("db1", "DiskFull", "major"), incident.ReceiveOptions{})
	if first.Kind != incident.KindNew || first.Alert.Status != incident.StatusOpen {
		t.Fatalf("first = %s %s, want new and open", first.Kind, first.Alert.Status)
	}
	id := first.Alert.ID
	dup := receive(t, db, alert("db1", "DiskFull", "major"), incident.ReceiveOptions{})
	if dup.Kind != incident.KindDuplicate || dup.Alert.ID != id || dup.Alert.DuplicateCount != 1 || !dup.Alert.Repeat {
		t.Errorf("repeat = %s, id %s, count %d; want a duplicate of %s counted 1", dup.Kind, dup.Alert.ID, dup.Alert.DuplicateCount, id)
	}
	worse := receive(t, db, alert("db1", "DiskFull", "critical"), incident.ReceiveOptions{})
	if worse.Kind != incident.KindCorrelated || worse.Alert.ID != id || worse.Alert.PreviousSeverity != "major" ||
		worse.Alert.TrendIndication != incident.TrendMoreSevere || worse.Previous == nil || worse.Previous.Severity != "major" {
		t.Errorf("worse = %+v; want correlated with %s, previous major, more severe", worse, id)
	}
	// An operator acks it; the state machine refuses what the status does not allow.
	acked, err := db.UpdateAlert(t.Context(), id, func(a incident.Alert) (incident.Alert, error) {
		return incident.Apply(a, incident.ActionAck, "looking", "alice", 0, time.Now())
	}, nil)
	if err != nil || acked.Status != incident.StatusAck {
		t.Fatalf("ack = %s, %v", acked.Status, err)
	}
	_, err = db.UpdateAlert(t.Context(), id, func(a incident.Alert) (incident.Alert, error) {
		return incident.Apply(a, incident.ActionUnshelve, "", "alice", 0, time.Now())
	}, nil)
	wantErr(t, "unshelve an acked alert", err, incident.ErrConflict)
	// A normal severity closes it.
	closed := receive(t, db, alert("db1", "DiskFull", "normal"), incident.ReceiveOptions{})
	if closed.Alert.ID != id || closed.Alert.Status != incident.StatusClosed {
		t.Errorf("normal = %s %s, want %s closed", closed.Alert.ID, closed.Alert.Status, id)
	}
	got, err := db.GetAlert(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != incident.StatusClosed || len(got.History) < 3 {
		t.Errorf("stored alert: %s with %d history entries, want closed with new, severity, ack, close", got.Status, len(got.History))
	}
	if err := db.DeleteAlert(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetAlert(t.Context(), id)
	wantErr(t, "GetAlert after delete", err, incident.ErrNotFound)
	wantErr(t, "DeleteAlert twice", db.DeleteAlert(t.Context(), id), incident.ErrNotFound)
}

// testConcurrentIdenticalAlerts sends 50 identical alerts at once over separate connections:
// one alert, duplicateCount 49, and no error (Alerta #835, #2071).
func (s suite) testConcurrentIdenticalAlerts(t *testing.T) {
	url := s.newURL(t)
	dbs := []*store.DB{open(t, url), open(t, url), open(t, url), open(t, url)}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := dbs[i%len(dbs)].ReceiveAlert(t.Context(), alert("node7", "NodeDown", "critical"),
				incident.ReceiveOptions{NewID: newAlertID})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("ReceiveAlert: %v", err)
		}
	}
	list, err := dbs[0].FindAlerts(t.Context(), incident.Query{Page: 1, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || list.Alerts[0].DuplicateCount != n-1 {
		t.Errorf("%d alerts, first with duplicateCount %d; want 1 with %d", list.Total, list.Alerts[0].DuplicateCount, n-1)
	}
}

func (s suite) testAlertOnRelease(t *testing.T) {
	db := s.fresh(t)
	rel := create(t, db, release.Release{Application: "web", Environment: "production", Revision: "abc",
		StartedAt: t0, Result: release.ResultSucceeded, FinishedAt: ptr(t0.Add(time.Minute))})
	route := func(e notify.Event) []notify.Notification {
		return []notify.Notification{{Channel: "ops", Event: e}}
	}
	opts := incident.ReceiveOptions{Link: incident.LinkCandidates, Effects: func(o incident.Outcome) incident.Effects {
		return incident.EffectsOf(o, route, nil)
	}}
	o := receive(t, db, alert("web-5d8f", "HighErrorRate", "major"), opts)
	if o.Alert.ReleaseID != rel.ID {
		t.Fatalf("alert release = %d, want %d (tag app=web in production)", o.Alert.ReleaseID, rel.ID)
	}
	receive(t, db, alert("web-5d8f", "HighErrorRate", "major"), opts)    // a duplicate: nothing to tell
	receive(t, db, alert("web-5d8f", "HighErrorRate", "critical"), opts) // escalated
	tl, err := db.Timeline(t.Context(), rel.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []release.EventType
	for _, e := range tl.Events {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[alert.raised alert.escalated]" {
		t.Errorf("timeline = %v, want [alert.raised alert.escalated]", types)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{Channel: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Notifications) != 2 || page.Notifications[0].Event.Application != "web" || page.Notifications[0].Event.ReleaseID != rel.ID {
		t.Errorf("notifications = %+v, want 2 on release %d of web", page.Notifications, rel.ID)
	}
	// No app label of a deployed Application: no release, no timeline, still notified.
	other := alert("db9", "DiskFull", "minor")
	other.Tags, other.Service = nil, nil
	if o := receive(t, db, other, opts); o.Alert.ReleaseID != 0 {
		t.Errorf("unrelated alert attached to release %d", o.Alert.ReleaseID)
	}
}

func ptr[T any](v T) *T { return &v }

func (s suite) testFindAlerts(t *testing.T) {
	db := s.fresh(t)
	for i, sev := range []incident.Severity{"critical", "major", "minor", "warning"} {
		a := alert(fmt.Sprintf("host%d", i), "CPUHigh", sev)
		if i%2 == 1 {
			a.Environment = "stage"
			a.Service = []string{"api"}
		}
		receive(t, db, a, incident.ReceiveOptions{Now: t0.Add(time.Duration(i) * time.Minute)})
	}
	for _, tc := range []struct {
		name  string
		q     incident.Query
		total int
	}{
		{"all", incident.Query{}, 4},
		{"environment", incident.Query{Filters: []incident.Filter{{Field: "environment", Values: []string{"stage"}}}}, 2},
		{"severity OR", incident.Query{Filters: []incident.Filter{{Field: "severity", Values: []string{"critical", "minor"}}}}, 2},
		{"service", incident.Query{Filters: []incident.Filter{{Field: "service", Values: []string{"api"}}}}, 2},
		{"negated", incident.Query{Filters: []incident.Filter{{Field: "severity", Values: []string{"critical"}, Negate: true}}}, 3},
		{"text", incident.Query{Text: "HOST3"}, 1},
		{"id prefix", incident.Query{Filters: []incident.Filter{{Field: "id", Values: []string{"a-"}}}}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Page, tc.q.PageSize = 1, 2
			list, err := db.FindAlerts(t.Context(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if list.Total != tc.total || len(list.Alerts) != min(2, tc.total) {
				t.Errorf("total %d, page %d; want %d, %d", list.Total, len(list.Alerts), tc.total, min(2, tc.total))
			}
			n := 0
			for _, c := range list.SeverityCounts {
				n += c
			}
			if n != tc.total {
				t.Errorf("severity counts %v add up to %d, want %d", list.SeverityCounts, n, tc.total)
			}
		})
	}
}

// testFindAlertsInSQL checks the database's own counting, sorting and paging of the
// queries it can answer alone against incident.Query's rules applied in Go: the same query
// with an id-prefix filter that every alert passes (which the database cannot apply) must
// give the same counts and the same alerts in the same order, page by page.
func (s suite) testFindAlertsInSQL(t *testing.T) {
	db := s.fresh(t)
	hub := incident.NewHub(db, incident.HubOptions{})
	sevs := []incident.Severity{"critical", "major", "minor", "warning", "informational", "security"}
	for i := range 40 {
		a := alert(fmt.Sprintf("host%02d", i%25), []string{"CPUHigh", "DiskFull"}[i%2], sevs[i%len(sevs)])
		a.Environment = []string{"production", "stage"}[i%3%2]
		a.Service = []string{[]string{"web", "api", "db_main"}[i%3]}
		o := receive(t, db, a, incident.ReceiveOptions{Now: t0.Add(time.Duration(i%7) * time.Minute)})
		switch i % 5 {
		case 1:
			_, _ = hub.Action(t.Context(), o.Alert.ID, incident.ActionAck, "", "alice", 0)
		case 2:
			_, _ = hub.Action(t.Context(), o.Alert.ID, incident.ActionClose, "", "alice", 0)
		}
	}
	f := func(field string, values ...string) incident.Filter {
		return incident.Filter{Field: field, Values: values}
	}
	for _, tc := range []struct {
		name    string
		filters []incident.Filter
		sort    []incident.Sort
	}{
		{"newest first", nil, []incident.Sort{{Field: "lastReceiveTime", Desc: true}}},
		{"open and ack by severity", []incident.Filter{f("status", "open", "ack")}, []incident.Sort{{Field: "severity"}}},
		{"status then duplicates", nil, []incident.Sort{{Field: "status"}, {Field: "duplicateCount", Desc: true}}},
		{"environment and service", []incident.Filter{f("environment", "production"), f("service", "web")},
			[]incident.Sort{{Field: "createTime"}}},
		{"a service with LIKE's wildcard", []incident.Filter{f("service", "db_main")}, []incident.Sort{{Field: "severity", Desc: true}}},
		{"severities, oldest update first", []incident.Filter{f("severity", "critical", "security")},
			[]incident.Sort{{Field: "updateTime"}, {Field: "timeout"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for page := 1; page <= 4; page++ {
				q := incident.Query{Filters: tc.filters, Sort: tc.sort, Page: page, PageSize: 7}
				got, err := db.FindAlerts(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				q.Filters = append(slices.Clone(tc.filters), f("id", ""))
				want, err := db.FindAlerts(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if got.Total != want.Total || !maps.Equal(got.SeverityCounts, want.SeverityCounts) ||
					!maps.Equal(got.StatusCounts, want.StatusCounts) {
					t.Errorf("page %d: total %d %v %v; want %d %v %v", page, got.Total, got.SeverityCounts,
						got.StatusCounts, want.Total, want.SeverityCounts, want.StatusCounts)
				}
				ids := func(l incident.List) []string {
					out := []string{}
					for _, a := range l.Alerts {
						out = append(out, a.ID)
					}
					return out
				}
				if !slices.Equal(ids(got), ids(want)) {
					t.Errorf("page %d: %v, want %v", page, ids(got), ids(want))
				}
			}
		})
	}
}

// testHousekeeping expires an alert whose timeout passed, reopens one whose ack ran out, and
// purges closed alerts past the retention, each exactly when due.
func (s suite) testHousekeeping(t *testing.T) {
	db := s.fresh(t)
	hub := incident.NewHub(db, incident.HubOptions{})
	now := time.Now().UTC().Truncate(time.Second)
	short := alert("web1", "Slow", "minor")
	short.Timeout = 60
	expiring := receive(t, db, short, incident.ReceiveOptions{Now: now}).Alert
	acked := receive(t, db, alert("web2", "Slow", "minor"), incident.ReceiveOptions{Now: now}).Alert
	if _, err := hub.Action(t.Context(), acked.ID, incident.ActionAck, "looking", "alice", 120); err != nil {
		t.Fatal(err)
	}
	housekeep := func(at time.Time, retention time.Duration) (int, int) {
		t.Helper()
		changed, purged, err := hub.Housekeep(t.Context(), db, at, retention)
		if err != nil {
			t.Fatalf("Housekeep at %s: %v", at, err)
		}
		return changed, purged
	}
	status := func(id string) incident.Status {
		t.Helper()
		a, err := db.GetAlert(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Status
	}
	if c, _ := housekeep(now.Add(30*time.Second), 0); c != 0 {
		t.Errorf("at +30s housekeeping changed %d alerts, want none yet", c)
	}
	if c, _ := housekeep(now.Add(61*time.Second), 0); c != 1 || status(expiring.ID) != incident.StatusExpired {
		t.Errorf("at +61s: changed %d, status %s; want the 60s alert expired", c, status(expiring.ID))
	}
	if c, _ := housekeep(time.Now().Add(121*time.Second), 0); c != 1 || status(acked.ID) != incident.StatusOpen {
		t.Errorf("after the ack's 120s: changed %d, status %s; want it open again", c, status(acked.ID))
	}
	if _, p := housekeep(time.Now().Add(time.Hour), 2*time.Hour); p != 0 {
		t.Errorf("purged %d within the retention, want 0", p)
	}
	if _, p := housekeep(time.Now().Add(3*time.Hour), 2*time.Hour); p != 1 {
		t.Errorf("purged %d past the retention, want the expired alert", p)
	}
	if _, err := db.GetAlert(t.Context(), expiring.ID); !errors.Is(err, incident.ErrNotFound) {
		t.Errorf("purged alert: %v, want not found", err)
	}
}
