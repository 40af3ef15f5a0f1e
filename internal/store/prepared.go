package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// hotQueries are the statements the writer runs for every event or alert it ingests. SQLite
// compiles each statement it is handed from its text again, which at thousands of ingests a
// second is a large share of the one writer's time, so on SQLite they are prepared once, when
// the store opens, and reused in every transaction (Tx.StmtContext finds them prepared on
// the writer's connection). PostgreSQL's driver keeps a statement cache of its own.
var hotQueries []string

// hot registers query, written with '?' placeholders, as one of the hotQueries and returns
// it. Call it from package-level variable declarations only, so the list is complete before
// any store opens.
func hot(query string) string {
	hotQueries = append(hotQueries, query)
	return query
}

// prepareHot prepares the hotQueries on the SQLite writer. It runs after migrating, since a
// statement can only be prepared against the tables it names.
func (db *DB) prepareHot(ctx context.Context) error {
	if db.dialect.numbered {
		return nil
	}
	db.prepared = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		s, err := db.write.PrepareContext(ctx, q) //nolint:sqlclosecheck // closePrepared closes them with the store
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		db.prepared[q] = s
	}
	return nil
}

// closePrepared closes the statements prepareHot prepared.
func (db *DB) closePrepared() error {
	var errs []error
	for _, s := range db.prepared {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// exec runs a statement that changes data in tx: the prepared one if query is hot here, else
// query in the dialect's form.
func (db *DB) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s, ok := db.prepared[query]; ok {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...) //nolint:sqlclosecheck // closed when tx ends
	}
	return tx.ExecContext(ctx, db.dialect.q(query), args...)
}

// queryRow runs a query that returns at most one row in tx, as exec does.
func (db *DB) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if s, ok := db.prepared[query]; ok {
		return tx.StmtContext(ctx, s).QueryRowContext(ctx, args...) //nolint:sqlclosecheck // closed when tx ends
	}
	return tx.QueryRowContext(ctx, db.dialect.q(query), args...)
}
