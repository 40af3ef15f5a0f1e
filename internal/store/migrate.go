package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds one directory of numbered SQL files per dialect, such as
// migrations/sqlite/0001_releases.sql. Both directories hold the same names.
//
//go:embed migrations
var migrationFiles embed.FS

// Migration is one schema change applied to the database.
type Migration struct {
	// Version is the number the file name starts with; versions apply in ascending order.
	Version int
	// Name is the file name without its extension, such as "0001_releases".
	Name string
	// AppliedAt is when this database applied it.
	AppliedAt time.Time
}

type migrationFile struct {
	version    int
	name, text string
}

// loadMigrations returns the dialect's migrations in version order.
func loadMigrations(dialect string) ([]migrationFile, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var files []migrationFile
	for _, e := range entries { // ReadDir sorts by name.
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		prefix, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number", e.Name())
		}
		if len(files) > 0 && version <= files[len(files)-1].version {
			return nil, fmt.Errorf("migration %s: version %d repeats or is out of order", e.Name(), version)
		}
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration: %w", err)
		}
		files = append(files, migrationFile{version: version, name: name, text: string(text)})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no migrations for %s", dialect)
	}
	return files, nil
}

// migrate applies the migrations the database lacks, all in one transaction, so that the
// schema moves from one released version to the next or not at all. Concurrent migrators,
// such as replicas starting together, take turns on the dialect's lock.
func (db *DB) migrate(ctx context.Context) error {
	files, err := loadMigrations(db.dialect.name)
	if err != nil {
		return err
	}
	db.latest = files[len(files)-1].version
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		if err := db.dialect.lockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    BIGINT PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at `+db.dialect.timeType+` NOT NULL
		)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied, err := appliedMigrations(ctx, tx)
		if err != nil {
			return err
		}
		known := make(map[int]string, len(files))
		for _, f := range files {
			known[f.version] = f.name
		}
		done := make(map[int]bool, len(applied))
		for _, m := range applied {
			if _, ok := known[m.Version]; !ok {
				return fmt.Errorf("%w: it has migration %s, this binary knows up to %s",
					ErrSchemaTooNew, m.Name, files[len(files)-1].name)
			}
			done[m.Version] = true
		}
		now := db.dialect.time(storedTime(time.Now()))
		for _, f := range files {
			if done[f.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, f.text); err != nil {
				return fmt.Errorf("apply %s: %w", f.name, err)
			}
			_, err := tx.ExecContext(ctx,
				db.dialect.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				f.version, f.name, now)
			if err != nil {
				return fmt.Errorf("record %s: %w", f.name, err)
			}
		}
		return nil
	})
}

// Migrations returns the migrations applied to the database, oldest first.
func (db *DB) Migrations(ctx context.Context) ([]Migration, error) {
	var applied []Migration
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		applied, err = appliedMigrations(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	return applied, nil
}

func appliedMigrations(ctx context.Context, tx *sql.Tx) ([]Migration, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var applied []Migration
	for rows.Next() {
		var m Migration
		if err := rows.Scan(&m.Version, &m.Name, instant{&m.AppliedAt}); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied = append(applied, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}
