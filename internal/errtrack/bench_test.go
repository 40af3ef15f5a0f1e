package errtrack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getsentry/sentry-go"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
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

// ingestEvent is an event as the end-to-end benchmark (internal/app BenchmarkErrorIngest)
// sends it, encoded by sentry-go: a wrapped error with a stack trace of 30 frames with
// source context, 10 breadcrumbs, tags, a user and a request; about 10 KiB.
func ingestEvent(tb testing.TB) []byte {
	tb.Helper()
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: "http://0123456789abcdef0123456789abcdef@localhost/1",
		Release: "shop@3f2a9c1", Environment: "production", Transport: &sentry.HTTPSyncTransport{}})
	if err != nil {
		tb.Fatal(err)
	}
	scope := sentry.NewScope()
	scope.SetUser(sentry.User{ID: "u-42", Email: "ann@example.com"})
	scope.SetTags(map[string]string{"region": "eu-west", "pod": "shop-7d9f8-abcde", "feature": "checkout"})
	scope.SetRequest(httptest.NewRequest(http.MethodPost, "https://shop.example.com/api/checkout?step=pay", nil))
	for i := range 10 {
		scope.AddBreadcrumb(&sentry.Breadcrumb{Category: "http", Message: fmt.Sprintf("GET /api/cart/%d 200", i)}, 100)
	}
	event := client.EventFromException(fmt.Errorf("order %d: %w", 512345, errors.New("payment declined")), sentry.LevelError)
	event = scope.ApplyToEvent(event, nil, client)
	ex := &event.Exception[len(event.Exception)-1]
	ex.Type = "*payments.Error7"
	frames := make([]sentry.Frame, 30)
	for f := range frames {
		frames[f] = sentry.Frame{
			Function: fmt.Sprintf("(*Handler).checkoutStep%d", f), Module: "github.com/example/shop/internal/checkout",
			Filename: "internal/checkout/handler.go", AbsPath: "/src/shop/internal/checkout/handler.go",
			Lineno: 100 + f, InApp: f > 5, ContextLine: "\tif err := h.payments.Charge(ctx, order); err != nil {",
		}
	}
	ex.Stacktrace = &sentry.Stacktrace{Frames: frames}
	event.EventID = "9ec79c33ec9942ab8353589fcb2e04dc"
	raw, err := json.Marshal(event)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func BenchmarkDecodeEvent(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload func(testing.TB) []byte
	}{
		{"sdk", func(tb testing.TB) []byte { return realisticEvent(tb.(*testing.B)) }},
		{"ingest", ingestEvent},
	} {
		b.Run(bc.name, func(b *testing.B) {
			payload := bc.payload(b)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				e, err := DecodeEvent(payload)
				if err != nil {
					b.Fatal(err)
				}
				e.Normalize()
			}
		})
	}
}

// BenchmarkMarshalEvent encodes the stored document of ingestEvent.
func BenchmarkMarshalEvent(b *testing.B) {
	e, err := DecodeEvent(ingestEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	e.Normalize()
	for _, bc := range []struct {
		name    string
		marshal func(Event) ([]byte, error)
	}{
		{"MarshalEvent", MarshalEvent},
		{"json.Marshal", func(e Event) ([]byte, error) { return json.Marshal(e) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.marshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIngestJSON is the JSON work of ingesting ingestEvent, in parts and all: the
// envelope's CheckEvent, DecodeEvent, and MarshalEvent of the normalized event, the
// document the store keeps; "all" adds Normalize, as the ingest runs them.
func BenchmarkIngestJSON(b *testing.B) {
	payload := ingestEvent(b)
	e, err := DecodeEvent(payload)
	if err != nil {
		b.Fatal(err)
	}
	e.Normalize()
	for _, bc := range []struct {
		name string
		run  func() error
	}{
		{"CheckEvent", func() error { return envelope.CheckEvent(payload, 0) }},
		{"DecodeEvent", func() error { _, err := DecodeEvent(payload); return err }},
		{"MarshalEvent", func() error { _, err := MarshalEvent(e); return err }},
		{"all", func() error {
			if err := envelope.CheckEvent(payload, 0); err != nil {
				return err
			}
			e, err := DecodeEvent(payload)
			if err != nil {
				return err
			}
			e.Normalize()
			_, err = MarshalEvent(e)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
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
