package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/notify"
)

const notificationColumns = `id, channel, dedup_key, event, status, attempts, last_error, created_at, next_attempt_at, sent_at`

// notificationCursor is the cursor kind of notification listings.
const notificationCursor = "n"

// EnqueueNotifications adds notifications that belong to no timeline event, such as a
// channel's test message, to the outbox. It returns the IDs of the new ones, in order; one
// whose channel already holds its key is dropped, and gets no ID.
func (db *DB) EnqueueNotifications(ctx context.Context, notes []notify.Notification) ([]int64, error) {
	var ids []int64
	now := storedTime(time.Now())
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		ids = nil
		for _, n := range notes {
			id, err := db.enqueue(ctx, tx, n, now)
			if err != nil {
				return err
			}
			if id != 0 {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue notifications: %w", err)
	}
	return ids, nil
}

// enqueue inserts one pending notification in tx, due now, unless its channel holds its key.
// It returns the new notification's ID, or zero for a duplicate.
func (db *DB) enqueue(ctx context.Context, tx *sql.Tx, n notify.Notification, now time.Time) (int64, error) {
	if err := n.Validate(); err != nil {
		return 0, err
	}
	event, err := json.Marshal(n.Event)
	if err != nil {
		return 0, fmt.Errorf("notification event: %w", err)
	}
	var releaseID any
	if n.Event.ReleaseID > 0 {
		releaseID = n.Event.ReleaseID
	}
	var id int64
	err = tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO notifications
		(channel, dedup_key, release_id, event_type, event, status, created_at, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id`),
		n.Channel, n.Key, releaseID, n.Event.Type, string(event), string(notify.StatusPending),
		db.dialect.time(now), db.dialect.time(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// ClaimNotifications leases to owner, until now+lease, the notifications due for delivery:
// at most one per channel, the oldest pending one, and only if it is due and no live lease
// holds it. A channel's next notification is therefore never sent before the one ahead of it
// is sent or has failed, and two workers, in one process or two, never hold the same
// notification at once.
func (db *DB) ClaimNotifications(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]notify.Notification, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim notifications: %w: owner, lease and limit are required", notify.ErrInvalid)
	}
	now = storedTime(now)
	until := now.Add(lease)
	var claimed []notify.Notification
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		ids, err := headIDs(ctx, tx, db.dialect.q(`SELECT n.id FROM notifications n
			JOIN (SELECT channel, MIN(id) AS id FROM notifications WHERE status = ? GROUP BY channel) head
			ON n.id = head.id
			WHERE n.next_attempt_at <= ? AND (n.lease_until IS NULL OR n.lease_until <= ?)
			ORDER BY n.id LIMIT ?`+db.dialect.skipLocked),
			string(notify.StatusPending), db.dialect.time(now), db.dialect.time(now), limit)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		claimed, err = db.lease(ctx, tx, owner, now, until, ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	// RETURNING gives no order; deliver channels oldest first.
	sortByID(claimed)
	return claimed, nil
}

// lease leases the pending notifications ids to owner until until, unless a live lease holds
// one, and returns those it leased. The lease condition is checked row by row: on PostgreSQL
// a concurrent claimer may have taken a row since the caller's SELECT, and the UPDATE waits
// for it and reads it again.
func (db *DB) lease(ctx context.Context, tx *sql.Tx, owner string, now, until time.Time, ids []any) ([]notify.Notification, error) {
	args := append([]any{owner, db.dialect.time(until)}, ids...)
	args = append(args, string(notify.StatusPending), db.dialect.time(now))
	rows, err := tx.QueryContext(ctx, db.dialect.q(`UPDATE notifications SET lease_owner = ?, lease_until = ?
		WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) AND status = ?
		AND (lease_until IS NULL OR lease_until <= ?)
		RETURNING `+notificationColumns), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var leased []notify.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, err
		}
		leased = append(leased, n)
	}
	return leased, rows.Err()
}

// headIDs runs query, which selects notification IDs, and returns them as arguments.
func headIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// FinishNotification records the outcome of a delivery attempt by the lease's owner and
// releases the lease. It returns an error wrapping notify.ErrLeaseLost if owner no longer
// holds the notification.
func (db *DB) FinishNotification(ctx context.Context, id int64, owner string, a notify.Attempt) error {
	if !a.Status.Valid() {
		return fmt.Errorf("finish notification %d: %w: unknown status %q", id, notify.ErrInvalid, a.Status)
	}
	if len(a.Error) > notify.MaxError {
		a.Error = truncateUTF8(a.Error, notify.MaxError)
	}
	at := storedTime(a.At)
	next := storedTime(a.Next)
	if a.Status != notify.StatusPending {
		next = at
	}
	counted := 1
	if a.Status == notify.StatusSent || a.RateLimited {
		counted = 0
	}
	var sentAt any
	if a.Status == notify.StatusSent {
		sentAt = db.dialect.time(at)
	}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE notifications
			SET status = ?, attempts = attempts + ?, last_error = ?, next_attempt_at = ?, sent_at = ?,
			    lease_owner = NULL, lease_until = NULL
			WHERE id = ? AND lease_owner = ? AND status = ?`),
			string(a.Status), counted, a.Error, db.dialect.time(next), sentAt, id, owner, string(notify.StatusPending))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(fmt.Errorf("%w: another worker holds it", notify.ErrLeaseLost), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish notification %d: %w", id, err)
	}
	return nil
}

