package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/store"
)

// heartbeatCases are the conformance cases of heartbeats and blackouts.
func (s suite) heartbeatCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"HeartbeatUpsert", s.testHeartbeatUpsert},
		{"HeartbeatExpiry", s.testHeartbeatExpiry},
		{"HeartbeatInvalid", s.testHeartbeatInvalid},
		{"HeartbeatConcurrentUpsert", s.testHeartbeatConcurrentUpsert},
		{"BlackoutCreateList", s.testBlackoutCreateList},
		{"BlackoutActive", s.testBlackoutActive},
		{"BlackoutSuppressesAlert", s.testBlackoutSuppressesAlert},
	}
}

// heartbeat returns a valid heartbeat of origin received at t0+offset.
func heartbeat(origin string, offset time.Duration, timeout int) incident.Heartbeat {
	return incident.Heartbeat{Origin: origin, Tags: []string{"db"}, Attributes: map[string]any{"environment": "production"},
		EventType: "Heartbeat", CreateTime: t0.Add(offset - 100*time.Millisecond), Timeout: timeout, MaxLatency: 2000,
		ReceiveTime: t0.Add(offset)}
}

func upsert(t *testing.T, db *store.DB, hb incident.Heartbeat) (incident.Heartbeat, *incident.Heartbeat) {
	t.Helper()
	cur, prev, err := db.UpsertHeartbeat(t.Context(), hb)
	if err != nil {
		t.Fatalf("UpsertHeartbeat(%s): %v", hb.Origin, err)
	}
	return cur, prev
}

func (s suite) testHeartbeatUpsert(t *testing.T) {
	db := s.fresh(t)
	in := heartbeat("cron/db1", 0, 60)
	in.Attributes["n"] = 3.0
	first, prev := upsert(t, db, in)
	if prev != nil || first.ID == "" || first.Alerted {
		t.Fatalf("first heartbeat: id %q, prev %v, alerted %v; want a new ID, no prev, not alerted", first.ID, prev, first.Alerted)
	}
	want := in
	want.ID = first.ID
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("UpsertHeartbeat result (-want +got):\n%s", diff)
	}
	got, err := db.GetHeartbeat(t.Context(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("GetHeartbeat (-want +got):\n%s", diff)
	}

	// The next heartbeat of the sender replaces it, keeping the ID, and returns the previous.
	next := heartbeat("cron/db1", time.Minute, 120)
	next.ID = "ignored"
	next.Tags, next.Attributes = []string{"db", "eu"}, nil
	second, prev := upsert(t, db, next)
	if prev == nil {
		t.Fatal("second heartbeat: no previous")
	}
	if diff := cmp.Diff(first, *prev); diff != "" {
		t.Errorf("previous heartbeat (-want +got):\n%s", diff)
	}
	want = next
	want.ID, want.Attributes = first.ID, map[string]any{}
	if diff := cmp.Diff(want, second); diff != "" {
		t.Errorf("second heartbeat (-want +got):\n%s", diff)
	}

	// Another customer's sender of the same origin is another heartbeat.
	other := heartbeat("cron/db1", 2*time.Minute, 60)
	other.Customer = "acme"
	third, prev := upsert(t, db, other)
	if prev != nil || third.ID == first.ID {
		t.Errorf("other customer's heartbeat: id %s, prev %v; want a heartbeat of its own", third.ID, prev)
	}
	list, err := db.ListHeartbeats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]incident.Heartbeat{third, second}, list); diff != "" {
		t.Errorf("ListHeartbeats, latest first (-want +got):\n%s", diff)
	}

	if err := db.DeleteHeartbeat(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetHeartbeat(t.Context(), first.ID)
	wantErr(t, "GetHeartbeat after delete", err, incident.ErrNotFound)
	wantErr(t, "DeleteHeartbeat twice", db.DeleteHeartbeat(t.Context(), first.ID), incident.ErrNotFound)
	// After a delete the sender starts afresh.
	if again, prev := upsert(t, db, heartbeat("cron/db1", 3*time.Minute, 60)); prev != nil || again.ID == first.ID {
		t.Errorf("heartbeat after delete: id %s, prev %v; want a new heartbeat", again.ID, prev)
	}
}

