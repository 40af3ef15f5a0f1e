package store

import (
	"context"
	"time"
)

// AddMigrationForTest records a migration this binary does not know, as a newer Ferry would.
func (db *DB) AddMigrationForTest(ctx context.Context, version int, name string) error {
	_, err := db.write.ExecContext(ctx,
		db.dialect.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		version, name, db.dialect.time(storedTime(time.Now())))
	return err
}
