package store

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// TestEventDocumentCompressed: SQLite stores an event's document compressed and reads it
// back whole, reads the documents earlier versions stored, as JSON or compressed with zstd,
// and answers a damaged document with an error.
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
	if !bytes.HasPrefix(raw, s2Magic) {
		t.Errorf("stored document starts %q, want the S2 marker", raw[:min(8, len(raw))])
	}
	got, err := db.GetEvent(ctx, p.ID, e.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Event.Release != e.Release || got.Event.Exception[0].Value != "it broke" {
		t.Errorf("read back %+v, want the event ingested", got.Event)
	}

	store := func(doc any) string {
		t.Helper()
		id := errtrack.NewEventID()
		if _, err := db.write.ExecContext(ctx, `INSERT INTO error_events (project_id, issue_id, event_id, received_at, doc)
			VALUES (?, ?, ?, 0, ?)`, p.ID, out.Issue.ID, id, doc); err != nil {
			t.Fatal(err)
		}
		return id
	}
	old := func(message string) string { return `{"logentry":{"formatted":"` + message + `"}}` }
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]any{
		"JSON": old("stored as JSON"),
		"zstd": enc.EncodeAll([]byte(old("stored as zstd")), nil),
	} {
		got, err = db.GetEvent(ctx, p.ID, store(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := "stored as " + name; got.Event.LogEntry == nil || got.Event.LogEntry.Formatted != want {
			t.Errorf("%s: read back %+v, want the message %q", name, got.Event, want)
		}
	}

	// A damaged document, and one claiming to hold more than any event could: an error, not
	// a panic or a huge allocation.
	for name, doc := range map[string][]byte{
		"truncated": raw[:len(raw)/2],
		"huge":      append(slices.Clone(s2Magic), 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := db.GetEvent(ctx, p.ID, store(doc)); err == nil || !strings.Contains(err.Error(), "decompress") {
			t.Errorf("%s document: err = %v, want a decompress error", name, err)
		}
	}
}
