package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

var postgresDialect = &dialect{
	name:     "postgres",
	numbered: true,
	timeType: "TIMESTAMPTZ",
	time:     func(t time.Time) any { return t },
	// A transaction-scoped advisory lock, keyed by schema so that separate schemas in one
	// database (tests, or several installs) migrate independently. Replicas starting
	// together queue here; the later ones then find nothing left to apply.
	lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('ferry.schema_migrations.' || COALESCE(current_schema(), ''), 0))`)
		return err
	},
	skipLocked: " FOR UPDATE OF n SKIP LOCKED",
	lockKey: func(ctx context.Context, tx *sql.Tx, key string) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key)
		return err
	},
	foreignKeyViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23503"
	},
}

// openPostgres connects to PostgreSQL through pgx's database/sql driver.
func openPostgres(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's redaction of the URL in its message is best effort; ours is strict.
		return nil, fmt.Errorf("%w: %s", ErrInvalidURL, RedactURL(err.Error()))
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(opts.MaxOpenConns)
	pool.SetMaxIdleConns(opts.MaxOpenConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	if err := pool.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("connect: %w", err), pool.Close())
	}
	return &DB{dialect: postgresDialect, write: pool, read: pool}, nil
}
