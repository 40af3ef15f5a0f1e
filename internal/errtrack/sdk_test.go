package errtrack

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/getsentry/sentry-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sdkEvents runs capture against the official Go SDK, configured with opts and a DSN
// pointing at a local server, and returns the payloads of the event items the SDK sent,
// in order.
func sdkEvents(t *testing.T, opts sentry.ClientOptions, capture func(hub *sentry.Hub)) [][]byte {
	t.Helper()
	var (
		mu       sync.Mutex
		payloads [][]byte
		errs     []error
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err == nil {
			var items [][]byte
			items, err = eventItems(body)
			mu.Lock()
			payloads = append(payloads, items...)
			mu.Unlock()
		}
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)

	opts.Dsn = "http://public@" + srv.Listener.Addr().String() + "/1"
	opts.Transport = sentry.NewHTTPSyncTransport()
	client, err := sentry.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	capture(sentry.NewHub(client, sentry.NewScope()))

	mu.Lock()
	defer mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("reading what the SDK sent: %v", err)
	}
	return payloads
}

// sdkEvent is sdkEvents for one event, decoded.
func sdkEvent(t *testing.T, opts sentry.ClientOptions, capture func(hub *sentry.Hub)) Event {
	t.Helper()
	payloads := sdkEvents(t, opts, capture)
	if len(payloads) != 1 {
		t.Fatalf("the SDK sent %d events, want 1", len(payloads))
	}
	e, err := DecodeEvent(payloads[0])
	if err != nil {
		t.Fatalf("DecodeEvent(%s): %v", payloads[0], err)
	}
	e.Normalize()
	return e
}

func readBody(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	return io.ReadAll(body)
}

// eventItems splits an envelope, as the SDKs write it (a header line, then items, each a
// header line and a payload of the header's length or up to the next newline), and
// returns the payloads of the "event" items. The real parser is the envelope package's;
// this one only has to read what sentry-go writes.
func eventItems(body []byte) ([][]byte, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	if _, err := br.ReadBytes('\n'); err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var out [][]byte
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err != nil {
			return out, nil
		}
		var h struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if err := json.Unmarshal(line, &h); err != nil {
			return nil, fmt.Errorf("item header %q: %w", line, err)
		}
		var payload []byte
		if h.Length != nil {
			payload = make([]byte, *h.Length)
			if _, err := io.ReadFull(br, payload); err != nil {
				return nil, fmt.Errorf("item of length %d: %w", *h.Length, err)
			}
			_, _ = br.ReadByte() // the newline after the payload, if any
		} else {
			payload, _ = br.ReadBytes('\n')
			payload = bytes.TrimSuffix(payload, []byte("\n"))
		}
		if h.Type == "event" {
			out = append(out, payload)
		}
	}
}

// orderError is an error type of the application under test, so that titles show a type
// of this package.
type orderError struct{ id int }

func (e *orderError) Error() string { return "order " + strconv.Itoa(e.id) + " not found" }

// The "handlers" below are the application's code: the frames grouping looks at.

func checkoutHandler(hub *sentry.Hub, id int) {
	hub.CaptureException(fmt.Errorf("checkout: %w", &orderError{id}))
}

func refundHandler(hub *sentry.Hub, id int) {
	hub.CaptureException(fmt.Errorf("checkout: %w", &orderError{id}))
}

// checkoutHandlerTwice reports the same error from two lines of one function.
func checkoutHandlerTwice(hub *sentry.Hub) {
	hub.CaptureException(fmt.Errorf("checkout: %w", &orderError{1}))

	hub.CaptureException(fmt.Errorf("checkout: %w", &orderError{2}))
}

func panickingHandler(hub *sentry.Hub) {
	defer func() {
		if r := recover(); r != nil {
			hub.Recover(r)
		}
	}()
	var orders []string
	_ = orders[len(orders)] // index out of range
}

func logCacheMiss(hub *sentry.Hub, key int) {
	hub.CaptureMessage(fmt.Sprintf("cache miss for key %d", key))
}

func logQueueFull(hub *sentry.Hub) {
	hub.CaptureMessage("queue full")
}

var sdkOptions = sentry.ClientOptions{Release: "shop@3f2a9c1", Environment: "production"}