// testHeartbeatExpiry walks one expiry through housekeeping's steps: found expired, marked
// alerted so it is raised once, then cleared by the sender's return.
func (s suite) testHeartbeatExpiry(t *testing.T) {
	db := s.fresh(t)
	hb, _ := upsert(t, db, heartbeat("cron/db1", 0, 60))
	fresh, _ := upsert(t, db, heartbeat("cron/db2", 30*time.Second, 60))
	expired := func(now time.Time) []string {
		t.Helper()
		hbs, err := db.ExpiredHeartbeats(t.Context(), now)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, h := range hbs {
			ids = append(ids, h.ID)
		}
		return ids
	}
	if got := expired(t0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("expired at the timeout = %v, want none", got)
	}
	if diff := cmp.Diff([]string{hb.ID}, expired(t0.Add(time.Minute+time.Millisecond))); diff != "" {
		t.Errorf("expired just after the timeout (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{hb.ID, fresh.ID}, expired(t0.Add(time.Hour))); diff != "" {
		t.Errorf("expired an hour on, longest expired first (-want +got):\n%s", diff)
	}

	// Raised: no longer listed, and stored as alerted.
	if marked, err := db.MarkHeartbeatAlerted(t.Context(), hb, true); err != nil || !marked {
		t.Fatalf("MarkHeartbeatAlerted = %v, %v; want marked", marked, err)
	}
	if diff := cmp.Diff([]string{fresh.ID}, expired(t0.Add(time.Hour))); diff != "" {
		t.Errorf("expired after marking (-want +got):\n%s", diff)
	}
	if got, err := db.GetHeartbeat(t.Context(), hb.ID); err != nil || !got.Alerted {
		t.Errorf("GetHeartbeat after marking: alerted %v, %v", got.Alerted, err)
	}

	// The sender comes back: the upsert reports the raised expiry and clears the flag.
	back, prev := upsert(t, db, heartbeat("cron/db1", 2*time.Minute, 60))
	if prev == nil || !prev.Alerted || back.Alerted {
		t.Fatalf("heartbeat after expiry: prev %+v, cur alerted %v; want prev alerted, cur not", prev, back.Alerted)
	}
	// A mark of the stale state changes nothing and says so.
	if marked, err := db.MarkHeartbeatAlerted(t.Context(), hb, true); err != nil || marked {
		t.Errorf("MarkHeartbeatAlerted of a superseded heartbeat = %v, %v; want not marked", marked, err)
	}
	if got, err := db.GetHeartbeat(t.Context(), hb.ID); err != nil || got.Alerted {
		t.Errorf("GetHeartbeat after a stale mark: alerted %v, %v; want not alerted", got.Alerted, err)
	}
	// It expires again later, and is raised again (beside the other, never raised).
	if diff := cmp.Diff([]string{fresh.ID, hb.ID}, expired(t0.Add(3*time.Minute+time.Millisecond))); diff != "" {
		t.Errorf("expired again (-want +got):\n%s", diff)
	}
	// Unmarking works too, and a deleted heartbeat is not found.
	if marked, err := db.MarkHeartbeatAlerted(t.Context(), back, false); err != nil || !marked {
		t.Errorf("MarkHeartbeatAlerted(false) = %v, %v", marked, err)
	}
	if err := db.DeleteHeartbeat(t.Context(), hb.ID); err != nil {
		t.Fatal(err)
	}
	_, err := db.MarkHeartbeatAlerted(t.Context(), back, true)
	wantErr(t, "MarkHeartbeatAlerted of a deleted heartbeat", err, incident.ErrNotFound)
}

func (s suite) testHeartbeatInvalid(t *testing.T) {
	db := s.fresh(t)
	for name, mod := range map[string]func(*incident.Heartbeat){
		"no origin":   func(h *incident.Heartbeat) { h.Origin = "" },
		"no timeout":  func(h *incident.Heartbeat) { h.Timeout = 0 },
		"NUL in tags": func(h *incident.Heartbeat) { h.Tags = []string{"a\x00"} },
	} {
		hb := heartbeat("o", 0, 60)
		mod(&hb)
		_, _, err := db.UpsertHeartbeat(t.Context(), hb)
		wantErr(t, "UpsertHeartbeat with "+name, err, incident.ErrInvalid)
	}
	_, err := db.GetHeartbeat(t.Context(), "nope")
	wantErr(t, "GetHeartbeat of an unknown ID", err, incident.ErrNotFound)
	if list, err := db.ListHeartbeats(t.Context()); err != nil || list == nil || len(list) != 0 {
		t.Errorf("ListHeartbeats of none = %v, %v; want an empty list", list, err)
	}
}

// testHeartbeatConcurrentUpsert sends the first heartbeats of one sender at once over
// separate connections: one heartbeat, exactly one of them new, no error.
func (s suite) testHeartbeatConcurrentUpsert(t *testing.T) {
	url := s.newURL(t)
	dbs := []*store.DB{open(t, url), open(t, url), open(t, url)}
	const n = 20
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
		ids   = map[string]bool{}
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			cur, prev, err := dbs[i%len(dbs)].UpsertHeartbeat(t.Context(), heartbeat("cron/db1", time.Duration(i)*time.Second, 60))
			if err != nil {
				t.Errorf("UpsertHeartbeat: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[cur.ID] = true
			if prev == nil {
				fresh++
			}
		})
	}
	close(start)
	wg.Wait()
	list, err := dbs[0].ListHeartbeats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || fresh != 1 || len(ids) != 1 {
		t.Errorf("%d heartbeats stored, %d new, %d IDs; want 1, 1, 1", len(list), fresh, len(ids))
	}
}

