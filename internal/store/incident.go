package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/release"
)

// ReceiveAlert de-duplicates or correlates in with the stored alerts of its environment and
// resource, and stores the result, in one transaction. Alerts of one environment and resource
// are received one at a time, across connections and replicas, so concurrent identical
// alerts make one alert whose duplicate count says how many came after the first.
func (db *DB) ReceiveAlert(ctx context.Context, in incident.Alert, opts incident.ReceiveOptions) (incident.Outcome, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	now := storedTime(opts.Now)
	var out incident.Outcome
	err := db.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.dialect.lockKey(ctx, tx, alertLockKey(in)); err != nil {
			return err
		}
		// The candidates are a superset of the alert's scope for any valid identity, which
		// always holds environment and resource; Receive narrows them.
		candidates, err := db.queryAlerts(ctx, tx, `WHERE environment = ? AND resource = ? ORDER BY create_time, id`,
			in.Environment, in.Resource)
		if err != nil {
			return err
		}
		alert, kind, prev := incident.Receive(in, candidates, now, opts.NewID, opts.Rules)
		out = incident.Outcome{Alert: alert, Kind: kind, Previous: prev}
		if kind == incident.KindNew {
			if opts.Link != nil {
				apps, envs := opts.Link(alert)
				if out.Alert.ReleaseID, err = db.linkRelease(ctx, tx, apps, envs); err != nil {
					return err
				}
			}
			err = db.insertAlert(ctx, tx, out.Alert)
		} else {
			err = db.updateAlert(ctx, tx, out.Alert)
		}
		if err != nil {
			return err
		}
		return db.applyEffects(ctx, tx, out, opts.Effects, now)
	})
	if err != nil {
		return incident.Outcome{}, fmt.Errorf("receive alert %s/%s/%s: %w", in.Environment, in.Resource, in.Event, err)
	}
	return out, nil
}

// UpdateAlert reads an alert, lets change modify it, and stores the result, in one
// transaction with its effects. change returns incident.ErrConflict (wrapped) for a change
// the alert's status does not allow.
func (db *DB) UpdateAlert(ctx context.Context, id string, change func(incident.Alert) (incident.Alert, error),
	effects func(incident.Outcome) incident.Effects) (incident.Alert, error) {
	var out incident.Outcome
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		cur, err := db.getAlert(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := db.dialect.lockKey(ctx, tx, alertLockKey(cur)); err != nil {
			return err
		}
		if cur, err = db.getAlert(ctx, tx, id); err != nil { // as it is now that we hold the lock
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		out = incident.Outcome{Alert: next, Kind: incident.KindUpdated, Previous: &cur}
		if err := db.updateAlert(ctx, tx, next); err != nil {
			return err
		}
		return db.applyEffects(ctx, tx, out, effects, storedTime(time.Now()))
	})
	if err != nil {
		return incident.Alert{}, fmt.Errorf("update alert %s: %w", id, err)
	}
	return out.Alert, nil
}

// alertLockKey serialises the changes to the alerts of one environment and resource, which
// are the ones an incoming alert may de-duplicate or correlate with.
func alertLockKey(a incident.Alert) string {
	return "ferry.alerts\x1f" + a.Environment + "\x1f" + a.Resource
}

func (db *DB) applyEffects(ctx context.Context, tx *sql.Tx, out incident.Outcome, effects func(incident.Outcome) incident.Effects, now time.Time) error {
	if effects == nil {
		return nil
	}
	if out.Alert.ReleaseID > 0 {
		r, err := db.getRelease(ctx, tx, out.Alert.ReleaseID)
		if err != nil {
			return err
		}
		out.Release = &r
	}
	eff := effects(out)
	return db.storeEffects(ctx, tx, out.Alert.ReleaseID, eff.Events, eff.Notifications, now)
}

// linkRelease is the latest succeeded release of the first application and environment, in
// order, that has one; zero when none has.
func (db *DB) linkRelease(ctx context.Context, tx *sql.Tx, apps, envs []string) (int64, error) {
	for _, app := range apps {
		for _, env := range envs {
			var id int64
			err := tx.QueryRowContext(ctx, db.dialect.q(`SELECT id FROM releases
				WHERE application = ? AND environment = ? AND result = ? ORDER BY started_at DESC, id DESC LIMIT 1`),
				app, env, string(release.ResultSucceeded)).Scan(&id)
			switch {
			case err == nil:
				return id, nil
			case !errors.Is(err, sql.ErrNoRows):
				return 0, err
			}
		}
	}
	return 0, nil
}

// GetAlert returns one alert, or an error wrapping incident.ErrNotFound.
func (db *DB) GetAlert(ctx context.Context, id string) (incident.Alert, error) {
	var a incident.Alert
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		a, err = db.getAlert(ctx, tx, id)
		return err
	})
	if err != nil {
		return incident.Alert{}, fmt.Errorf("get alert %s: %w", id, err)
	}
	return a, nil
}

// DeleteAlert removes an alert, or returns an error wrapping incident.ErrNotFound.
func (db *DB) DeleteAlert(ctx context.Context, id string) error {
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM alerts WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(incident.ErrNotFound, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete alert %s: %w", id, err)
	}
	return nil
}

