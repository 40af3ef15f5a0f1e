package store_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// benchEvent is an error event of issue kind, shaped like what sentry-go sends for a Go
// service (about 10 KiB stored): a stack trace of 30 frames with source context, 10
// breadcrumbs, tags, a user, a request and the runtime contexts.
func benchEvent(kind int) errtrack.Event {
	inApp, lib := true, false
	frames := make([]errtrack.Frame, 30)
	for i := range frames {
		frames[i] = errtrack.Frame{
			// Grouping reads digits in names as build noise: the kind is in letters.
			Function: fmt.Sprintf("(*Handler).%sStep%d", letters(kind), i),
			Module:   "github.com/example/shop/internal/checkout", Filename: "internal/checkout/handler.go",
			AbsPath: "/src/shop/internal/checkout/handler.go", Lineno: 100 + i, InApp: &lib,
			ContextLine: "\tif err := h.payments.Charge(ctx, order); err != nil {",
			PreContext:  []string{"func (h *Handler) Pay(ctx context.Context, order Order) error {", "\tdefer h.metrics.Observe()"},
			PostContext: []string{"\t\treturn fmt.Errorf(\"order %d: %w\", order.ID, err)", "\t}"},
		}
		if i > 5 {
			frames[i].InApp = &inApp
		}
	}
	crumbs := make([]errtrack.Breadcrumb, 10)
	for i := range crumbs {
		crumbs[i] = errtrack.Breadcrumb{Timestamp: time.Now().UTC(), Category: "http", Level: errtrack.LevelInfo,
			Message: fmt.Sprintf("GET /api/cart/%d 200", i), Data: json.RawMessage(`{"status_code":200,"method":"GET"}`)}
	}
	return errtrack.Event{
		Platform: "go", Level: errtrack.LevelError, Release: "shop@3f2a9c1", Environment: "production",
		ServerName: "shop-7d9f8-abcde",
		Exception: errtrack.Exceptions{{Type: fmt.Sprintf("*payments.Error%d", kind), Value: "order 42: payment declined",
			Stacktrace: &errtrack.Stacktrace{Frames: frames}}},
		Tags:        errtrack.Pairs{{Key: "region", Value: "eu-west"}, {Key: "pod", Value: "shop-7d9f8-abcde"}, {Key: "feature", Value: "checkout"}},
		Breadcrumbs: crumbs,
		User:        &errtrack.User{ID: "u-42", Email: "ann@example.com", IPAddress: "10.0.0.7"},
		Request: &errtrack.Request{URL: "https://shop.example.com/api/checkout", Method: "POST",
			Headers: errtrack.Pairs{{Key: "User-Agent", Value: "Mozilla/5.0"}, {Key: "Accept", Value: "application/json"}}},
		Contexts: map[string]json.RawMessage{
			"device":  json.RawMessage(`{"arch":"amd64","num_cpu":2}`),
			"os":      json.RawMessage(`{"name":"linux"}`),
			"runtime": json.RawMessage(`{"go_maxprocs":2,"go_numcgocalls":1,"go_numroutines":42,"name":"go","version":"go1.26.8"}`),
		},
		SDK: &errtrack.SDK{Name: "sentry.go", Version: "0.50.0"},
	}
}

// BenchmarkIngestEvent measures the store alone taking decoded events from 16 goroutines,
// as the error tracker's HTTP handlers hand them over: 80 % to 200 existing issues, 20 %
// opening new ones. On SQLite every ingest waits for the one writer, so ns/op is the
// writer's time per event.
func BenchmarkIngestEvent(b *testing.B) {
	const issues = 200
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			db := openBench(b, d.newURL(b))
			p, _, err := db.CreateProject(b.Context(), errtrack.Project{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			events := make([]errtrack.Event, issues)
			for i := range events {
				events[i] = benchEvent(i)
				e := events[i]
				e.EventID = errtrack.NewEventID()
				e.Normalize()
				if _, err := db.IngestEvent(b.Context(), p.ID, e, errtrack.IngestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					e := events[i%issues]
					if i%5 == 0 { // a new issue
						e = benchEvent(issues + int(i))
					}
					e.EventID = errtrack.NewEventID()
					e.Normalize()
					if _, err := db.IngestEvent(b.Context(), p.ID, e, errtrack.IngestOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// letters writes n in base 26 with the letters a to z.
func letters(n int) string {
	b := []byte{byte('a' + n%26)}
	for n /= 26; n > 0; n /= 26 {
		b = append(b, byte('a'+n%26))
	}
	return string(b)
}
