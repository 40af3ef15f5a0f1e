package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is everything that differs between the drivers. The SQL in this package is
// written once, with '?' placeholders, in the subset SQLite and PostgreSQL share
// (RETURNING, row-value comparison); what cannot be shared is here.
type dialect struct {
	name string
	// numbered rewrites '?' placeholders as $1, $2, ... (PostgreSQL).
	numbered bool
	// timeType is the column type of an instant.
	timeType string
	// time turns an instant into a query argument of timeType.
	time func(time.Time) any
	// lockMigrations makes concurrent migrators, other processes included, take turns. It
	// runs first in the migration transaction and holds until it ends.
	lockMigrations func(context.Context, *sql.Tx) error
	// foreignKeyViolation reports whether err is a broken foreign key.
	foreignKeyViolation func(error) bool
	// skipLocked ends a SELECT whose rows of table n the transaction goes on to update: it
	// locks them in the SELECT's order and skips rows another transaction holds, so
	// concurrent claimers neither wait for each other nor deadlock. Empty where one writer
	// at a time is the rule (SQLite).
	skipLocked string
	// lockKey makes transactions that touch the same key take turns, until they end. On
	// SQLite the one writer already does.
	lockKey func(ctx context.Context, tx *sql.Tx, key string) error
}

// q returns query with its placeholders in the dialect's form. Shared queries contain no
// '?' inside literals, so a plain scan suffices.
func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// nullTime turns an optional instant into a query argument.
func (d *dialect) nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.time(*t)
}

// storedTime is t as the store keeps it: UTC, to the microsecond, which both drivers hold
// exactly.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// instant scans a time column of either driver into a UTC time: SQLite yields the integer
// microseconds it stores, PostgreSQL a time.Time.
type instant struct{ t *time.Time }

// Scan implements sql.Scanner.
func (s instant) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	case time.Time:
		*s.t = v.UTC()
	default:
		return fmt.Errorf("scan %T into time", src)
	}
	return nil
}

// nullInstant is instant for a nullable column.
type nullInstant struct{ t **time.Time }

// Scan implements sql.Scanner.
func (s nullInstant) Scan(src any) error {
	if src == nil {
		*s.t = nil
		return nil
	}
	var t time.Time
	if err := (instant{&t}).Scan(src); err != nil {
		return err
	}
	*s.t = &t
	return nil
}

// where collects the conditions and arguments of a query's WHERE clause.
type where struct {
	conds []string
	args  []any
}

// add appends a condition whose '?' placeholders take args.
func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String returns the WHERE clause, or nothing if there are no conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
