package store_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// sqliteURL returns the URL of a new SQLite file in a temporary directory.
func sqliteURL(tb testing.TB) string {
	return "sqlite://" + filepath.Join(tb.TempDir(), "ferry.db")
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string { return sqliteURL(t) })
}

// TestSQLiteMemory checks that each in-memory store is a private, working database.
func TestSQLiteMemory(t *testing.T) {
	ctx := t.Context()
	var dbs []*store.DB
	for range 2 {
		db, err := store.Open(ctx, "sqlite::memory:", store.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	r := release.Release{Application: "shop", Environment: "dev", Revision: "abc", StartedAt: time.Now()}
	if err := dbs[0].CreateRelease(ctx, &r); err != nil {
		t.Fatalf("CreateRelease: %v", err)
	}
	if _, err := dbs[0].GetRelease(ctx, r.ID); err != nil {
		t.Errorf("GetRelease from the same store: %v", err)
	}
	if _, err := dbs[1].GetRelease(ctx, r.ID); !errors.Is(err, release.ErrNotFound) {
		t.Errorf("GetRelease from another in-memory store = %v, want ErrNotFound", err)
	}
	if err := dbs[0].Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestSQLiteFiles checks that relative paths and paths with URL syntax in them name the
// file they spell.
func TestSQLiteFiles(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	odd := filepath.Join(dir, "a dir", "fer?ry#1%.db")
	if err := os.Mkdir(filepath.Dir(odd), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ url, file string }{
		{"sqlite:relative.db", filepath.Join(dir, "relative.db")},
		{"sqlite://" + (&url.URL{Path: odd}).EscapedPath(), odd},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			db, err := store.Open(t.Context(), tt.url, store.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}