// blackout returns a valid blackout of production from t0+start to t0+end.
func blackout(start, end time.Duration) incident.Blackout {
	return incident.Blackout{Environment: "production", Service: []string{}, Tags: []string{},
		StartTime: t0.Add(start), EndTime: t0.Add(end), User: "alice", Text: "maintenance"}
}

func createBlackout(t *testing.T, db *store.DB, b incident.Blackout) incident.Blackout {
	t.Helper()
	got, err := db.CreateBlackout(t.Context(), b)
	if err != nil {
		t.Fatalf("CreateBlackout: %v", err)
	}
	return got
}

func (s suite) testBlackoutCreateList(t *testing.T) {
	db := s.fresh(t)
	before := storedNow()
	in := blackout(time.Hour, 3*time.Hour)
	in.Resource, in.Event, in.Tags, in.Service, in.Customer = "db1", "DiskFull", []string{"eu"}, []string{"billing"}, "acme"
	in.StartTime = in.StartTime.Add(123456789 * time.Nanosecond) // stored to the microsecond
	b := createBlackout(t, db, in)
	if b.ID == "" || b.CreateTime.Before(before) || b.CreateTime.Location() != time.UTC {
		t.Errorf("created blackout: id %q, createTime %s; want an ID and a UTC time after %s", b.ID, b.CreateTime, before)
	}
	want := in
	want.ID, want.CreateTime, want.Priority = b.ID, b.CreateTime, 3 // services
	want.StartTime = want.StartTime.Truncate(time.Microsecond)
	want.Duration = int(want.EndTime.Sub(want.StartTime) / time.Second)
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("CreateBlackout (-want +got):\n%s", diff)
	}
	got, err := db.GetBlackout(t.Context(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("GetBlackout (-want +got):\n%s", diff)
	}

	early := blackout(0, time.Hour)
	early.ID = "my-id"
	e := createBlackout(t, db, early)
	if e.ID != "my-id" || e.Priority != 1 || e.Duration != 3600 {
		t.Errorf("blackout with its own ID: %s, priority %d, duration %d; want my-id, 1, 3600", e.ID, e.Priority, e.Duration)
	}
	_, err = db.CreateBlackout(t.Context(), early)
	if err == nil {
		t.Errorf("CreateBlackout with a taken ID succeeded")
	}
	list, err := db.ListBlackouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]incident.Blackout{e, b}, list); diff != "" {
		t.Errorf("ListBlackouts, earliest first (-want +got):\n%s", diff)
	}

	if err := db.DeleteBlackout(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetBlackout(t.Context(), b.ID)
	wantErr(t, "GetBlackout after delete", err, incident.ErrNotFound)
	wantErr(t, "DeleteBlackout twice", db.DeleteBlackout(t.Context(), b.ID), incident.ErrNotFound)

	for name, mod := range map[string]func(*incident.Blackout){
		"no environment": func(b *incident.Blackout) { b.Environment = "" },
		"no window":      func(b *incident.Blackout) { b.EndTime = b.StartTime },
		"no start":       func(b *incident.Blackout) { b.StartTime = time.Time{} },
	} {
		bad := blackout(0, time.Hour)
		mod(&bad)
		_, err := db.CreateBlackout(t.Context(), bad)
		wantErr(t, "CreateBlackout with "+name, err, incident.ErrInvalid)
	}
}

