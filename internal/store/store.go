// Package store keeps what Kubernetes should not: releases and their timelines now, and
// incidents, error issues, the notification outbox and API tokens as they arrive. One DB
// type serves two drivers, SQLite (embedded, the default) and PostgreSQL (for replicas),
// with the SQL shared between them and their differences confined to a small dialect.
//
// A domain joins the store with a migration file per dialect under migrations/ and a file
// of methods on DB, each method one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ErrInvalidURL reports a store URL that cannot be used: malformed, or of an unknown scheme.
var ErrInvalidURL = errors.New("invalid store URL")

// ErrSchemaTooNew reports a database migrated by a newer Ferry than this binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Options tunes a DB. The zero value is ready to use.
type Options struct {
	// MaxOpenConns caps the PostgreSQL pool or the SQLite reader pool; zero means 10.
	// SQLite always has exactly one writer connection.
	MaxOpenConns int
	// BusyTimeout is how long SQLite waits for another process's write lock before giving
	// up; zero means 5s.
	BusyTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 10
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o
}

// DB is a migrated database. It is safe for concurrent use.
type DB struct {
	dialect *dialect
	// write runs transactions that change data; read runs read-only ones. They are the same
	// pool except on SQLite, where one writer connection spares writers SQLITE_BUSY and a
	// separate pool of readers runs beside it under WAL.
	write, read *sql.DB
	// latest is the newest migration version this binary knows.
	latest int
	// group, on SQLite, stores the writes that wait for the writer together (inGroupTx).
	group *groupCommitter
	// prepared holds the hotQueries prepared on the SQLite writer; nil on PostgreSQL.
	prepared map[string]*sql.Stmt
	// issues, on SQLite, remembers decoded issues (see issueMemo); nil on PostgreSQL.
	issues *issueMemo
}

// Open connects to the database at rawURL, checks it answers within ctx, and migrates it.
// The scheme picks the driver:
//
//	sqlite:///var/lib/ferry/ferry.db   absolute path
//	sqlite:data/ferry.db               relative path
//	sqlite::memory:                    private in-memory database, for tests
//	postgres://user:pass@host:5432/db?sslmode=disable&search_path=ferry
//	postgresql://...                   the same
//
// PostgreSQL URLs take libpq parameters; any other parameter, such as search_path, is sent
// to the server as a run-time setting. Errors never contain the URL's password.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	redacted := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password included.
		}
		return nil, fmt.Errorf("open store %s: %w: %w", redacted, ErrInvalidURL, err)
	}
	var db *DB
	switch u.Scheme {
	case "sqlite":
		db, err = openSQLite(ctx, u, opts)
	case "postgres", "postgresql":
		db, err = openPostgres(ctx, rawURL, opts)
	case "":
		err = fmt.Errorf("%w: no scheme; want sqlite:, postgres:// or postgresql://", ErrInvalidURL)
	default:
		err = fmt.Errorf("%w: unknown scheme %q; want sqlite:, postgres:// or postgresql://", ErrInvalidURL, u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redacted, err)
	}
	if err := db.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("migrate store %s: %w", redacted, err), db.Close())
	}
	if err := db.prepareHot(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", redacted, err), db.Close())
	}
	return db, nil
}

// Driver names the database driver: "sqlite" or "postgres".
func (db *DB) Driver() string { return db.dialect.name }

// Ready reports whether the database answers and carries every migration this binary
// knows, for a readiness probe.
func (db *DB) Ready(ctx context.Context) error {
	for _, pool := range db.pools() {
		if err := pool.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s: %w", db.dialect.name, err)
		}
	}
	var version sql.NullInt64
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version)
	})
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if int(version.Int64) < db.latest {
		return fmt.Errorf("schema at version %d, want %d", version.Int64, db.latest)
	}
	return nil
}

// Close closes the database's connections.
func (db *DB) Close() error {
	if db.group != nil {
		db.group.close()
	}
	errs := []error{db.closePrepared()}
	for _, pool := range db.pools() {
		errs = append(errs, pool.Close())
	}
	return errors.Join(errs...)
}

func (db *DB) pools() []*sql.DB {
	if db.read == db.write {
		return []*sql.DB{db.write}
	}
	return []*sql.DB{db.write, db.read}
}

// inTx runs fn in one transaction, committing if it returns nil. Writes go to the writer
// pool; reads run read-only.
func (db *DB) inTx(ctx context.Context, write bool, fn func(*sql.Tx) error) error {
	pool, opts := db.read, &sql.TxOptions{ReadOnly: true}
	if write {
		pool, opts = db.write, nil
	}
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		// The rollback error adds nothing: the transaction is abandoned either way, and the
		// driver may have ended it already.
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// queryAll runs query in tx and scans each row with scan, in order. The result is never nil,
// so an empty list encodes as [] in JSON.
func queryAll[T any](ctx context.Context, tx *sql.Tx, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
