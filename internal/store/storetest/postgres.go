package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"github.com/ferrycd/ferry/internal/store"
)

// PostgresBase is the server PostgreSQL tests use: $FERRY_TEST_POSTGRES, or the machine's
// server on 127.0.0.1:5432. Tests fail, never skip, when it is unreachable: CI must prove
// the driver.
func PostgresBase() string {
	if u := os.Getenv("FERRY_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresAdmin connects to the test server for setting up and inspecting schemas.
func PostgresAdmin(tb testing.TB) *sql.DB {
	tb.Helper()
	base := PostgresBase()
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

// PostgresURL creates a schema of its own for one test, dropped when the test ends, and
// returns a URL whose search_path selects it.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := PostgresAdmin(tb)
	schema := "ferry_test_" + strings.ToLower(rand.Text())
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(PostgresBase())
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLiteURL returns the URL of a new SQLite database file in the test's temporary directory.
func SQLiteURL(tb testing.TB) string {
	tb.Helper()
	return "sqlite://" + filepath.ToSlash(filepath.Join(tb.TempDir(), "ferry.db"))
}

// Drivers names each driver with a source of fresh database URLs, for tests outside the
// store that must run on both.
var Drivers = []struct {
	Name string
	URL  func(testing.TB) string
}{
	{"sqlite", SQLiteURL},
	{"postgres", PostgresURL},
}
