package errtrack

import (
	"fmt"
	"testing"

	"github.com/getsentry/sentry-go"
)

// deepHandler recurses so that the SDK's stack trace is as deep as a web handler's.
func deepHandler(hub *sentry.Hub, depth int) {
	if depth > 0 {
		deepHandler(hub, depth-1)
		return
	}
	hub.CaptureException(fmt.Errorf("load cart: %w", &orderError{7}))
}

// realisticEvent is what sentry-go sends for an error 30 calls deep, after 20
// breadcrumbs, with a user, tags and a request: about the 5-10 KB of issue 7's benchmark.
func realisticEvent(b *testing.B) []byte {
	b.Helper()
	t := &testing.T{}
	payloads := sdkEvents(t, sdkOptions, func(hub *sentry.Hub) {
		hub.Scope().SetUser(sentry.User{ID: "42", Email: "ann@example.com"})
		hub.Scope().SetTags(map[string]string{"region": "eu", "tenant": "acme", "feature": "cart-v2"})
		for i := range 20 {
			hub.AddBreadcrumb(&sentry.Breadcrumb{Category: "sql", Message: fmt.Sprintf("SELECT * FROM orders WHERE id = %d", i),
				Data: map[string]any{"rows": i, "duration_ms": 3.5}}, nil)
		}
		deepHandler(hub, 30)
	})
	if len(payloads) != 1 {
		b.Fatalf("%d events", len(payloads))
	}
	return payloads[0]
}

func BenchmarkDecodeEvent(b *testing.B) {
	payload := realisticEvent(b)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := DecodeEvent(payload)
		if err != nil {
			b.Fatal(err)
		}
		e.Normalize()
	}
}

func BenchmarkGroup(b *testing.B) {
	e, err := DecodeEvent(realisticEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	e.Normalize()
	b.ReportAllocs()
	for b.Loop() {
		Fingerprint(e)
		Title(e)
		Culprit(e)
	}
}
