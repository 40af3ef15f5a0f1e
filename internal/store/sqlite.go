package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var sqliteDialect = &dialect{
	name:     "sqlite",
	timeType: "INTEGER",
	time:     func(t time.Time) any { return t.UnixMicro() },
	// The writer begins every transaction IMMEDIATE, taking the database's one write lock
	// (waiting up to busy_timeout for another process to drop it), so migrators already
	// take turns.
	lockMigrations: func(context.Context, *sql.Tx) error { return nil },
	lockKey:        func(context.Context, *sql.Tx, string) error { return nil },
	foreignKeyViolation: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	},
}

const memory = ":memory:"

// openSQLite opens the SQLite database u names, in WAL mode with foreign keys enforced.
// Writes go through a single connection, so this process's writers queue in Go instead of
// failing with SQLITE_BUSY; reads use a pool of query-only connections beside it.
func openSQLite(ctx context.Context, u *url.URL, opts Options) (*DB, error) {
	path, err := sqlitePath(u)
	if err != nil {
		return nil, err
	}
	if path == memory {
		// Every connection to :memory: is a new database, so one connection does all.
		pool, err := openSQLitePool(ctx, memory+"?"+sqliteParams(opts, true), 1)
		if err != nil {
			return nil, err
		}
		db := &DB{dialect: sqliteDialect, write: pool, read: pool, issues: newIssueMemo()}
		db.group = newGroupCommitter(db)
		return db, nil
	}
	file := "file:" + (&url.URL{Path: path}).EscapedPath()
	write, err := openSQLiteRetry(ctx, file+"?"+sqliteParams(opts, true), 1, opts.BusyTimeout)
	if err != nil {
		return nil, err
	}
	read, err := openSQLiteRetry(ctx, file+"?"+sqliteParams(opts, false), opts.MaxOpenConns, opts.BusyTimeout)
	if err != nil {
		return nil, errors.Join(err, write.Close())
	}
	db := &DB{dialect: sqliteDialect, write: write, read: read, issues: newIssueMemo()}
	db.group = newGroupCommitter(db)
	return db, nil
}

// sqlitePath returns the file path of a sqlite: URL.
func sqlitePath(u *url.URL) (string, error) {
	if u.Host != "" || u.User != nil {
		return "", fmt.Errorf("%w: sqlite URL has a host; write sqlite:///absolute/path or sqlite:relative/path", ErrInvalidURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: sqlite URL takes no parameters", ErrInvalidURL)
	}
	path := u.Path
	if u.Opaque != "" {
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidURL, err)
		}
		path = p
	}
	if path == "" {
		return "", fmt.Errorf("%w: sqlite URL has no path", ErrInvalidURL)
	}
	return path, nil
}

// sqliteParams returns the connection parameters for the writer or a reader.
func sqliteParams(opts Options, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	if writer {
		// Statements in a transaction keep their undo logs (statement journals) in a
		// temporary file once they pass 64 KiB; in memory they cost no system calls.
		// Readers keep the default, so a large sort does not grow the heap.
		q.Add("_pragma", "temp_store(MEMORY)")
		// The writer copies the WAL into the database every 4,000 pages (16 MiB) instead
		// of SQLite's 1,000: a page rewritten several times in between, such as an issue's
		// row or an index's last leaf, is copied once, and the writer, which does the copy
		// in its commits, stops four times less often. Error ingest: +4 to +9 % events/s in
		// alternating pairs, p99 about 1 ms longer, peak RSS within 3 MiB (docs/benchmarks.md).
		q.Add("_pragma", "wal_autocheckpoint(4000)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return q.Encode()
}

// openSQLiteRetry is openSQLitePool retried while the file is busy, up to busyTimeout: the
// first connection switches a new database to WAL, which needs the file to itself, and SQLite
// does not call its busy handler for that switch, so processes opening one new database at
// once can see SQLITE_BUSY however long busy_timeout is.
func openSQLiteRetry(ctx context.Context, dsn string, conns int, busyTimeout time.Duration) (*sql.DB, error) {
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		pool, err := openSQLitePool(ctx, dsn, conns)
		var e *sqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return pool, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func openSQLitePool(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	pool, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	if err := pool.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open sqlite: %w", err), pool.Close())
	}
	return pool, nil
}
