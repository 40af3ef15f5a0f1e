// Package webhooktest runs a receiver of Ferry's generic webhook for end-to-end tests.
package webhooktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/notify/webhook"
)

// Sink is a receiver of Ferry's generic webhook for end-to-end tests: it checks each
// request's signature with the shared secret, refuses unsigned or forged ones with 401, and
// records what it accepted.
type Sink struct {
	URL    string
	secret []byte

	mu       sync.Mutex
	payloads []webhook.Payload
	requests map[string]int // by X-Ferry-Delivery
	down     bool
}

// NewSink starts a Sink that verifies signatures made with secret, until the test ends.
func NewSink(t testing.TB, secret string) *Sink {
	s := &Sink{secret: []byte(secret), requests: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/hooks/ferry"
	return s
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !webhook.Verify(s.secret, body, r.Header.Get(webhook.HeaderSignature)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	s.requests[r.Header.Get(webhook.HeaderDelivery)]++
	s.payloads = append(s.payloads, p)
	w.WriteHeader(http.StatusNoContent)
}

// SetDown makes the sink answer 503 until it is set up again.
func (s *Sink) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Payloads returns what the sink accepted, in order.
func (s *Sink) Payloads() []webhook.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.payloads)
}

// Types returns the event types the sink accepted, in order.
func (s *Sink) Types() []string {
	var out []string
	for _, p := range s.Payloads() {
		out = append(out, p.Event.Type)
	}
	return out
}

// Duplicates returns the delivery IDs that arrived more than once.
func (s *Sink) Duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, n := range s.requests {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

// Wait waits until the sink has accepted n messages and returns them; it fails the test
// after timeout.
func (s *Sink) Wait(t testing.TB, n int, timeout time.Duration) []webhook.Payload {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Payloads()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook sink got %d messages in %s, want %d: %v", len(got), timeout, n, s.Types())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
