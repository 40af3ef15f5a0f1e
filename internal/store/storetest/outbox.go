package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

// outboxCases are the conformance cases of the notification outbox.
func (s suite) outboxCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"EventKeyIdempotent", s.testEventKeyIdempotent},
		{"EventWithNotifications", s.testEventWithNotifications},
		{"NotificationRolledBackWithEvent", s.testNotificationRolledBack},
		{"ClaimHeadOfEachChannel", s.testClaimHead},
		{"FinishAndRetry", s.testFinishAndRetry},
		{"LeaseLost", s.testLeaseLost},
		{"FindNotifications", s.testFindNotifications},
		{"ConcurrentClaimers", s.testConcurrentClaimers},
	}
}

func note(channel string, typ string) notify.Notification {
	return notify.Notification{Channel: channel, Event: notify.Event{Type: typ, Summary: "s", Application: "shop"}}
}

func (s suite) testEventKeyIdempotent(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	for i := range 3 {
		e := &release.Event{ReleaseID: r.ID, Type: release.EventDeploySucceeded, Time: t0, Summary: "done", Key: "deploy.succeeded"}
		recorded, err := db.RecordEvent(t.Context(), e, []notify.Notification{note("chat", "deploy.succeeded")})
		if err != nil {
			t.Fatalf("RecordEvent %d: %v", i, err)
		}
		if recorded != (i == 0) || (e.ID != 0) != (i == 0) {
			t.Errorf("RecordEvent %d: recorded %v, ID %d; want only the first recorded", i, recorded, e.ID)
		}
	}
	// Events without a key are never de-duplicated.
	for range 2 {
		appendEvent(t, db, release.Event{ReleaseID: r.ID, Type: release.EventDeployDriftCorrected, Time: t0, Summary: "drift"})
	}
	tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []release.EventType
	for _, e := range tl.Events {
		types = append(types, e.Type)
	}
	want := []release.EventType{release.EventDeploySucceeded, release.EventDeployDriftCorrected, release.EventDeployDriftCorrected}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("timeline types (-want +got):\n%s", diff)
	}
	if tl.Events[0].Key != "deploy.succeeded" {
		t.Errorf("key = %q, want it stored", tl.Events[0].Key)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Notifications) != 1 {
		t.Fatalf("%d notifications, want 1 for an event recorded once", len(page.Notifications))
	}
}

