package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycd/ferry/internal/incident"
)

// UpsertHeartbeat stores a received heartbeat as its sender's latest: one heartbeat per
// origin and customer. The first of a sender is inserted, under hb.ID or a new ID; a later
// one keeps the stored ID and replaces the rest (tags, attributes, createTime, timeout,
// receiveTime), as Alerta's upsert does. Receiving a heartbeat clears Alerted.
//
// It returns the heartbeat as stored and the one it replaced, nil for a new sender. When
// prev.Alerted is true, the sender has come back from an expiry whose alert was raised: the
// caller receives prev.ClearAlert to close it. A zero ReceiveTime is now. Latency, Since and
// Status are left for incident.Heartbeat.At. An invalid heartbeat is an error wrapping
// incident.ErrInvalid.
func (db *DB) UpsertHeartbeat(ctx context.Context, hb incident.Heartbeat) (cur incident.Heartbeat, prev *incident.Heartbeat, err error) {
	if hb.ReceiveTime.IsZero() {
		hb.ReceiveTime = time.Now()
	}
	hb = storedHeartbeat(hb)
	if err := hb.Validate(); err != nil {
		return incident.Heartbeat{}, nil, fmt.Errorf("upsert heartbeat %s: %w", hb.Origin, err)
	}
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		// Concurrent first heartbeats of one sender take turns, so the second finds the first
		// instead of failing on the unique index.
		if err := db.dialect.lockKey(ctx, tx, "ferry.heartbeats\x1f"+hb.Origin+"\x1f"+hb.Customer); err != nil {
			return err
		}
		old, err := db.queryHeartbeats(ctx, tx, `WHERE origin = ? AND customer = ?`, hb.Origin, hb.Customer)
		if err != nil {
			return err
		}
		if len(old) > 0 {
			prev = &old[0]
			hb.ID = prev.ID
		} else if hb.ID == "" {
			hb.ID = uuid.NewString()
		}
		doc, err := json.Marshal(hb)
		if err != nil {
			return fmt.Errorf("heartbeat document: %w", err)
		}
		args := []any{db.dialect.time(hb.ReceiveTime), db.dialect.time(storedTime(hb.ExpiresAt())), string(doc), hb.ID}
		if prev != nil {
			_, err = tx.ExecContext(ctx, db.dialect.q(`UPDATE heartbeats SET receive_time = ?, expire_at = ?, alerted = FALSE,
				doc = ? WHERE id = ?`), args...)
		} else {
			_, err = tx.ExecContext(ctx, db.dialect.q(`INSERT INTO heartbeats (receive_time, expire_at, doc, id, origin, customer)
				VALUES (?, ?, ?, ?, ?, ?)`), append(args, hb.Origin, hb.Customer)...)
		}
		if err != nil {
			return err
		}
		// What a read returns: the document as JSON gives it back (attribute numbers as
		// float64).
		cur, err = scanHeartbeatDoc(string(doc), false)
		return err
	})
	if err != nil {
		return incident.Heartbeat{}, nil, fmt.Errorf("upsert heartbeat %s: %w", hb.Origin, err)
	}
	return cur, prev, nil
}

// storedHeartbeat is hb as the store keeps it: times in UTC to the microsecond, the fields
// that depend on the time of looking cleared, and empty lists rather than null.
func storedHeartbeat(hb incident.Heartbeat) incident.Heartbeat {
	hb.CreateTime, hb.ReceiveTime = storedTime(hb.CreateTime), storedTime(hb.ReceiveTime)
	hb.Latency, hb.Since, hb.Status, hb.Alerted = 0, 0, "", false
	if hb.Tags == nil {
		hb.Tags = []string{}
	}
	if hb.Attributes == nil {
		hb.Attributes = map[string]any{}
	}
	return hb
}

// GetHeartbeat returns one heartbeat, or an error wrapping incident.ErrNotFound.
func (db *DB) GetHeartbeat(ctx context.Context, id string) (incident.Heartbeat, error) {
	var hbs []incident.Heartbeat
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		hbs, err = db.queryHeartbeats(ctx, tx, `WHERE id = ?`, id)
		return err
	})
	if err == nil && len(hbs) == 0 {
		err = incident.ErrNotFound
	}
	if err != nil {
		return incident.Heartbeat{}, fmt.Errorf("get heartbeat %s: %w", id, err)
	}
	return hbs[0], nil
}

