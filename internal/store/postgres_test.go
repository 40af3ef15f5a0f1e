package store_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

func postgresAdmin(tb testing.TB) *sql.DB { return storetest.PostgresAdmin(tb) }
func postgresURL(tb testing.TB) string    { return storetest.PostgresURL(tb) }

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string { return postgresURL(t) })
}

// TestPostgresSearchPath checks that the search_path URL parameter reaches the server, so
// that tests and installs can keep to a schema of their own.
func TestPostgresSearchPath(t *testing.T) {
	dbURL := postgresURL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	r := release.Release{Application: "shop", Environment: "dev", Revision: "abc", StartedAt: time.Now()}
	if err := db.CreateRelease(t.Context(), &r); err != nil {
		t.Fatal(err)
	}
	var n int
	err = postgresAdmin(t).QueryRowContext(t.Context(), "SELECT count(*) FROM "+schema+".releases WHERE id = $1", r.ID).Scan(&n)
	if err != nil || n != 1 {
		t.Errorf("release in schema %s: count %d, %v; want 1", schema, n, err)
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	const password = "s3cr3t-Pa55"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			_, err := store.Open(ctx, scheme+"://ferry:"+password+"@127.0.0.1:1/ferry?sslmode=disable", store.Options{})
			var connectErr *pgconn.ConnectError
			if !errors.As(err, &connectErr) {
				t.Fatalf("Open = %v, want a *pgconn.ConnectError", err)
			}
			if msg := err.Error(); strings.Contains(msg, password) || !strings.Contains(msg, "ferry:xxxxx@127.0.0.1:1") {
				t.Errorf("error %q leaks the password or lacks the redacted URL", msg)
			}
		})
	}
}