func TestSDKException(t *testing.T) {
	e := sdkEvent(t, sdkOptions, func(hub *sentry.Hub) {
		hub.Scope().SetUser(sentry.User{ID: "42", Email: "Ann@example.com"})
		hub.Scope().SetTag("region", "eu")
		hub.AddBreadcrumb(&sentry.Breadcrumb{Category: "http", Message: "GET /cart"}, nil)
		checkoutHandler(hub, 7)
	})

	if e.Release != "shop@3f2a9c1" || e.Environment != "production" || e.Platform != "go" || e.Level != LevelError {
		t.Errorf("release %q, environment %q, platform %q, level %q", e.Release, e.Environment, e.Platform, e.Level)
	}
	if len(e.EventID) != 32 || e.Timestamp.IsZero() || e.Size == 0 {
		t.Errorf("event id %q, timestamp %v, size %d", e.EventID, e.Timestamp, e.Size)
	}
	if v, _ := e.Tags.Get("region"); v != "eu" {
		t.Errorf("tags %v, want region=eu", e.Tags)
	}
	if len(e.Breadcrumbs) != 1 || e.Breadcrumbs[0].Message != "GET /cart" || e.Breadcrumbs[0].Timestamp.IsZero() {
		t.Errorf("breadcrumbs %+v", e.Breadcrumbs)
	}
	if got := UserKey(e); got != "id:42" {
		t.Errorf("UserKey = %q, want id:42", got)
	}
	if len(e.Contexts) == 0 || e.SDK == nil || e.SDK.Name != "sentry.go" {
		t.Errorf("contexts %v, sdk %+v", e.Contexts, e.SDK)
	}
	// sentry-go sends the cause first and the wrapper, with the stack, last.
	if len(e.Exception) != 2 {
		t.Fatalf("%d exceptions, want the wrapper and its cause", len(e.Exception))
	}
	if got, want := Title(e), "*fmt.wrapError: checkout: order 7 not found"; got != want {
		t.Errorf("Title = %q, want %q", got, want)
	}
	if got, want := Culprit(e), "github.com/ferrycd/ferry/internal/errtrack.checkoutHandler in sdk_test.go"; got != want {
		t.Errorf("Culprit = %q, want %q", got, want)
	}
	if _, kind := Fingerprint(e); kind != GroupByStacktrace {
		t.Errorf("grouped by %s, want %s", kind, GroupByStacktrace)
	}
	if len(e.Cuts) != 0 {
		t.Errorf("cuts %v on an ordinary event", e.Cuts)
	}
}

func TestSDKGrouping(t *testing.T) {
	capture := func(f func(hub *sentry.Hub)) []Event {
		t.Helper()
		var events []Event
		for _, p := range sdkEvents(t, sdkOptions, f) {
			e, err := DecodeEvent(p)
			if err != nil {
				t.Fatal(err)
			}
			e.Normalize()
			events = append(events, e)
		}
		return events
	}
	hashOf := func(e Event) string {
		h, _ := Fingerprint(e)
		return h
	}

	t.Run("same function, other ids", func(t *testing.T) {
		a := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 1) })[0]
		b := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 2) })[0]
		if hashOf(a) != hashOf(b) {
			t.Error("one handler failing for two orders made two issues")
		}
	})
	t.Run("same function, other lines", func(t *testing.T) {
		events := capture(checkoutHandlerTwice)
		if len(events) != 2 {
			t.Fatalf("%d events", len(events))
		}
		la, lb := lastFrame(events[0]).Lineno, lastFrame(events[1]).Lineno
		if la == lb || la == 0 {
			t.Fatalf("line numbers %d and %d: the test needs two different lines", la, lb)
		}
		if hashOf(events[0]) != hashOf(events[1]) {
			t.Error("the same error from two lines of one function made two issues")
		}
	})
	t.Run("code moved", func(t *testing.T) {
		e := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 1) })[0]
		moved := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 1) })[0]
		for i := range moved.Exception {
			if st := moved.Exception[i].Stacktrace; st != nil {
				for j := range st.Frames {
					st.Frames[j].Lineno += 40
				}
			}
		}
		if hashOf(e) != hashOf(moved) {
			t.Error("moving code by 40 lines split the issue")
		}
	})
	t.Run("other function", func(t *testing.T) {
		a := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 1) })[0]
		b := capture(func(hub *sentry.Hub) { refundHandler(hub, 1) })[0]
		if hashOf(a) == hashOf(b) {
			t.Error("the same error from two handlers made one issue")
		}
		if Title(a) != Title(b) {
			t.Errorf("titles %q and %q differ, want the same", Title(a), Title(b))
		}
	})
	t.Run("panic", func(t *testing.T) {
		e := capture(panickingHandler)[0]
		if e.Level != LevelFatal {
			t.Errorf("level %q, want fatal", e.Level)
		}
		if got, want := Title(e), "runtime.boundsError: runtime error: index out of range [0] with length 0"; got != want {
			t.Errorf("Title = %q, want %q", got, want)
		}
		if c := Culprit(e); c != "github.com/ferrycd/ferry/internal/errtrack.panickingHandler in sdk_test.go" {
			t.Errorf("Culprit = %q", c)
		}
		if _, kind := Fingerprint(e); kind != GroupByStacktrace {
			t.Errorf("grouped by %s", kind)
		}
	})
	t.Run("messages", func(t *testing.T) {
		for _, attach := range []bool{false, true} {
			opts := sdkOptions
			opts.AttachStacktrace = attach
			var events []Event
			for _, p := range sdkEvents(t, opts, func(hub *sentry.Hub) {
				logCacheMiss(hub, 123)
				logCacheMiss(hub, 456)
				logQueueFull(hub)
			}) {
				e, err := DecodeEvent(p)
				if err != nil {
					t.Fatal(err)
				}
				e.Normalize()
				events = append(events, e)
			}
			if len(events) != 3 {
				t.Fatalf("%d events", len(events))
			}
			if attach && len(events[0].Threads) == 0 {
				t.Error("AttachStacktrace sent no thread stack: the test does not test it")
			}
			ha, kind := Fingerprint(events[0])
			if kind != GroupByMessage || events[0].Level != LevelInfo {
				t.Errorf("attach %v: grouped by %s, level %s", attach, kind, events[0].Level)
			}
			if hb, _ := Fingerprint(events[1]); ha != hb {
				t.Errorf("attach %v: cache misses for two keys made two issues", attach)
			}
			if hc, _ := Fingerprint(events[2]); ha == hc {
				t.Errorf("attach %v: two messages made one issue", attach)
			}
			if got := Title(events[0]); got != "cache miss for key 123" {
				t.Errorf("Title = %q", got)
			}
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		withFP := func(fp ...string) Event {
			return capture(func(hub *sentry.Hub) {
				hub.WithScope(func(s *sentry.Scope) {
					s.SetFingerprint(fp)
					checkoutHandler(hub, 1)
				})
			})[0]
		}
		plain := capture(func(hub *sentry.Hub) { checkoutHandler(hub, 1) })[0]
		custom, kind := Fingerprint(withFP("payments-down"))
		if kind != GroupByFingerprint || custom == hashOf(plain) {
			t.Errorf("a custom fingerprint grouped by %s", kind)
		}
		if h, _ := Fingerprint(capture(func(hub *sentry.Hub) {
			hub.WithScope(func(s *sentry.Scope) {
				s.SetFingerprint([]string{"payments-down"})
				refundHandler(hub, 9)
			})
		})[0]); h != custom {
			t.Error("the same custom fingerprint from another handler made another issue")
		}
		eu, us := hashOf(withFP("{{ default }}", "eu")), hashOf(withFP("{{ default }}", "us"))
		if eu == us || eu == hashOf(plain) || eu == custom {
			t.Error(`["{{ default }}", region] did not split the default issue by region`)
		}
	})
}

