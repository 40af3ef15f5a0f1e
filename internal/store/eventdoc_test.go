package store

import (
	"bytes"
	"testing"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// TestEventDocumentCompressed: SQLite stores an event's document compressed and reads it
// back whole, and reads documents stored as JSON before compression too.
func TestEventDocumentCompressed(t *testing.T) {
	db := groupDB(t)
	ctx := t.Context()
	p, _, err := db.CreateProject(ctx, errtrack.Project{Name: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	e := errtrack.Event{EventID: errtrack.NewEventID(), Level: errtrack.LevelError, Release: "shop@3f2a9c1",
		Exception: errtrack.Exceptions{{Type: "Boom", Value: "it broke"}}}
	e.Normalize()
	out, err := db.IngestEvent(ctx, p.ID, e, errtrack.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := db.read.QueryRowContext(ctx, `SELECT doc FROM error_events WHERE event_id = ?`, e.EventID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, zstdMagic) {
		t.Errorf("stored document starts %q, want zstd's magic number", raw[:min(8, len(raw))])
	}
	got, err := db.GetEvent(ctx, p.ID, e.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Event.Release != e.Release || got.Event.Exception[0].Value != "it broke" {
		t.Errorf("read back %+v, want the event ingested", got.Event)
	}

	// A document from before compression.
	old := errtrack.NewEventID()
	if _, err := db.write.ExecContext(ctx, `INSERT INTO error_events (project_id, issue_id, event_id, received_at, doc)
		VALUES (?, ?, ?, 0, ?)`, p.ID, out.Issue.ID, old, `{"event_id":"`+old+`","logentry":{"formatted":"stored as JSON"}}`); err != nil {
		t.Fatal(err)
	}
	got, err = db.GetEvent(ctx, p.ID, old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Event.LogEntry == nil || got.Event.LogEntry.Formatted != "stored as JSON" {
		t.Errorf("read back %+v, want the JSON document's message", got.Event)
	}
}
