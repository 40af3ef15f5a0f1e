package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/notifytest"
)

const (
	hookPath   = "/ferry/hooks/9f8e7d6c5b4a3210"
	hmacSecret = "whsec-3c9a1f7e55d04b2a"
	apiKey     = "k-77f0c1d2e3a4b5c6"
)

// delivery is one request the fake receiver accepted.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver as a user would write it: it checks the request, verifies
// the signature with Verify and answers 401 to a wrong one.
type receiver struct {
	t      *testing.T
	secret string // empty: expects no signature

	mu         sync.Mutex
	deliveries []delivery
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := []string{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent")}
	if diff := cmp.Diff([]string{http.MethodPost, hookPath, "application/json", "ferry"}, got); diff != "" {
		rc.t.Errorf("request (-want +got):\n%s", diff)
	}
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get(HeaderSignature)
	switch {
	case rc.secret == "" && sig != "":
		rc.t.Errorf("unsigned webhook sent %s %q", HeaderSignature, sig)
	case rc.secret != "" && !Verify([]byte(rc.secret), body, sig):
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.deliveries = append(rc.deliveries, delivery{r.Header, body})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func startReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	t.Helper()
	rc := &receiver{t: t, secret: secret}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func newNotifier(t *testing.T, cfg Config, serverURL, secret string) *Notifier {
	t.Helper()
	var s notify.Secret
	if secret != "" {
		s = notify.StaticSecret(secret)
	}
	n, err := New(cfg, notify.StaticSecret(serverURL+hookPath), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var message = notify.Message{
	ID: 42, Channel: "ops", Title: "shop-api deploy succeeded", Text: "a1b2c3d is live in production",
	Severity: notify.SeverityGood, Link: "https://ferry.example/releases/42",
	Fields: []notify.Field{{Title: "Revision", Value: "a1b2c3d", Short: true}},
	Event: notify.Event{
		Type: "deploy.succeeded", Time: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC), Summary: "deployed a1b2c3d",
		Application: "shop-api", Namespace: "shop", Environment: "production", ReleaseID: 42, Revision: "a1b2c3d",
		Changes: &notify.Changes{Created: 1, Configured: 2, Unchanged: 7}, Duration: 95 * time.Second,
	},
}

func TestSend(t *testing.T) {
	rc, srv := startReceiver(t, hmacSecret)
	n := newNotifier(t, Config{Headers: map[string]string{"Authorization": "Bearer " + apiKey}}, srv.URL, hmacSecret)
	// Twice, as a retry would: the delivery ID and the body stay the same.
	for range 2 {
		if err := n.Send(t.Context(), message); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(rc.deliveries) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(rc.deliveries))
	}

	var got any
	if err := json.Unmarshal(rc.deliveries[0].body, &got); err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal([]byte(`{
		"version": "1", "id": 42, "channel": "ops",
		"title": "shop-api deploy succeeded", "text": "a1b2c3d is live in production",
		"severity": "good", "link": "https://ferry.example/releases/42",
		"fields": [{"title": "Revision", "value": "a1b2c3d", "short": true}],
		"event": {
			"type": "deploy.succeeded", "time": "2031-05-06T07:08:09Z", "summary": "deployed a1b2c3d",
			"application": "shop-api", "namespace": "shop", "environment": "production",
			"releaseId": 42, "revision": "a1b2c3d",
			"changes": {"created": 1, "configured": 2, "unchanged": 7, "pruned": 0},
			"duration": 95000000000
		}
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}

	for i, d := range rc.deliveries {
		got := map[string]string{}
		for _, k := range []string{HeaderEvent, HeaderDelivery, HeaderSignature, "Authorization"} {
			got[k] = d.header.Get(k)
		}
		want := map[string]string{
			HeaderEvent: "deploy.succeeded", HeaderDelivery: "42", "Authorization": "Bearer " + apiKey,
			HeaderSignature: Sign([]byte(hmacSecret), rc.deliveries[0].body),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("delivery %d headers (-want +got):\n%s", i, diff)
		}
		if !bytes.Equal(d.body, rc.deliveries[0].body) {
			t.Errorf("delivery %d body differs from the first", i)
		}
	}
}

func TestSendUnsigned(t *testing.T) {
	rc, srv := startReceiver(t, "")
	if err := newNotifier(t, Config{}, srv.URL, "").Send(t.Context(), message); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(rc.deliveries) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(rc.deliveries))
	}
}

func TestSendWrongSecret(t *testing.T) {
	rc, srv := startReceiver(t, hmacSecret)
	const wrong = "whsec-not-the-right-one"
	err := newNotifier(t, Config{}, srv.URL, wrong).Send(t.Context(), message)
	var se *notify.SendError
	if !errors.As(err, &se) || !se.Permanent || se.Status != http.StatusUnauthorized {
		t.Fatalf("Send = %#v, want a permanent 401 *notify.SendError", err)
	}
	if len(rc.deliveries) != 0 {
		t.Errorf("the receiver accepted %d deliveries with a wrong signature", len(rc.deliveries))
	}
	notifytest.Leaks(t, []string{wrong, hmacSecret, hookPath}, notifytest.ErrorTexts(err)...)
}

func TestSendBrokenHMACSecret(t *testing.T) {
	rc, srv := startReceiver(t, hmacSecret)
	cause := errors.New("open /run/secrets/hmac: no such file or directory")
	tests := []struct {
		name   string
		secret notify.Secret
	}{
		{"unreadable", func(context.Context) (string, error) { return "", cause }},
		{"empty", notify.StaticSecret("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(Config{}, notify.StaticSecret(srv.URL+hookPath), tt.secret, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = n.Send(t.Context(), message)
			var se *notify.SendError
			if !errors.As(err, &se) || se.Permanent {
				t.Fatalf("Send = %v, want a retryable *notify.SendError", err)
			}
			if tt.name == "unreadable" && !errors.Is(err, cause) {
				t.Errorf("Send = %v, want it to wrap %v", err, cause)
			}
		})
	}
	if len(rc.deliveries) != 0 {
		t.Errorf("%d unsigned deliveries were sent", len(rc.deliveries))
	}
}

func TestConformance(t *testing.T) {
	notifytest.Conformance(t, notifytest.Suite{
		New: func(t *testing.T, serverURL string) notify.Receiver {
			return newNotifier(t, Config{Headers: map[string]string{"Authorization": "Bearer " + apiKey}}, serverURL, hmacSecret)
		},
		Answer: func(t *testing.T, w http.ResponseWriter, r *http.Request, c notifytest.Case) {
			body, _ := io.ReadAll(r.Body)
			if !Verify([]byte(hmacSecret), body, r.Header.Get(HeaderSignature)) {
				t.Errorf("request signature %q does not verify", r.Header.Get(HeaderSignature))
			}
			switch c {
			case notifytest.Success:
				w.WriteHeader(http.StatusOK)
			case notifytest.RateLimited:
				w.Header().Set("Retry-After", "30")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			case notifytest.ServerError:
				http.Error(w, "database is down", http.StatusInternalServerError)
			case notifytest.BadRequest:
				// A receiver echoing the request's headers must not leak the API key.
				http.Error(w, "unknown channel ops (Authorization: Bearer "+apiKey+")", http.StatusBadRequest)
			}
		},
		Secrets: []string{hookPath, hmacSecret, apiKey},
		NewBrokenSecret: func(t *testing.T, _ string, err error) notify.Receiver {
			n, nerr := New(Config{}, func(context.Context) (string, error) { return "", err }, notify.StaticSecret(hmacSecret), nil)
			if nerr != nil {
				t.Fatal(nerr)
			}
			return n
		},
	})
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   *notify.SendError
		// text is what the operator reads.
		text string
	}{
		{"request timeout", 408, nil, "", &notify.SendError{Status: 408}, "HTTP 408: Request Timeout"},
		{"unavailable", 503, http.Header{"Retry-After": {"120"}}, "maintenance", &notify.SendError{Status: 503, RetryAfter: 2 * time.Minute}, "HTTP 503: maintenance"},
		{"gone", 410, nil, "hook deleted", &notify.SendError{Status: 410, Permanent: true}, "HTTP 410: hook deleted"},
		{"HTML page", 404, nil, "<html><h1>Not Found</h1><p>" + hookPath + "</p></html>", &notify.SendError{Status: 404, Permanent: true}, "HTTP 404: Not Found"},
		{"echoes the API key", 403, nil, "key " + apiKey + " may not post", &notify.SendError{Status: 403, Permanent: true}, "HTTP 403: key … may not post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			n := newNotifier(t, Config{Headers: map[string]string{"X-Api-Key": apiKey}}, srv.URL, hmacSecret)
			err := n.Send(t.Context(), message)
			var se *notify.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send = %v, want a *notify.SendError", err)
			}
			if diff := cmp.Diff(tt.want, se, cmpopts.IgnoreFields(notify.SendError{}, "Err")); diff != "" {
				t.Errorf("SendError (-want +got):\n%s", diff)
			}
			if got := err.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
			notifytest.Leaks(t, []string{hookPath, hmacSecret, apiKey}, notifytest.ErrorTexts(err)...)
		})
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte(hmacSecret), []byte(`{"version":"1"}`)
	good := Sign(secret, body)
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   bool
	}{
		{"valid", secret, body, good, true},
		{"wrong secret", []byte("other"), body, good, false},
		{"body changed", secret, []byte(`{"version":"2"}`), good, false},
		{"no prefix", secret, body, good[len("sha256="):], false},
		{"sha1", secret, body, "sha1=" + good[len("sha256="):], false},
		{"not hex", secret, body, "sha256=zz", false},
		{"truncated", secret, body, good[:len(good)-2], false},
		{"empty header", secret, body, "", false},
		{"empty secret", nil, body, Sign(nil, body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify = %t, want %t", got, tt.want)
			}
		})
	}
	// The signature documented in docs/notifications-webhook.md.
	if got, want := Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!")),
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestConfig(t *testing.T) {
	const doc = `
headers:
  X-Routing-Key: deploys
`
	var got Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Config{Headers: map[string]string{"X-Routing-Key": "deploys"}}, got); diff != "" {
		t.Errorf("decoded Config (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		headers map[string]string
		valid   bool
	}{
		{"none", nil, true},
		{"custom", map[string]string{"X-Routing-Key": "deploys", "authorization": "Bearer x"}, true},
		{"space in name", map[string]string{"X Key": "v"}, false},
		{"empty name", map[string]string{"": "v"}, false},
		{"Ferry's", map[string]string{"x-ferry-delivery": "1"}, false},
		{"content type", map[string]string{"Content-Type": "text/plain"}, false},
		{"line break", map[string]string{"X-Key": "a\r\nX-Other: b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Headers: tt.headers}
			err := cfg.Validate()
			if (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid %t", err, tt.valid)
			}
			if _, nerr := New(cfg, notify.StaticSecret("https://x.example/h"), nil, nil); (nerr == nil) != tt.valid {
				t.Errorf("New = %v, want valid %t", nerr, tt.valid)
			}
		})
	}
}
