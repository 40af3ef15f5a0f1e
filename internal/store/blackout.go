package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycd/ferry/internal/incident"
)

// CreateBlackout stores a new blackout under b.ID, or a new ID when it has none, and returns
// it as stored. A zero CreateTime is now; Priority and Duration are recomputed from the fields b sets;
// Status and Remaining are left for incident.Blackout.At. An invalid blackout is an error
// wrapping incident.ErrInvalid.
func (db *DB) CreateBlackout(ctx context.Context, b incident.Blackout) (incident.Blackout, error) {
	if b.ID == "" {
		b.ID = uuid.NewString()
	}
	if b.CreateTime.IsZero() {
		b.CreateTime = time.Now()
	}
	b.StartTime, b.EndTime, b.CreateTime = storedTime(b.StartTime), storedTime(b.EndTime), storedTime(b.CreateTime)
	b.Status, b.Remaining = "", 0
	b.Priority = b.AlertaPriority()
	b.Duration = int(b.EndTime.Sub(b.StartTime) / time.Second)
	if b.Service == nil {
		b.Service = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	if err := b.Validate(); err != nil {
		return incident.Blackout{}, fmt.Errorf("create blackout: %w", err)
	}
	doc, err := json.Marshal(b)
	if err != nil {
		return incident.Blackout{}, fmt.Errorf("create blackout: document: %w", err)
	}
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.dialect.q(`INSERT INTO blackouts (id, environment, start_time, end_time, create_time, doc)
			VALUES (?, ?, ?, ?, ?, ?)`), b.ID, b.Environment, db.dialect.time(b.StartTime), db.dialect.time(b.EndTime),
			db.dialect.time(b.CreateTime), string(doc))
		return err
	})
	if err != nil {
		return incident.Blackout{}, fmt.Errorf("create blackout: %w", err)
	}
	return b, nil
}

// GetBlackout returns one blackout, or an error wrapping incident.ErrNotFound.
func (db *DB) GetBlackout(ctx context.Context, id string) (incident.Blackout, error) {
	var bs []incident.Blackout
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		bs, err = db.queryBlackouts(ctx, tx, `WHERE id = ?`, id)
		return err
	})
	if err == nil && len(bs) == 0 {
		err = incident.ErrNotFound
	}
	if err != nil {
		return incident.Blackout{}, fmt.Errorf("get blackout %s: %w", id, err)
	}
	return bs[0], nil
}

// ListBlackouts returns every blackout, expired ones included, the earliest starting first.
func (db *DB) ListBlackouts(ctx context.Context) ([]incident.Blackout, error) {
	var bs []incident.Blackout
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		bs, err = db.queryBlackouts(ctx, tx, `ORDER BY start_time, id`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list blackouts: %w", err)
	}
	return bs, nil
}

// ActiveBlackouts returns the blackouts active at now (started at or before now, ending after
// it), the earliest starting first: what incident.AnyCovers checks a received alert against.
func (db *DB) ActiveBlackouts(ctx context.Context, now time.Time) ([]incident.Blackout, error) {
	t := db.dialect.time(storedTime(now))
	var bs []incident.Blackout
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		bs, err = db.queryBlackouts(ctx, tx, `WHERE end_time > ? AND start_time <= ? ORDER BY start_time, id`, t, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("active blackouts: %w", err)
	}
	return bs, nil
}

// DeleteBlackout removes a blackout, or returns an error wrapping incident.ErrNotFound. The
// alerts it covered keep their status until they next change.
func (db *DB) DeleteBlackout(ctx context.Context, id string) error {
	if err := db.deleteByID(ctx, "blackouts", id); err != nil {
		return fmt.Errorf("delete blackout %s: %w", id, err)
	}
	return nil
}

func (db *DB) queryBlackouts(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]incident.Blackout, error) {
	rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT doc FROM blackouts `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []incident.Blackout{}
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var b incident.Blackout
		if err := json.Unmarshal([]byte(doc), &b); err != nil {
			return nil, fmt.Errorf("blackout document: %w", err)
		}
		b.StartTime, b.EndTime, b.CreateTime = b.StartTime.UTC(), b.EndTime.UTC(), b.CreateTime.UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}