func (s suite) testEventWithNotifications(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	e := &release.Event{ReleaseID: r.ID, Type: release.EventDeployFailed, Time: t0, Summary: "failed", Key: "deploy.failed"}
	// The same channel twice (a global and an Application subscription) is one message.
	notes := []notify.Notification{note("chat", "deploy.failed"), note("ops", "deploy.failed"), note("chat", "deploy.failed")}
	if _, err := db.RecordEvent(t.Context(), e, notes); err != nil {
		t.Fatal(err)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{ReleaseID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range page.Notifications {
		got = append(got, fmt.Sprintf("%s %s %s %d", n.Channel, n.Key, n.Status, n.Event.ReleaseID))
	}
	key := fmt.Sprintf("release/%d/deploy.failed", r.ID)
	want := []string{"ops " + key + " pending " + fmt.Sprint(r.ID), "chat " + key + " pending " + fmt.Sprint(r.ID)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	st, err := db.Outbox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 2 || st.NextDue.IsZero() {
		t.Errorf("Outbox() = %+v, want 2 pending with a due time", st)
	}
}

func (s suite) testNotificationRolledBack(t *testing.T) {
	db := s.fresh(t)
	r := create(t, db, newRelease(0))
	// An invalid notification fails the whole transaction: the event is not recorded either.
	e := &release.Event{ReleaseID: r.ID, Type: release.EventDeployFailed, Time: t0, Summary: "failed", Key: "k"}
	_, err := db.RecordEvent(t.Context(), e, []notify.Notification{note("chat", "deploy.failed"), note("Bad Name", "deploy.failed")})
	wantErr(t, "RecordEvent with a bad channel", err, notify.ErrInvalid)
	tl, err := db.Timeline(t.Context(), r.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Events) != 0 || len(page.Notifications) != 0 {
		t.Errorf("after a failed RecordEvent: %d events, %d notifications; want none", len(tl.Events), len(page.Notifications))
	}
	// Retrying the same key after the failure records it.
	if ok, err := db.RecordEvent(t.Context(), e, []notify.Notification{note("chat", "deploy.failed")}); err != nil || !ok {
		t.Errorf("RecordEvent retry = %v, %v; want recorded", ok, err)
	}
}

func enqueue(t *testing.T, db *store.DB, notes ...notify.Notification) []int64 {
	t.Helper()
	for i := range notes {
		if notes[i].Key == "" {
			notes[i].Key = fmt.Sprintf("k%d-%d", time.Now().UnixNano(), i)
		}
	}
	ids, err := db.EnqueueNotifications(t.Context(), notes)
	if err != nil {
		t.Fatalf("EnqueueNotifications: %v", err)
	}
	return ids
}

func claimedIDs(ns []notify.Notification) []int64 {
	out := []int64{}
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func (s suite) testClaimHead(t *testing.T) {
	db := s.fresh(t)
	a := enqueue(t, db, note("a", "x.y"), note("a", "x.y"), note("b", "x.y"))
	b := enqueue(t, db, note("b", "x.y"))
	now := time.Now()
	got, err := db.ClaimNotifications(t.Context(), "w1", now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	// One per channel: the oldest of each.
	if diff := cmp.Diff([]int64{a[0], a[2]}, claimedIDs(got)); diff != "" {
		t.Errorf("first claim (-want +got):\n%s", diff)
	}
	// Held heads block their channels, for this owner and any other.
	for _, owner := range []string{"w1", "w2"} {
		got, err = db.ClaimNotifications(t.Context(), owner, now, time.Minute, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("claim by %s while heads are leased = %v, %v; want nothing", owner, claimedIDs(got), err)
		}
	}
	// Sent, the next of channel a becomes the head; failed, the next of b.
	if err := db.FinishNotification(t.Context(), a[0], "w1", notify.Attempt{Status: notify.StatusSent, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishNotification(t.Context(), a[2], "w1", notify.Attempt{Status: notify.StatusFailed, At: now, Error: "no"}); err != nil {
		t.Fatal(err)
	}
	got, err = db.ClaimNotifications(t.Context(), "w2", now, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{a[1], b[0]}, claimedIDs(got)); diff != "" {
		t.Errorf("second claim (-want +got):\n%s", diff)
	}
	// An expired lease is claimed again by anyone.
	got, err = db.ClaimNotifications(t.Context(), "w3", now.Add(2*time.Minute), time.Minute, 1)
	if err != nil || len(got) != 1 || got[0].ID != a[1] {
		t.Errorf("claim after the lease ran out = %v, %v; want [%d]", claimedIDs(got), err, a[1])
	}
	// A lease extended by its owner holds past its first end; no one else can extend it.
	if err := db.ExtendLease(t.Context(), b[0], "w2", now.Add(10*time.Minute)); err != nil {
		t.Errorf("ExtendLease by the owner: %v", err)
	}
	err = db.ExtendLease(t.Context(), b[0], "w3", now.Add(time.Hour))
	wantErr(t, "ExtendLease by another worker", err, notify.ErrLeaseLost)
	got, err = db.ClaimNotifications(t.Context(), "w3", now.Add(5*time.Minute), time.Minute, 10)
	if err != nil || slices.Contains(claimedIDs(got), b[0]) {
		t.Errorf("claim while the extended lease holds = %v, %v; want b's head still held", claimedIDs(got), err)
	}
}

func (s suite) testFinishAndRetry(t *testing.T) {
	db := s.fresh(t)
	ids := enqueue(t, db, note("a", "x.y"), note("a", "x.y"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	claim := func(at time.Time) []int64 {
		t.Helper()
		got, err := db.ClaimNotifications(t.Context(), "w", at, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		return claimedIDs(got)
	}
	if got := claim(now); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim = %v, want %v", got, ids[:1])
	}
	next := now.Add(time.Hour)
	if err := db.FinishNotification(t.Context(), ids[0], "w", notify.Attempt{Status: notify.StatusPending, Next: next, At: now, Error: "HTTP 500"}); err != nil {
		t.Fatal(err)
	}
	// A head waiting for its retry holds its channel back: order is kept.
	if got := claim(now); len(got) != 0 {
		t.Errorf("claim before the retry is due = %v, want nothing", got)
	}
	st, err := db.Outbox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.NextDue.IsZero() || st.NextDue.After(now) { // the second is due, though blocked
		t.Errorf("NextDue = %s, want at or before %s", st.NextDue, now)
	}
	if got := claim(next); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim when due = %v, want %v", got, ids[:1])
	}
	// A rate-limited answer does not count as a failed attempt.
	if err := db.FinishNotification(t.Context(), ids[0], "w", notify.Attempt{Status: notify.StatusPending, Next: next, At: next, Error: "HTTP 429", RateLimited: true}); err != nil {
		t.Fatal(err)
	}
	claim(next)
	if err := db.FinishNotification(t.Context(), ids[0], "w", notify.Attempt{Status: notify.StatusSent, At: next}); err != nil {
		t.Fatal(err)
	}
	n, err := db.GetNotification(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if n.Status != notify.StatusSent || n.Attempts != 1 || n.SentAt == nil || !n.SentAt.Equal(next) || n.LastError != "" {
		t.Errorf("after retry, 429 and success: %+v; want sent, 1 failed attempt, sent at %s, no error", n, next)
	}
	_, err = db.GetNotification(t.Context(), 999999)
	wantErr(t, "GetNotification(missing)", err, notify.ErrNotFound)
	err = db.FinishNotification(t.Context(), ids[0], "w", notify.Attempt{Status: "lost", At: next})
	wantErr(t, "FinishNotification(bad status)", err, notify.ErrInvalid)
}

func (s suite) testLeaseLost(t *testing.T) {
	db := s.fresh(t)
	ids := enqueue(t, db, note("a", "x.y"))
	now := time.Now()
	if _, err := db.ClaimNotifications(t.Context(), "slow", now, time.Second, 1); err != nil {
		t.Fatal(err)
	}
	got, err := db.ClaimNotifications(t.Context(), "fast", now.Add(2*time.Second), time.Minute, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim after expiry = %v, %v", claimedIDs(got), err)
	}
	if err := db.FinishNotification(t.Context(), ids[0], "fast", notify.Attempt{Status: notify.StatusSent, At: now}); err != nil {
		t.Fatal(err)
	}
	err = db.FinishNotification(t.Context(), ids[0], "slow", notify.Attempt{Status: notify.StatusFailed, At: now})
	wantErr(t, "FinishNotification by the expired owner", err, notify.ErrLeaseLost)
	n, err := db.GetNotification(t.Context(), ids[0])
	if err != nil || n.Status != notify.StatusSent {
		t.Errorf("status = %s, %v; the new owner's outcome must stand", n.Status, err)
	}
}

func (s suite) testFindNotifications(t *testing.T) {
	db := s.fresh(t)
	var all []int64
	for i := range 7 {
		ch := "a"
		if i%2 == 1 {
			ch = "b"
		}
		all = append(all, enqueue(t, db, note(ch, "x.y"))...)
	}
	// Duplicates by key are dropped and get no ID.
	if ids, err := db.EnqueueNotifications(t.Context(), []notify.Notification{{Channel: "a", Key: "same", Event: notify.Event{Type: "x.y"}}, {Channel: "a", Key: "same", Event: notify.Event{Type: "x.y"}}}); err != nil || len(ids) != 1 {
		t.Errorf("EnqueueNotifications of a duplicate = %v, %v; want one ID", ids, err)
	} else {
		all = append(all, ids...)
	}
	now := time.Now()
	if _, err := db.ClaimNotifications(t.Context(), "w", now, time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishNotification(t.Context(), all[0], "w", notify.Attempt{Status: notify.StatusFailed, At: now, Error: "HTTP 400: chat not found"}); err != nil {
		t.Fatal(err)
	}
	failed, err := db.FindNotifications(t.Context(), notify.Filter{Status: notify.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{all[0]}, claimedIDs(failed.Notifications)); diff != "" {
		t.Errorf("status=failed (-want +got):\n%s", diff)
	}
	if failed.Notifications[0].LastError != "HTTP 400: chat not found" {
		t.Errorf("LastError = %q", failed.Notifications[0].LastError)
	}
	var got []int64
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := db.FindNotifications(t.Context(), notify.Filter{Channel: "b", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, claimedIDs(page.Notifications)...)
		if cursor = page.Next; cursor == "" || pages > 10 {
			break
		}
	}
	if diff := cmp.Diff([]int64{all[5], all[3], all[1]}, got); diff != "" {
		t.Errorf("channel=b, pages of 2, newest first (-want +got):\n%s", diff)
	}
	_, err = db.FindNotifications(t.Context(), notify.Filter{Status: "lost"})
	wantErr(t, "FindNotifications(bad status)", err, notify.ErrInvalid)
	_, err = db.FindNotifications(t.Context(), notify.Filter{Cursor: "nope"})
	wantErr(t, "FindNotifications(bad cursor)", err, notify.ErrInvalid)
}

// testConcurrentClaimers runs workers on separate connections, as replicas do, until the
// outbox is empty: every notification is delivered exactly once and each channel in order.
func (s suite) testConcurrentClaimers(t *testing.T) {
	url := s.newURL(t)
	dbs := []*store.DB{open(t, url), open(t, url), open(t, url)}
	const channels, each = 4, 15
	for i := range each {
		var notes []notify.Notification
		for c := range channels {
			notes = append(notes, note(fmt.Sprintf("c%d", c), "x.y"))
		}
		_ = i
		enqueue(t, dbs[0], notes...)
	}
	var (
		mu   sync.Mutex
		sent = map[string][]int64{}
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for w, db := range dbs {
		for g := range 2 {
			owner := fmt.Sprintf("w%d-%d", w, g)
			wg.Go(func() {
				for idle := 0; idle < 20; {
					got, err := db.ClaimNotifications(t.Context(), owner, time.Now(), time.Minute, 3)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					if len(got) == 0 {
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					for _, n := range got {
						mu.Lock()
						sent[n.Channel] = append(sent[n.Channel], n.ID)
						seen[n.ID]++
						mu.Unlock()
						err := db.FinishNotification(t.Context(), n.ID, owner, notify.Attempt{Status: notify.StatusSent, At: time.Now()})
						if err != nil && !errors.Is(err, notify.ErrLeaseLost) {
							t.Errorf("finish: %v", err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != channels*each {
		t.Errorf("%d notifications delivered, want %d", len(seen), channels*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("notification %d delivered %d times", id, n)
		}
	}
	for c, ids := range sent {
		if !slices.IsSorted(ids) {
			t.Errorf("channel %s delivered out of order: %v", c, ids)
		}
	}
}
