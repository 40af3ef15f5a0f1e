package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

const releaseColumns = `id, application, environment, revision, commit_message, author, started_at, finished_at, result`

// CreateRelease validates r and stores it, setting r.ID. An empty Result means pending. The
// times in r are set to what is stored: UTC, truncated to the microsecond.
func (db *DB) CreateRelease(ctx context.Context, r *release.Release) error {
	if r == nil {
		return fmt.Errorf("create release: %w: no release", release.ErrInvalid)
	}
	if r.ID != 0 {
		return fmt.Errorf("create release: %w: ID %d is set; the store assigns it", release.ErrInvalid, r.ID)
	}
	n := *r
	if n.Result == "" {
		n.Result = release.ResultPending
	}
	n.StartedAt = storedTime(n.StartedAt)
	if n.FinishedAt != nil {
		t := storedTime(*n.FinishedAt)
		n.FinishedAt = &t
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO releases
			(application, environment, revision, commit_message, author, started_at, finished_at, result)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			n.Application, n.Environment, n.Revision, n.CommitMessage, n.Author,
			db.dialect.time(n.StartedAt), db.dialect.nullTime(n.FinishedAt), string(n.Result),
		).Scan(&n.ID)
	})
	if err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	*r = n
	return nil
}

// GetRelease returns the release with the given ID, or an error wrapping release.ErrNotFound.
func (db *DB) GetRelease(ctx context.Context, id int64) (release.Release, error) {
	var r release.Release
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		r, err = db.getRelease(ctx, tx, id)
		return err
	})
	if err != nil {
		return release.Release{}, fmt.Errorf("get release %d: %w", id, err)
	}
	return r, nil
}

func (db *DB) getRelease(ctx context.Context, tx *sql.Tx, id int64) (release.Release, error) {
	row := tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+releaseColumns+` FROM releases WHERE id = ?`), id)
	r, err := scanRelease(row)
	if errors.Is(err, sql.ErrNoRows) {
		return release.Release{}, release.ErrNotFound
	}
	return r, err
}

// FindReleases returns one page of the releases f selects, newest first: by start time, then
// by ID for releases that started together.
func (db *DB) FindReleases(ctx context.Context, f release.Filter) (release.Page, error) {
	if err := f.Validate(); err != nil {
		return release.Page{}, fmt.Errorf("find releases: %w", err)
	}
	var w where
	for _, eq := range []struct{ column, value string }{
		{"application", f.Application},
		{"environment", f.Environment},
		{"revision", f.Revision},
		{"result", string(f.Result)},
	} {
		if eq.value != "" {
			w.add(eq.column+" = ?", eq.value)
		}
	}
	if !f.Since.IsZero() {
		w.add("started_at >= ?", db.dialect.time(storedTime(f.Since)))
	}
	if !f.Until.IsZero() {
		w.add("started_at < ?", db.dialect.time(storedTime(f.Until)))
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(releaseCursor, f.Cursor)
		if err != nil {
			return release.Page{}, fmt.Errorf("find releases: %w", err)
		}
		w.add("(started_at, id) < (?, ?)", db.dialect.time(t), id)
	}
	page := release.Page{Releases: []release.Release{}}
	limit := pageSize(f.Limit)
	var more bool
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		page.Releases, more, err = queryPage(ctx, tx, limit, scanRelease, db.dialect.q(
			`SELECT `+releaseColumns+` FROM releases`+w.String()+` ORDER BY started_at DESC, id DESC LIMIT ?`),
			w.args...)
		return err
	})
	if err != nil {
		return release.Page{}, fmt.Errorf("find releases: %w", err)
	}
	if more {
		last := page.Releases[len(page.Releases)-1]
		page.Next = encodeCursor(releaseCursor, last.StartedAt, last.ID)
	}
	return page, nil
}

