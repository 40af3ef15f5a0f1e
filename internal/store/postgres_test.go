package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// postgresBase is the server the PostgreSQL tests use. They fail, never skip, when it is
// unreachable: CI must prove the driver.
func postgresBase() string {
	if u := os.Getenv("FERRY_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// postgresAdmin connects to the test server for setting up and inspecting schemas.
func postgresAdmin(tb testing.TB) *sql.DB {
	tb.Helper()
	base := postgresBase()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("PostgreSQL test server %s: %v", store.RedactURL(base), err)
	}
	tb.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		tb.Fatalf("PostgreSQL test server %s is unreachable (set FERRY_TEST_POSTGRES): %v", store.RedactURL(base), err)
	}
	return admin
}

// postgresURL creates a schema of its own for one test, dropped when the test ends, and
// returns a URL whose search_path selects it.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	admin := postgresAdmin(tb)
	schema := "ferry_test_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(postgresBase())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

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