func (s suite) testBlackoutActive(t *testing.T) {
	db := s.fresh(t)
	past := createBlackout(t, db, blackout(-2*time.Hour, -time.Hour))
	endsNow := createBlackout(t, db, blackout(-time.Hour, 0))
	startsNow := createBlackout(t, db, blackout(0, time.Hour))
	long := createBlackout(t, db, blackout(-24*time.Hour, 24*time.Hour))
	pending := createBlackout(t, db, blackout(time.Hour, 2*time.Hour))
	tests := []struct {
		name string
		now  time.Time
		want []incident.Blackout
	}{
		{"at t0: started now, not ended now", t0, []incident.Blackout{long, startsNow}},
		{"just before t0", t0.Add(-time.Microsecond), []incident.Blackout{long, endsNow}},
		{"in the past one", t0.Add(-90 * time.Minute), []incident.Blackout{long, past}},
		{"in the pending one", t0.Add(90 * time.Minute), []incident.Blackout{long, pending}},
		{"after all", t0.Add(48 * time.Hour), []incident.Blackout{}},
	}
	for _, tt := range tests {
		got, err := db.ActiveBlackouts(t.Context(), tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: ActiveBlackouts (-want +got):\n%s", tt.name, diff)
		}
		for _, b := range got {
			if b.StatusAt(tt.now) != incident.BlackoutActive {
				t.Errorf("%s: blackout %s is %s", tt.name, b.ID, b.StatusAt(tt.now))
			}
		}
	}
}

// testBlackoutSuppressesAlert wires the active blackouts into Receive as the hub does: a covered
// alert is stored, with status blackout.
func (s suite) testBlackoutSuppressesAlert(t *testing.T) {
	db := s.fresh(t)
	now := time.Now()
	b := blackout(0, time.Hour)
	b.StartTime, b.EndTime, b.Resource = now.Add(-time.Minute), now.Add(time.Hour), "db1"
	createBlackout(t, db, b)
	active, err := db.ActiveBlackouts(t.Context(), now)
	if err != nil || len(active) != 1 {
		t.Fatalf("ActiveBlackouts = %v, %v; want the one", active, err)
	}
	rules := incident.Rules{Blackout: func(a incident.Alert) bool { return incident.AnyCovers(active, a, now) }}
	covered := receive(t, db, alert("db1", "DiskFull", "major"), incident.ReceiveOptions{Now: now, Rules: rules})
	other := receive(t, db, alert("db2", "DiskFull", "major"), incident.ReceiveOptions{Now: now, Rules: rules})
	if covered.Alert.Status != incident.StatusBlackout || other.Alert.Status != incident.StatusOpen {
		t.Errorf("statuses %s and %s, want blackout for db1 and open for db2", covered.Alert.Status, other.Alert.Status)
	}
	if got, err := db.GetAlert(t.Context(), covered.Alert.ID); err != nil || got.Status != incident.StatusBlackout {
		t.Errorf("stored covered alert: %s, %v; want it stored in blackout", got.Status, err)
	}
}