// FinishRelease records the outcome of a pending release. Finishing a release twice is an
// error wrapping release.ErrConflict; a missing release, release.ErrNotFound.
func (db *DB) FinishRelease(ctx context.Context, id int64, result release.Result, at time.Time) error {
	at = storedTime(at)
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		r, err := db.getRelease(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := r.Finish(result, at); err != nil {
			return err
		}
		// The pending condition settles a race with another finisher on PostgreSQL, where
		// the read above takes no lock.
		res, err := tx.ExecContext(ctx, db.dialect.q(
			`UPDATE releases SET result = ?, finished_at = ? WHERE id = ? AND result = ?`),
			string(r.Result), db.dialect.nullTime(r.FinishedAt), id, string(release.ResultPending))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(fmt.Errorf("%w: release %d finished concurrently", release.ErrConflict, id), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish release %d: %w", id, err)
	}
	return nil
}

// AppendEvent validates e and adds it to its release's timeline, setting e.ID. The release
// must exist (release.ErrNotFound otherwise). Like CreateRelease, it sets e.Time to the
// stored time, and empty attributes to nil. An event whose Key the release already has is not
// added again: e.ID is left zero.
func (db *DB) AppendEvent(ctx context.Context, e *release.Event) error {
	_, err := db.RecordEvent(ctx, e, nil)
	return err
}

// RecordEvent is AppendEvent plus the notifications the event causes, written in the same
// transaction: the event and its messages are stored together or not at all. It reports
// whether the event was recorded; an event whose Key the release already has is not, and
// neither are its notifications. A notification without a Key gets one naming the event, and
// a notification whose channel already holds its key is dropped, so each channel gets one
// message per event however often it is routed.
func (db *DB) RecordEvent(ctx context.Context, e *release.Event, notes []notify.Notification) (bool, error) {
	if e == nil {
		return false, fmt.Errorf("append event: %w: no event", release.ErrInvalid)
	}
	if e.ID != 0 {
		return false, fmt.Errorf("append event: %w: ID %d is set; the store assigns it", release.ErrInvalid, e.ID)
	}
	n := *e
	n.Time = storedTime(n.Time)
	if err := n.Validate(); err != nil {
		return false, fmt.Errorf("append event: %w", err)
	}
	if len(n.Attributes) == 0 {
		n.Attributes = nil
	}
	recorded := false
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		if err := db.insertEvent(ctx, tx, &n); err != nil || n.ID == 0 {
			return err // an error, or recorded before
		}
		recorded = true
		dedup := fmt.Sprintf("event/%d", n.ID)
		if n.Key != "" {
			dedup = fmt.Sprintf("release/%d/%s", n.ReleaseID, n.Key)
		}
		for _, note := range notes {
			if note.Key == "" {
				note.Key = dedup
			}
			note.Event.ReleaseID = n.ReleaseID
			if _, err := db.enqueue(ctx, tx, note, storedTime(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
	if db.dialect.foreignKeyViolation(err) {
		return false, fmt.Errorf("append event: release %d: %w", n.ReleaseID, release.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("append event: %w", err)
	}
	if recorded {
		*e = n
	}
	return recorded, nil
}

// Timeline returns one page of a release's events, oldest first: by time, then by ID for
// events that happened together.
func (db *DB) Timeline(ctx context.Context, releaseID int64, f release.TimelineFilter) (release.Timeline, error) {
	if err := f.Validate(); err != nil {
		return release.Timeline{}, fmt.Errorf("timeline of release %d: %w", releaseID, err)
	}
	var w where
	w.add("release_id = ?", releaseID)
	if len(f.Types) > 0 {
		types := make([]any, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		w.add("type IN (?"+strings.Repeat(", ?", len(types)-1)+")", types...)
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(timelineCursor, f.Cursor)
		if err != nil {
			return release.Timeline{}, fmt.Errorf("timeline of release %d: %w", releaseID, err)
		}
		w.add("(occurred_at, id) > (?, ?)", db.dialect.time(t), id)
	}
	timeline := release.Timeline{Events: []release.Event{}}
	limit := pageSize(f.Limit)
	var more bool
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := db.getRelease(ctx, tx, releaseID); err != nil {
			return err
		}
		var err error
		timeline.Events, more, err = queryPage(ctx, tx, limit, scanEvent, db.dialect.q(
			`SELECT id, release_id, type, occurred_at, summary, attributes, event_key FROM release_events`+
				w.String()+` ORDER BY occurred_at, id LIMIT ?`),
			w.args...)
		return err
	})
	if err != nil {
		return release.Timeline{}, fmt.Errorf("timeline of release %d: %w", releaseID, err)
	}
	if more {
		last := timeline.Events[len(timeline.Events)-1]
		timeline.Next = encodeCursor(timelineCursor, last.Time, last.ID)
	}
	return timeline, nil
}

// pageSize applies the documented defaults to a requested page size.
func pageSize(limit int) int {
	switch {
	case limit == 0:
		return release.DefaultLimit
	case limit > release.MaxLimit:
		return release.MaxLimit
	}
	return limit
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryPage runs query, whose last placeholder is the LIMIT, with args, and scans up to
// limit rows. It asks for one row more to learn whether another page follows.
func queryPage[T any](ctx context.Context, tx *sql.Tx, limit int, scan func(rowScanner) (T, error),
	query string, args ...any) (items []T, more bool, err error) {
	rows, err := tx.QueryContext(ctx, query, append(args, limit+1)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	items = []T{}
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, false, err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}

func scanRelease(row rowScanner) (release.Release, error) {
	var r release.Release
	err := row.Scan(&r.ID, &r.Application, &r.Environment, &r.Revision, &r.CommitMessage, &r.Author,
		instant{&r.StartedAt}, nullInstant{&r.FinishedAt}, &r.Result)
	return r, err
}

func scanEvent(row rowScanner) (release.Event, error) {
	var (
		e          release.Event
		attributes sql.NullString
		key        sql.NullString
	)
	if err := row.Scan(&e.ID, &e.ReleaseID, &e.Type, instant{&e.Time}, &e.Summary, &attributes, &key); err != nil {
		return release.Event{}, err
	}
	e.Key = key.String
	if attributes.Valid {
		if err := json.Unmarshal([]byte(attributes.String), &e.Attributes); err != nil {
			return release.Event{}, fmt.Errorf("event %d attributes: %w", e.ID, err)
		}
	}
	return e, nil
}

// insertEvent appends e to its release's timeline in tx, unless the release already has an
// event with its key. It sets e.ID when it inserted, and leaves it zero when not.
func (db *DB) insertEvent(ctx context.Context, tx *sql.Tx, e *release.Event) error {
	e.Time = storedTime(e.Time)
	if err := e.Validate(); err != nil {
		return err
	}
	var attributes, key any
	if len(e.Attributes) > 0 {
		b, err := json.Marshal(e.Attributes)
		if err != nil {
			return err
		}
		attributes = string(b)
	}
	if e.Key != "" {
		key = e.Key
	}
	err := tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO release_events
		(release_id, type, occurred_at, summary, attributes, event_key) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (release_id, event_key) DO NOTHING RETURNING id`),
		e.ReleaseID, string(e.Type), db.dialect.time(e.Time), e.Summary, attributes, key).Scan(&e.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}