func lastFrame(e Event) Frame {
	for i := len(e.Exception) - 1; i >= 0; i-- {
		if st := e.Exception[i].Stacktrace; st != nil && len(st.Frames) > 0 {
			return st.Frames[len(st.Frames)-1]
		}
	}
	return Frame{}
}

// TestDecodeLenientPathAgrees checks that an item of the wrong type, which sends a list
// down the lenient path, changes nothing but that item: both paths read the same event.
func TestDecodeLenientPathAgrees(t *testing.T) {
	opts := sdkOptions
	opts.AttachStacktrace = true
	payloads := sdkEvents(t, opts, func(hub *sentry.Hub) {
		for i := range 3 {
			hub.AddBreadcrumb(&sentry.Breadcrumb{Category: "sql", Message: "SELECT " + strconv.Itoa(i), Data: map[string]any{"rows": i}}, nil)
		}
		checkoutHandler(hub, 7)
		logCacheMiss(hub, 1)
	})
	for _, payload := range payloads {
		want, err := DecodeEvent(payload)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		// A number among the exceptions, the breadcrumbs, the threads and each stack's frames.
		if exs, ok := m["exception"].([]any); ok {
			for _, ex := range exs {
				if st, ok := ex.(map[string]any)["stacktrace"].(map[string]any); ok {
					st["frames"] = append(st["frames"].([]any), 1)
				}
			}
			m["exception"] = append(exs, 1)
		}
		m["breadcrumbs"] = append(m["breadcrumbs"].([]any), 1)
		if ths, ok := m["threads"].([]any); ok {
			m["threads"] = append(ths, 1)
		}
		odd, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(odd)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Exception)+len(want.Threads) == 0 || len(want.Breadcrumbs) != 3 {
			t.Fatalf("the SDK's event has %d exceptions, %d threads, %d breadcrumbs", len(want.Exception), len(want.Threads), len(want.Breadcrumbs))
		}
		// Re-encoding through a map reordered the keys of raw values: compare them as JSON.
		asJSON := cmp.Transformer("json", func(r json.RawMessage) any {
			var v any
			_ = json.Unmarshal(r, &v)
			return v
		})
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Event{}, "Size"), asJSON); diff != "" {
			t.Errorf("lenient path (-strict +lenient):\n%s", diff)
		}
	}
}
