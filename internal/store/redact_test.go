package store_test

import (
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/store"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://ferry:secret@db:5432/ferry?sslmode=disable", "postgres://ferry:xxxxx@db:5432/ferry?sslmode=disable"},
		{"postgresql://ferry:s%40cret@db/ferry", "postgresql://ferry:xxxxx@db/ferry"},
		{"postgres://ferry:p@ss@db/ferry", "postgres://ferry:xxxxx@db/ferry"},
		{"postgres://ferry:pa/ss?x#y@db/ferry", "postgres://ferry:xxxxx@db/ferry"},
		{"postgres://ferry@db/ferry", "postgres://ferry@db/ferry"},
		{"postgres://db/ferry", "postgres://db/ferry"},
		{"postgres://:secret@db/ferry", "postgres://:xxxxx@db/ferry"},
		{"postgres://db/ferry?password=secret&sslmode=disable", "postgres://db/ferry?password=xxxxx&sslmode=disable"},
		{"postgres://db/ferry?sslmode=verify-full&sslpassword=secret", "postgres://db/ferry?sslmode=verify-full&sslpassword=xxxxx"},
		{"postgres://db/ferry?PASSWORD=secret", "postgres://db/ferry?PASSWORD=xxxxx"},
		{"host=db user=ferry password=secret dbname=ferry", "host=db user=ferry password=xxxxx dbname=ferry"},
		{"host=db password='sec ret' dbname=ferry", "host=db password=xxxxx dbname=ferry"},
		{"sqlite:///var/lib/ferry/ferry.db", "sqlite:///var/lib/ferry/ferry.db"},
		{"sqlite:data/ferry.db", "sqlite:data/ferry.db"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := store.RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzRedactURL checks that a password in the user info never survives redaction, whatever
// the rest of the URL looks like.
func FuzzRedactURL(f *testing.F) {
	f.Add("postgres", "ferry", "secret", "db:5432/ferry?sslmode=disable")
	f.Add("postgresql", "", "p@ss/w?rd#", "db/x")
	f.Add("sqlite", "u", "::::", "")
	f.Fuzz(func(t *testing.T, scheme, user, password, rest string) {
		if strings.ContainsAny(user, ":@") || strings.Contains(rest, "@") || len(password) < 4 {
			t.Skip() // outside the shape this property is about
		}
		prefix := scheme + "://" + user + ":"
		if strings.Contains(prefix+"xxxxx@"+rest, password) {
			t.Skip() // the password also appears where it is not secret
		}
		if got := store.RedactURL(prefix + password + "@" + rest); strings.Contains(got, password) {
			t.Errorf("RedactURL(%q) = %q keeps the password", prefix+password+"@"+rest, got)
		}
	})
}
