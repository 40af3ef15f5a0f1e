package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// TestIssueMemoAfterRollback: an ingest rolled back after it wrote an issue leaves the memo
// holding a version that was never stored, and the next ingest counts from what was.
func TestIssueMemoAfterRollback(t *testing.T) {
	db := groupDB(t)
	ctx := t.Context()
	p, _, err := db.CreateProject(ctx, errtrack.Project{Name: "memo"})
	if err != nil {
		t.Fatal(err)
	}
	event := func() errtrack.Event {
		e := errtrack.Event{EventID: errtrack.NewEventID(), Level: errtrack.LevelError,
			Exception: errtrack.Exceptions{{Type: "Boom", Value: "it broke"}}}
		e.Normalize()
		return e
	}
	ingest := func() errtrack.Outcome {
		t.Helper()
		out, err := db.IngestEvent(ctx, p.ID, event(), errtrack.IngestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := ingest()
	errRollBack := errors.New("roll back")
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		e := event()
		e.Timestamp = storedTime(time.Now())
		out, err := db.ingest(context.Background(), tx, e, errtrack.NewIssue(p.ID, e), "{}", e.Timestamp, errtrack.IngestOptions{})
		if err != nil {
			return err
		}
		if out.Issue.ID != first.Issue.ID || out.Issue.Count != 2 {
			t.Errorf("ingest in the transaction = issue %d count %d, want issue %d count 2", out.Issue.ID, out.Issue.Count, first.Issue.ID)
		}
		return errRollBack
	})
	if !errors.Is(err, errRollBack) {
		t.Fatalf("transaction = %v, want it rolled back", err)
	}
	if got := ingest().Issue; got.ID != first.Issue.ID || got.Count != 2 {
		t.Errorf("after the rollback, ingest = issue %d count %d, want issue %d count 2", got.ID, got.Count, first.Issue.ID)
	}
	stored, err := db.GetIssue(ctx, first.Issue.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Count != 2 {
		t.Errorf("stored count %d, want 2", stored.Count)
	}
}

// TestIssueMemoSeesOperatorsChanges: an issue resolved between two events is reopened by
// the second, not overwritten with the state the memo held before the resolve.
func TestIssueMemoSeesOperatorsChanges(t *testing.T) {
	db := groupDB(t)
	ctx := t.Context()
	p, _, err := db.CreateProject(ctx, errtrack.Project{Name: "memo"})
	if err != nil {
		t.Fatal(err)
	}
	e := errtrack.Event{EventID: errtrack.NewEventID(), Exception: errtrack.Exceptions{{Type: "Boom"}}}
	e.Normalize()
	out, err := db.IngestEvent(ctx, p.ID, e, errtrack.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateIssue(ctx, out.Issue.ID, func(is errtrack.Issue) (errtrack.Issue, error) {
		return errtrack.Apply(is, errtrack.ActionResolve, "", time.Now())
	}, nil); err != nil {
		t.Fatal(err)
	}
	e.EventID = errtrack.NewEventID()
	out, err = db.IngestEvent(ctx, p.ID, e, errtrack.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Kind != errtrack.KindRegressed || out.Issue.Count != 2 {
		t.Errorf("event after the resolve = %s, count %d; want regressed, count 2", out.Kind, out.Issue.Count)
	}
}
