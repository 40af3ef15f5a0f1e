// Package notifytest is the test kit of notify's receivers: Conformance runs the contract every
// receiver shares (how it classifies a service's answers, that it gives up when its context
// does, that its errors never hold a secret) against a fake of the service, and Leaks checks
// any output for secrets.
package notifytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// Leaks reports a test error for every secret that appears in one of the outputs, as is or
// URL-escaped (a token in a path is escaped). Secrets shorter than four bytes are skipped:
// they would match ordinary text.
func Leaks(t testing.TB, secrets []string, outputs ...string) {
	t.Helper()
	seen := make(map[string]bool)
	for _, sec := range secrets {
		if len(sec) < 4 || seen[sec] {
			continue
		}
		seen[sec] = true
		if out, ok := leak(sec, outputs); ok {
			t.Errorf("output leaks secret %q: %s", sec, out)
		}
	}
}

// leak returns the first output that holds sec in some form.
func leak(sec string, outputs []string) (string, bool) {
	for _, out := range outputs {
		for _, f := range []string{sec, url.PathEscape(sec), url.QueryEscape(sec)} {
			if strings.Contains(out, f) {
				return out, true
			}
		}
	}
	return "", false
}

// ErrorTexts returns the texts a log could show of err: its Error, its %+v and %#v, and the
// Error of every error it wraps.
func ErrorTexts(err error) []string {
	if err == nil {
		return nil
	}
	texts := []string{fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		texts = append(texts, err.Error())
		switch u := err.(type) { //nolint:errorlint // walking the chain by hand is the point
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return texts
}

// Case is a situation of the shared contract whose answer the fake service writes.
type Case int

// The cases whose answer Suite.Answer writes. The suite itself plays the other ones (a slow
// server, a reset connection).
const (
	// Success: the service accepted the message.
	Success Case = iota
	// RateLimited: the service answers 429 and says how long to wait, its own way.
	RateLimited
	// ServerError: the service answers 500.
	ServerError
	// BadRequest: the service answers 400, as for a wrong channel or a malformed message.
	BadRequest
)

// String names the case, for subtest names.
func (c Case) String() string {
	switch c {
	case Success:
		return "success"
	case RateLimited:
		return "rate limited"
	case ServerError:
		return "server error"
	case BadRequest:
		return "bad request"
	}
	return fmt.Sprintf("Case(%d)", int(c))
}

// Suite describes a receiver to Conformance.
type Suite struct {
	// New returns the receiver under test, sending to the fake service at serverURL (the
	// receiver's API URL or webhook URL is built on it).
	New func(t *testing.T, serverURL string) notify.Receiver
	// Answer writes the fake service's answer to r for c, as the service documents it: status,
	// headers, body. It may check r with t.Errorf.
	Answer func(t *testing.T, w http.ResponseWriter, r *http.Request, c Case)
	// Secrets are the values no error may hold (tokens, webhook URLs, HMAC keys). The path
	// and query of every request the fake receives are added to them.
	Secrets []string
	// Message is what Send is given; zero means a small default message.
	Message notify.Message
	// NewBrokenSecret, when set, returns a receiver like New's whose secret getter fails with
	// err, to check that the failure is retryable and wraps err.
	NewBrokenSecret func(t *testing.T, serverURL string, err error) notify.Receiver
}

// Conformance runs the contract shared by every receiver against s. Each case counts the
// requests (Send delivers once, never retries by itself) and checks the error's classification
// and that none of its texts holds a secret.
func Conformance(t *testing.T, s Suite) {
	t.Helper()
	msg := s.Message
	if msg.Title == "" && msg.Text == "" {
		msg = notify.Message{
			ID: 7, Channel: "ops", Title: "deploy succeeded", Text: "shop-api is live",
			Severity: notify.SeverityGood, Link: "https://ferry.example/releases/7",
			Event: notify.Event{Type: "deploy.succeeded", Time: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)},
		}
	}

	answered := []struct {
		c         Case
		status    int
		permanent bool
	}{
		{Success, 0, false},
		{RateLimited, http.StatusTooManyRequests, false},
		{ServerError, http.StatusInternalServerError, false},
		{BadRequest, http.StatusBadRequest, true},
	}
	for _, tc := range answered {
		t.Run(tc.c.String(), func(t *testing.T) {
			f := start(t, func(w http.ResponseWriter, r *http.Request) { s.Answer(t, w, r, tc.c) })
			err := s.New(t, f.srv.URL).Send(t.Context(), msg)
			f.check(t, s.Secrets, err, 1)
			if tc.c == Success {
				if err != nil {
					t.Fatalf("Send = %v, want nil", err)
				}
				return
			}
			se := sendError(t, err)
			if se.Status != tc.status || se.Permanent != tc.permanent {
				t.Errorf("Send = %#v, want Status %d, Permanent %t", se, tc.status, tc.permanent)
			}
			if tc.c == RateLimited && (!se.RateLimited() || se.RetryAfter <= 0) {
				t.Errorf("Send = %#v, want RateLimited with a RetryAfter", se)
			}
		})
	}

	t.Run("slow server", func(t *testing.T) {
		release := make(chan struct{})
		f := start(t, func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) }) // runs before the server closes
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := sendWithin(ctx, t, s.New(t, f.srv.URL), msg)
		f.check(t, s.Secrets, err, 1)
		se := sendError(t, err)
		if se.Permanent || se.Status != 0 {
			t.Errorf("Send = %#v, want retryable without status", se)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want it to wrap context.DeadlineExceeded", err)
		}
	})

	t.Run("connection reset", func(t *testing.T) {
		f := start(t, func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST rather than FIN
			}
			conn.Close()
		})
		err := sendWithin(t.Context(), t, s.New(t, f.srv.URL), msg)
		f.check(t, s.Secrets, err, 1)
		se := sendError(t, err)
		if se.Permanent || se.Status != 0 {
			t.Errorf("Send = %#v, want retryable without status", se)
		}
	})

	if s.NewBrokenSecret != nil {
		t.Run("secret unreadable", func(t *testing.T) {
			f := start(t, func(w http.ResponseWriter, r *http.Request) { s.Answer(t, w, r, Success) })
			cause := errors.New("open /run/secrets/token: permission denied")
			err := s.NewBrokenSecret(t, f.srv.URL, cause).Send(t.Context(), msg)
			f.check(t, s.Secrets, err, 0)
			se := sendError(t, err)
			if se.Permanent || !errors.Is(err, cause) {
				t.Errorf("Send = %#v, want retryable and wrapping %v", se, cause)
			}
		})
	}
}

// fake is a service whose requests are counted and whose paths are secret.
type fake struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	secrets  []string
}

func start(t *testing.T, h http.HandlerFunc) *fake {
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests++
		f.secrets = append(f.secrets, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, f.srv.URL+r.URL.RequestURI())
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// check checks the number of requests the fake received and that err leaks no secret.
func (f *fake) check(t *testing.T, secrets []string, err error, requests int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests != requests {
		t.Errorf("the service received %d requests, want %d", f.requests, requests)
	}
	Leaks(t, append(append([]string(nil), secrets...), f.secrets...), ErrorTexts(err)...)
}

// sendWithin calls Send and fails the test if it has not returned after a while: a receiver
// must give up when its context does, not when its HTTP client's timeout fires.
func sendWithin(ctx context.Context, t *testing.T, r notify.Receiver, m notify.Message) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Send(ctx, m) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return")
		return nil
	}
}

func sendError(t *testing.T, err error) *notify.SendError {
	t.Helper()
	var se *notify.SendError
	if !errors.As(err, &se) {
		t.Fatalf("Send = %v (%T), want a *notify.SendError", err, err)
	}
	return se
}