func (db *DB) getAlert(ctx context.Context, tx *sql.Tx, id string) (incident.Alert, error) {
	alerts, err := db.queryAlerts(ctx, tx, `WHERE id = ?`, id)
	if err != nil {
		return incident.Alert{}, err
	}
	if len(alerts) == 0 {
		return incident.Alert{}, incident.ErrNotFound
	}
	return alerts[0], nil
}

func (db *DB) queryAlerts(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]incident.Alert, error) {
	rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT doc, release_id FROM alerts `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incident.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanAlert(row rowScanner) (incident.Alert, error) {
	var (
		doc     string
		release sql.NullInt64
		a       incident.Alert
	)
	if err := row.Scan(&doc, &release); err != nil {
		return incident.Alert{}, err
	}
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return incident.Alert{}, fmt.Errorf("alert document: %w", err)
	}
	a.ReleaseID = release.Int64
	return a, nil
}

// alertColumns are the filter and sort columns of an alert, in the order of the INSERT.
func (db *DB) alertColumns(a incident.Alert) ([]any, error) {
	doc, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("alert document: %w", err)
	}
	services := ""
	if len(a.Service) > 0 {
		services = "|" + strings.Join(a.Service, "|") + "|"
	}
	var releaseID any
	if a.ReleaseID > 0 {
		releaseID = a.ReleaseID
	}
	expireAt, wakeAt := incident.DueTimes(a)
	return []any{a.Environment, a.Resource, a.Event, a.Customer, string(a.Severity), string(a.Status), services, a.Group, a.Text,
		a.DuplicateCount, db.dialect.time(storedTime(a.CreateTime)), db.dialect.time(storedTime(a.LastReceiveTime)),
		db.dialect.time(storedTime(a.UpdateTime)), a.Timeout, db.dialect.nullTime(optional(expireAt)),
		db.dialect.nullTime(optional(wakeAt)), releaseID, string(doc)}, nil
}

// optional is t in the store's precision, or nil for the zero time.
func optional(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	st := storedTime(t)
	return &st
}

func (db *DB) insertAlert(ctx context.Context, tx *sql.Tx, a incident.Alert) error {
	cols, err := db.alertColumns(a)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, db.dialect.q(`INSERT INTO alerts (id, environment, resource, event, customer, severity,
		status, services, grp, text, duplicate_count, create_time, last_receive_time, update_time, timeout, expire_at, wake_at,
		release_id, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), append([]any{a.ID}, cols...)...)
	return err
}