// ListHeartbeats returns every heartbeat, the latest received first.
func (db *DB) ListHeartbeats(ctx context.Context) ([]incident.Heartbeat, error) {
	var hbs []incident.Heartbeat
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		hbs, err = db.queryHeartbeats(ctx, tx, `ORDER BY receive_time DESC, id`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list heartbeats: %w", err)
	}
	return hbs, nil
}

// DeleteHeartbeat removes a heartbeat, or returns an error wrapping incident.ErrNotFound. An
// alert it raised stays as it is.
func (db *DB) DeleteHeartbeat(ctx context.Context, id string) error {
	if err := db.deleteByID(ctx, "heartbeats", id); err != nil {
		return fmt.Errorf("delete heartbeat %s: %w", id, err)
	}
	return nil
}

// ExpiredHeartbeats returns the heartbeats expired at now (now is past ExpiresAt) whose
// expiry has not been raised (Alerted is false), the longest expired first.
//
// The housekeeping loop raises each one's FailAlert and then calls MarkHeartbeatAlerted, so
// that each expiry is raised once; should the process stop in between, the next round
// raises it again, which Receive counts as a duplicate.
func (db *DB) ExpiredHeartbeats(ctx context.Context, now time.Time) ([]incident.Heartbeat, error) {
	var hbs []incident.Heartbeat
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		hbs, err = db.queryHeartbeats(ctx, tx, `WHERE expire_at < ? AND NOT alerted ORDER BY expire_at, id`,
			db.dialect.time(storedTime(now)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expired heartbeats: %w", err)
	}
	return hbs, nil
}

// MarkHeartbeatAlerted records whether the expiry of hb, as ExpiredHeartbeats returned it, has
// been raised. It changes nothing and returns false when the sender has been heard from since
// (the stored receiveTime is no longer hb's): that heartbeat found Alerted false, so nobody
// has cleared the alert the caller just raised, and the caller receives hb.ClearAlert itself.
// A heartbeat that no longer exists is an error wrapping incident.ErrNotFound.
//
// In order, for each expired heartbeat hb:
//
//	hub.Receive(ctx, hb.FailAlert(now, env))
//	if marked, err := db.MarkHeartbeatAlerted(ctx, hb, true); err == nil && !marked {
//		hub.Receive(ctx, hb.ClearAlert(time.Now(), env))
//	}
//
// and on a received heartbeat, from UpsertHeartbeat's prev: if prev.Alerted, receive
// prev.ClearAlert. Either way each raised HeartbeatFail is followed by one HeartbeatOK.
func (db *DB) MarkHeartbeatAlerted(ctx context.Context, hb incident.Heartbeat, alerted bool) (bool, error) {
	marked := false
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE heartbeats SET alerted = ? WHERE id = ? AND receive_time = ?`),
			alerted, hb.ID, db.dialect.time(storedTime(hb.ReceiveTime)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if marked = n == 1; marked {
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, db.dialect.q(`SELECT 1 FROM heartbeats WHERE id = ?`), hb.ID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return incident.ErrNotFound
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mark heartbeat %s alerted: %w", hb.ID, err)
	}
	return marked, nil
}

func (db *DB) queryHeartbeats(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]incident.Heartbeat, error) {
	rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT doc, alerted FROM heartbeats `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []incident.Heartbeat{}
	for rows.Next() {
		var (
			doc     string
			alerted bool
		)
		if err := rows.Scan(&doc, &alerted); err != nil {
			return nil, err
		}
		hb, err := scanHeartbeatDoc(doc, alerted)
		if err != nil {
			return nil, err
		}
		out = append(out, hb)
	}
	return out, rows.Err()
}

func scanHeartbeatDoc(doc string, alerted bool) (incident.Heartbeat, error) {
	var hb incident.Heartbeat
	if err := json.Unmarshal([]byte(doc), &hb); err != nil {
		return incident.Heartbeat{}, fmt.Errorf("heartbeat document: %w", err)
	}
	hb.CreateTime, hb.ReceiveTime = hb.CreateTime.UTC(), hb.ReceiveTime.UTC()
	hb.Alerted = alerted
	return hb, nil
}

// deleteByID deletes the row of table with id, or returns incident.ErrNotFound. table is
// one of this package's names, never input.
func (db *DB) deleteByID(ctx context.Context, table, id string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM `+table+` WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(incident.ErrNotFound, err)
		}
		return nil
	})
}
