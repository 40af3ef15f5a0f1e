package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/store"
)

func TestOpenInvalidURL(t *testing.T) {
	const password = "hunter2-secret"
	tests := []struct {
		name string
		url  string
		// mention is a part of the message that tells the user what is wrong.
		mention string
	}{
		{"unknown scheme", "mysql://root:" + password + "@db/ferry", `unknown scheme "mysql"`},
		{"no scheme", "/var/lib/ferry.db", "no scheme"},
		{"key=value DSN", "host=db user=ferry password=" + password, "no scheme"},
		{"bad port", "postgres://ferry:" + password + "@db:port/ferry", "invalid port"},
		{"bad escape", "postgres://ferry:" + password + "@db/fe%zzrry", "invalid URL escape"},
		{"control character", "postgres://ferry:" + password + "@db/\x7f", "invalid control character"},
		{"bad sslmode", "postgres://ferry:" + password + "@127.0.0.1/ferry?sslmode=sometimes", "sslmode"},
		{"sqlite with a host", "sqlite://data/ferry.db", "has a host"},
		{"sqlite with parameters", "sqlite:///tmp/ferry.db?_pragma=journal_mode(DELETE)", "no parameters"},
		{"sqlite without a path", "sqlite:", "no path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(t.Context(), tt.url, store.Options{})
			if !errors.Is(err, store.ErrInvalidURL) {
				if db != nil {
					db.Close()
				}
				t.Fatalf("Open(%q) = %v, want ErrInvalidURL", tt.url, err)
			}
			// The message is for people: it must say what is wrong and keep the secret.
			msg := err.Error()
			if !strings.Contains(msg, tt.mention) {
				t.Errorf("error %q does not mention %q", msg, tt.mention)
			}
			if strings.Contains(msg, password) {
				t.Errorf("error %q leaks the password", msg)
			}
		})
	}
}

// TestSchemaTooNew checks that a binary refuses a database a newer binary has migrated.
func TestSchemaTooNew(t *testing.T) {
	drivers := []struct {
		name   string
		newURL func(testing.TB) string
	}{
		{"sqlite", sqliteURL},
		{"postgres", postgresURL},
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			url := d.newURL(t)
			db, err := store.Open(t.Context(), url, store.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			err = db.AddMigrationForTest(t.Context(), 9999, "9999_from_the_future")
			if err := errors.Join(err, db.Close()); err != nil {
				t.Fatal(err)
			}
			db, err = store.Open(t.Context(), url, store.Options{})
			if err == nil {
				db.Close()
			}
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Open of a newer database = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}
