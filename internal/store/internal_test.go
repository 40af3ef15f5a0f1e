package store

import (
	"database/sql"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/release"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		id   int64
	}{
		{"now", time.Date(2026, 5, 4, 10, 0, 0, 123456000, time.UTC), 42},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), 1},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 1<<63 - 1},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []string{releaseCursor, timelineCursor} {
				s := encodeCursor(kind, tt.t, tt.id)
				gotT, gotID, err := decodeCursor(kind, s)
				if err != nil {
					t.Fatalf("decodeCursor(%q): %v", s, err)
				}
				if !gotT.Equal(tt.t) || gotT.Location() != time.UTC || gotID != tt.id {
					t.Errorf("decodeCursor(%q) = %v, %d; want %v, %d", s, gotT, gotID, tt.t, tt.id)
				}
			}
		})
	}
}

func TestDecodeCursorMalformed(t *testing.T) {
	enc := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	tests := []string{
		"",
		"!!!!",
		enc("r:1:2:3"),
		enc("r:1"),
		enc("e:1700000000000000:5"), // a timeline cursor
		enc("r:1700000000000000:0"),
		enc("r:1700000000000000:-5"),
		enc("r:+1700000000000000:5"),
		enc("r:01700000000000000:5"),
		enc("r:1700000000000000:5 "),
		enc("r:x:5"),
		enc("r:-9223372036854775808:5"), // before year 1
		enc("r:9223372036854775807:5"),  // after year 9999
		encodeCursor(releaseCursor, time.Unix(1, 0), 5) + "=",
		strings.Repeat("A", maxCursor+1),
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			if _, _, err := decodeCursor(releaseCursor, s); !errors.Is(err, release.ErrInvalid) {
				t.Errorf("decodeCursor(%q) = %v, want ErrInvalid", s, err)
			}
		})
	}
}

// FuzzDecodeCursor checks that any string decodes to an error or to a cursor that encodes
// back to the same string.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(releaseCursor, time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), 42))
	f.Add(encodeCursor(timelineCursor, time.Unix(0, 0), 1))
	f.Add("cjox")
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []string{releaseCursor, timelineCursor} {
			ts, id, err := decodeCursor(kind, s)
			if err != nil {
				if !errors.Is(err, release.ErrInvalid) {
					t.Fatalf("decodeCursor(%q) = %v, want ErrInvalid", s, err)
				}
				continue
			}
			if again := encodeCursor(kind, ts, id); again != s || id <= 0 {
				t.Fatalf("decodeCursor(%q) = %v, %d, which encodes as %q", s, ts, id, again)
			}
		}
	})
}

func TestPageSize(t *testing.T) {
	for _, tt := range []struct{ in, want int }{
		{0, release.DefaultLimit}, {1, 1}, {release.MaxLimit, release.MaxLimit}, {release.MaxLimit + 1, release.MaxLimit},
	} {
		if got := pageSize(tt.in); got != tt.want {
			t.Errorf("pageSize(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	query := `SELECT a FROM t WHERE b = ? AND (c, d) < (?, ?) LIMIT ?`
	tests := []struct {
		dialect *dialect
		want    string
	}{
		{sqliteDialect, query},
		{postgresDialect, `SELECT a FROM t WHERE b = $1 AND (c, d) < ($2, $3) LIMIT $4`},
	}
	for _, tt := range tests {
		t.Run(tt.dialect.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.dialect.q(query)); diff != "" {
				t.Errorf("q (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"sqlite:///var/lib/ferry/ferry.db", "/var/lib/ferry/ferry.db"},
		{"sqlite:/var/lib/ferry/ferry.db", "/var/lib/ferry/ferry.db"},
		{"sqlite:relative/path.db", "relative/path.db"},
		{"sqlite:./ferry.db", "./ferry.db"},
		{"sqlite:///tmp/with%20space%3F.db", "/tmp/with space?.db"},
		{"sqlite:ferry%23.db", "ferry#.db"},
		{"sqlite::memory:", memory},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sqlitePath(u)
			if err != nil || got != tt.want {
				t.Errorf("sqlitePath(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
			}
		})
	}
}

// TestMigrationSets checks that both dialects have the same migrations, so that a domain
// never lands on one driver only.
func TestMigrationSets(t *testing.T) {
	names := func(dialect string) []string {
		files, err := loadMigrations(dialect)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range files {
			out = append(out, f.name)
		}
		return out
	}
	if diff := cmp.Diff(names(sqliteDialect.name), names(postgresDialect.name)); diff != "" {
		t.Errorf("migrations (-sqlite +postgres):\n%s", diff)
	}
}

// TestSQLiteConnectionSettings checks the settings each SQLite connection gets from its DSN:
// the writer's and the readers'.
func TestSQLiteConnectionSettings(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/ferry.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pragma := func(pool *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, tt := range []struct {
		pool       *sql.DB
		name, want string
	}{
		{db.write, "journal_mode", "wal"},
		{db.write, "wal_autocheckpoint", "4000"},
		{db.write, "temp_store", "2"},  // MEMORY
		{db.write, "synchronous", "2"}, // FULL: every commit is synced
		{db.write, "foreign_keys", "1"},
		{db.write, "query_only", "0"},
		{db.read, "journal_mode", "wal"},
		{db.read, "query_only", "1"},
		{db.read, "foreign_keys", "1"},
	} {
		who := "writer"
		if tt.pool == db.read {
			who = "reader"
		}
		if got := pragma(tt.pool, tt.name); got != tt.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", who, tt.name, got, tt.want)
		}
	}
}
