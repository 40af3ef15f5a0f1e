package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
)

var benchDrivers = []struct {
	name   string
	newURL func(testing.TB) string
}{
	{"sqlite", sqliteURL},
	{"postgres", postgresURL},
}

func openBench(b *testing.B, url string) *store.DB {
	b.Helper()
	db, err := store.Open(b.Context(), url, store.Options{})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchRelease(i int) release.Release {
	return release.Release{
		Application: fmt.Sprintf("app-%d", i%10),
		Environment: []string{"dev", "staging", "production"}[i%3],
		Revision:    fmt.Sprintf("%040x", i),
		Author:      "bench",
		StartedAt:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/2) * time.Minute),
	}
}

func BenchmarkCreateRelease(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			db := openBench(b, d.newURL(b))
			i := 0
			for b.Loop() {
				r := benchRelease(i)
				if err := db.CreateRelease(b.Context(), &r); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkFindReleases pages through 3000 releases of 10 applications in 3 environments.
func BenchmarkFindReleases(b *testing.B) {
	const rows = 3000
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			db := openBench(b, d.newURL(b))
			for i := range rows {
				r := benchRelease(i)
				if err := db.CreateRelease(b.Context(), &r); err != nil {
					b.Fatal(err)
				}
			}
			deep := release.Filter{Limit: 50}
			for range 30 { // the cursor of page 31
				page, err := db.FindReleases(b.Context(), deep)
				if err != nil {
					b.Fatal(err)
				}
				deep.Cursor = page.Next
			}
			filters := []struct {
				name   string
				filter release.Filter
			}{
				{"newest", release.Filter{}},
				{"app and env", release.Filter{Application: "app-3", Environment: "production"}},
				{"page 31", deep},
				{"revision", release.Filter{Revision: fmt.Sprintf("%040x", rows/2)}},
			}
			for _, f := range filters {
				b.Run(f.name, func(b *testing.B) {
					for b.Loop() {
						page, err := db.FindReleases(b.Context(), f.filter)
						if err != nil || len(page.Releases) == 0 {
							b.Fatalf("FindReleases = %d releases, %v", len(page.Releases), err)
						}
					}
				})
			}
		})
	}
}