func (db *DB) updateAlert(ctx context.Context, tx *sql.Tx, a incident.Alert) error {
	cols, err := db.alertColumns(a)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE alerts SET environment = ?, resource = ?, event = ?, customer = ?,
		severity = ?, status = ?, services = ?, grp = ?, text = ?, duplicate_count = ?, create_time = ?,
		last_receive_time = ?, update_time = ?, timeout = ?, expire_at = ?, wake_at = ?, release_id = ?, doc = ?
		WHERE id = ?`), append(cols, a.ID)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(incident.ErrNotFound, err)
	}
	return nil
}

// alertColumnOf maps the filters the database can apply itself to their columns.
var alertColumnOf = map[string]string{
	"environment": "environment", "resource": "resource", "event": "event", "customer": "customer",
	"severity": "severity", "status": "status", "group": "grp",
}

// FindAlerts returns the page of alerts q selects, in q's order. Exact filters on the
// indexed columns run in the database. When they are the whole query and it sorts by columns
// (the board's usual question), the database also counts, sorts and pages, so a page costs
// the same at 10,000 alerts as at 100; otherwise the rest of the query (text search,
// substrings, attributes, negations) is applied to what the filters leave, with
// incident.Query's own rules.
func (db *DB) FindAlerts(ctx context.Context, q incident.Query) (incident.List, error) {
	w, exact := alertFilters(q)
	for _, f := range q.Filters {
		if f.Field == "service" && !f.Contains && !f.Negate && len(f.Values) == 1 {
			w.add("services LIKE ?", "%|"+f.Values[0]+"|%")
		}
	}
	if !q.From.IsZero() {
		w.add("last_receive_time > ?", db.dialect.time(storedTime(q.From)))
	}
	if !q.To.IsZero() {
		w.add("last_receive_time <= ?", db.dialect.time(storedTime(q.To)))
	}
	if order, ok := alertOrder(q.Sort); ok && exact && q.Text == "" && q.Repeat == nil {
		return db.findAlertsInSQL(ctx, q, w, order)
	}
	var all []incident.Alert
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		all, err = db.queryAlerts(ctx, tx, w.String()+` ORDER BY last_receive_time DESC, id`, w.args...)
		return err
	})
	if err != nil {
		return incident.List{}, fmt.Errorf("find alerts: %w", err)
	}
	list := incident.List{SeverityCounts: map[incident.Severity]int{}, StatusCounts: map[incident.Status]int{}}
	matched := all[:0]
	for _, a := range all {
		if q.Matches(a) {
			matched = append(matched, a)
			list.SeverityCounts[a.Severity]++
			list.StatusCounts[a.Status]++
		}
	}
	slices.SortStableFunc(matched, q.Compare)
	list.Total = len(matched)
	if off := q.Offset(); off < len(matched) {
		list.Alerts = matched[off:min(len(matched), off+q.PageSize)]
	}
	return list, nil
}

// alertFilters returns the conditions of q's exact filters on columns, and whether they are
// all of its filters, so that the database's answer needs no second look: a single service
// without LIKE's wildcards counts as exact too.
func alertFilters(q incident.Query) (where, bool) {
	var w where
	exact := true
	for _, f := range q.Filters {
		col, ok := alertColumnOf[f.Field]
		if !ok || f.Contains || f.Negate || len(f.Values) == 0 {
			if f.Field != "service" || f.Contains || f.Negate || len(f.Values) != 1 ||
				strings.ContainsAny(f.Values[0], `%_\|`) {
				exact = false
			}
			continue
		}
		args := make([]any, len(f.Values))
		for i, v := range f.Values {
			args[i] = v
		}
		w.add(col+" IN (?"+strings.Repeat(", ?", len(args)-1)+")", args...)
	}
	return w, exact
}

// alertOrder is the ORDER BY of sorts, ties broken by id as Query.Compare breaks them, if
// every sort key is a column (or a rank of one) that orders as Compare does.
func alertOrder(sorts []incident.Sort) (string, bool) {
	var keys []string
	for _, s := range sorts {
		var expr string
		switch s.Field {
		case "lastReceiveTime":
			expr = "last_receive_time"
		case "createTime":
			expr = "create_time"
		case "updateTime":
			expr = "update_time"
		case "duplicateCount":
			expr = "duplicate_count"
		case "timeout":
			expr = "timeout"
		case "severity":
			expr = severityRankSQL
		case "status":
			expr = statusRankSQL
		default:
			return "", false
		}
		if s.Desc {
			expr += " DESC"
		}
		keys = append(keys, expr)
	}
	return " ORDER BY " + strings.Join(append(keys, "id"), ", "), true
}

// severityRankSQL and statusRankSQL rank the severity and status columns as
// Severity.Rank and Status.SortRank do.
var (
	severityRankSQL = rankSQL("severity", incident.Severities(), func(s incident.Severity) int { return s.Rank() }, -1)
	statusRankSQL   = rankSQL("status", incident.Statuses(), func(s incident.Status) int { return s.SortRank() }, 0)
)

func rankSQL[T ~string](col string, values []T, rank func(T) int, otherwise int) string {
	var b strings.Builder
	b.WriteString("(CASE " + col)
	for _, v := range values {
		// The values are the package's own constants, lowercase letters only.
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", string(v), rank(v))
	}
	fmt.Fprintf(&b, " ELSE %d END)", otherwise)
	return b.String()
}

// findAlertsInSQL answers a query the database can answer alone: counts by severity and
// status, and one page of documents.
func (db *DB) findAlertsInSQL(ctx context.Context, q incident.Query, w where, order string) (incident.List, error) {
	list := incident.List{SeverityCounts: map[incident.Severity]int{}, StatusCounts: map[incident.Status]int{}}
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT severity, status, COUNT(*) FROM alerts`+w.String()+
			` GROUP BY severity, status`), w.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				sev, status string
				n           int
			)
			if err := rows.Scan(&sev, &status, &n); err != nil {
				return err
			}
			list.SeverityCounts[incident.Severity(sev)] += n
			list.StatusCounts[incident.Status(status)] += n
			list.Total += n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if q.Offset() >= list.Total {
			return nil
		}
		list.Alerts, err = db.queryAlerts(ctx, tx, w.String()+order+` LIMIT ? OFFSET ?`,
			append(w.args, q.PageSize, q.Offset())...)
		return err
	})
	if err != nil {
		return incident.List{}, fmt.Errorf("find alerts: %w", err)
	}
	return list, nil
}

// DueAlerts returns up to limit alerts whose expiry or action timeout is at or before now.
func (db *DB) DueAlerts(ctx context.Context, now time.Time, limit int) ([]incident.DueAlertRef, error) {
	t := db.dialect.time(storedTime(now))
	var due []incident.DueAlertRef
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.q(`SELECT id, ? FROM alerts WHERE expire_at <= ?
			UNION ALL SELECT id, ? FROM alerts WHERE wake_at <= ? LIMIT ?`),
			incident.ActionExpired, t, incident.ActionTimeout, t, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d incident.DueAlertRef
			if err := rows.Scan(&d.ID, &d.Action); err != nil {
				return err
			}
			due = append(due, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("due alerts: %w", err)
	}
	return due, nil
}

// PurgeAlerts deletes the closed and expired alerts last changed before before, and returns
// how many. Their events stay on the releases' timelines.
func (db *DB) PurgeAlerts(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM alerts WHERE status IN (?, ?) AND update_time < ?`),
			string(incident.StatusClosed), string(incident.StatusExpired), db.dialect.time(storedTime(before)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge alerts: %w", err)
	}
	return int(n), nil
}