// ExtendLease moves the end of owner's lease on a notification to until, for a send that
// takes longer than a lease. It returns an error wrapping notify.ErrLeaseLost if owner no
// longer holds it.
func (db *DB) ExtendLease(ctx context.Context, id int64, owner string, until time.Time) error {
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(
			`UPDATE notifications SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = ?`),
			db.dialect.time(storedTime(until)), id, owner, string(notify.StatusPending))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(fmt.Errorf("%w: another worker holds it", notify.ErrLeaseLost), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("extend lease of notification %d: %w", id, err)
	}
	return nil
}

// GetNotification returns one notification, or an error wrapping notify.ErrNotFound.
func (db *DB) GetNotification(ctx context.Context, id int64) (notify.Notification, error) {
	var n notify.Notification
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		n, err = scanNotification(tx.QueryRowContext(ctx, db.dialect.q(
			`SELECT `+notificationColumns+` FROM notifications WHERE id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return notify.ErrNotFound
		}
		return err
	})
	if err != nil {
		return notify.Notification{}, fmt.Errorf("get notification %d: %w", id, err)
	}
	return n, nil
}

// FindNotifications returns one page of the notifications f selects, newest first.
func (db *DB) FindNotifications(ctx context.Context, f notify.Filter) (notify.Page, error) {
	if err := f.Validate(); err != nil {
		return notify.Page{}, fmt.Errorf("find notifications: %w", err)
	}
	var w where
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Channel != "" {
		w.add("channel = ?", f.Channel)
	}
	if f.ReleaseID != 0 {
		w.add("release_id = ?", f.ReleaseID)
	}
	if f.Cursor != "" {
		_, id, err := decodeCursor(notificationCursor, f.Cursor)
		if err != nil {
			return notify.Page{}, fmt.Errorf("find notifications: %w: malformed cursor", notify.ErrInvalid)
		}
		w.add("id < ?", id)
	}
	page := notify.Page{Notifications: []notify.Notification{}}
	limit := pageSize(f.Limit)
	var more bool
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		page.Notifications, more, err = queryPage(ctx, tx, limit, scanNotification, db.dialect.q(
			`SELECT `+notificationColumns+` FROM notifications`+w.String()+` ORDER BY id DESC LIMIT ?`), w.args...)
		return err
	})
	if err != nil {
		return notify.Page{}, fmt.Errorf("find notifications: %w", err)
	}
	if more {
		last := page.Notifications[len(page.Notifications)-1]
		page.Next = encodeCursor(notificationCursor, last.CreatedAt, last.ID)
	}
	return page, nil
}

// Outbox reports the outbox's state.
func (db *DB) Outbox(ctx context.Context) (notify.OutboxState, error) {
	var (
		s    notify.OutboxState
		next nullTimeScan
	)
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.dialect.q(
			`SELECT COUNT(*), MIN(next_attempt_at) FROM notifications WHERE status = ?`),
			string(notify.StatusPending)).Scan(&s.Pending, &next)
	})
	if err != nil {
		return notify.OutboxState{}, fmt.Errorf("outbox state: %w", err)
	}
	if next.t != nil {
		s.NextDue = *next.t
	}
	return s, nil
}

// nullTimeScan scans an optional time of either driver.
type nullTimeScan struct{ t *time.Time }

// Scan implements sql.Scanner.
func (s *nullTimeScan) Scan(src any) error { return nullInstant{&s.t}.Scan(src) }

func scanNotification(row rowScanner) (notify.Notification, error) {
	var (
		n     notify.Notification
		event string
	)
	err := row.Scan(&n.ID, &n.Channel, &n.Key, &event, &n.Status, &n.Attempts, &n.LastError,
		instant{&n.CreatedAt}, instant{&n.NextAttempt}, nullInstant{&n.SentAt})
	if err != nil {
		return notify.Notification{}, err
	}
	if err := json.Unmarshal([]byte(event), &n.Event); err != nil {
		return notify.Notification{}, fmt.Errorf("notification %d event: %w", n.ID, err)
	}
	return n, nil
}

func sortByID(ns []notify.Notification) {
	slices.SortFunc(ns, func(a, b notify.Notification) int { return cmp.Compare(a.ID, b.ID) })
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ClaimFollowers leases to owner, who holds the head notification headID of channel, the
// pending notifications right behind it in the channel's queue whose event type starts with
// prefix: the consecutive run up to the first of another kind, at most limit. The worker
// sends them with the head as one grouped message, so a burst of alerts is one message.
func (db *DB) ClaimFollowers(ctx context.Context, owner, channel string, headID int64, prefix string, now time.Time,
	lease time.Duration, limit int) ([]notify.Notification, error) {
	now = storedTime(now)
	var claimed []notify.Notification
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		ids, err := followerRun(ctx, tx, db.dialect.q(`SELECT id, event_type FROM notifications
			WHERE channel = ? AND status = ? AND id > ? ORDER BY id LIMIT ?`), prefix,
			channel, string(notify.StatusPending), headID, limit)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		claimed, err = db.lease(ctx, tx, owner, now, now.Add(lease), ids)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim followers of notification %d: %w", headID, err)
	}
	sortByID(claimed)
	return claimed, nil
}

// followerRun runs query, which selects (id, event_type) in queue order, and returns the IDs
// of the leading run whose type starts with prefix, as arguments.
func followerRun(ctx context.Context, tx *sql.Tx, query, prefix string, args ...any) ([]any, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var (
			id  int64
			typ string
		)
		if err := rows.Scan(&id, &typ); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(typ, prefix) {
			break
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
