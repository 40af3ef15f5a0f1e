package rocketchat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/notifytest"
)

const tooManyRequests = `{"success":false,"error":"Error, too many requests. Please slow down. You must wait 10 seconds before trying this endpoint again. [error-too-many-requests]"}`

const hookPath = "/hooks/5pcAyYRe2vAE2Dws4/Yq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb"

// rocketChat is a fake Rocket.Chat incoming webhook: it checks the request as Rocket.Chat
// reads it and records the decoded JSON body.
func rocketChat(t *testing.T, answer func(w http.ResponseWriter)) (srv *httptest.Server, bodies *[]any) {
	t.Helper()
	bodies = new([]any)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkRequest(t, r) {
			http.Error(w, `{"success":false,"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		var v any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("request body is not JSON: %v", err)
		}
		*bodies = append(*bodies, v)
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return srv, bodies
}

func checkRequest(t *testing.T, r *http.Request) bool {
	t.Helper()
	got := []string{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent")}
	want := []string{http.MethodPost, hookPath, "application/json", "ferry"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
		return false
	}
	return true
}

func answerJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func newNotifier(t *testing.T, cfg Config, serverURL string) *Notifier {
	t.Helper()
	n, err := New(cfg, notify.StaticSecret(serverURL+hookPath), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendPayload(t *testing.T) {
	msg := notify.Message{
		ID: 42, Channel: "ops", Title: "*shop-api* deploy failed", Text: "dry-run rejected `Deployment/web`",
		Severity: notify.SeverityDanger, Link: "https://ferry.example/releases/42",
		Fields: []notify.Field{{Title: "Revision", Value: "a1b2c3d", Short: true}, {Title: "Reason", Value: "quota <exceeded>"}},
	}
	tests := []struct {
		name string
		cfg  Config
		msg  notify.Message
		want string
	}{{
		name: "every setting, link and fields",
		cfg:  Config{Channel: "#deploys", Alias: "Ferry", Emoji: ":ship:"},
		msg:  msg,
		want: `{
			"text": "*shop-api* deploy failed\ndry-run rejected ` + "`Deployment/web`" + `",
			"channel": "#deploys", "alias": "Ferry", "emoji": ":ship:",
			"attachments": [{
				"title": "Open in Ferry", "title_link": "https://ferry.example/releases/42", "color": "#a30200",
				"fields": [
					{"title": "Revision", "value": "a1b2c3d", "short": true},
					{"title": "Reason", "value": "quota <exceeded>", "short": false}
				]
			}]
		}`,
	}, {
		name: "avatar, no link or fields",
		cfg:  Config{Avatar: "https://ferry.example/logo.png"},
		msg:  notify.Message{Title: "secret rotated", Severity: notify.SeverityInfo},
		want: `{"text": "secret rotated", "avatar": "https://ferry.example/logo.png"}`,
	}, {
		name: "fields without link",
		msg:  notify.Message{Title: "t", Text: "x", Severity: notify.SeverityGood, Fields: []notify.Field{{Title: "a", Value: "b"}}},
		want: `{"text": "t\nx", "attachments": [{"color": "#2eb886", "fields": [{"title": "a", "value": "b", "short": false}]}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, bodies := rocketChat(t, func(w http.ResponseWriter) { answerJSON(w, http.StatusOK, `{"success":true}`) })
			if err := newNotifier(t, tt.cfg, srv.URL).Send(t.Context(), tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]any{want}, *bodies); diff != "" {
				t.Errorf("request bodies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	notifytest.Conformance(t, notifytest.Suite{
		New: func(t *testing.T, serverURL string) notify.Receiver { return newNotifier(t, Config{}, serverURL) },
		Answer: func(t *testing.T, w http.ResponseWriter, r *http.Request, c notifytest.Case) {
			checkRequest(t, r)
			switch c {
			case notifytest.Success:
				answerJSON(w, http.StatusOK, `{"success":true}`)
			case notifytest.RateLimited:
				w.Header().Set("X-RateLimit-Limit", "10")
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
				answerJSON(w, http.StatusTooManyRequests, tooManyRequests)
			case notifytest.ServerError:
				answerJSON(w, http.StatusInternalServerError, `{"success":false,"error":"Internal server error"}`)
			case notifytest.BadRequest:
				answerJSON(w, http.StatusBadRequest, `{"success":false,"error":"Invalid integration id or token provided."}`)
			}
		},
		Secrets: []string{hookPath, "Yq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb"},
		NewBrokenSecret: func(t *testing.T, _ string, err error) notify.Receiver {
			n, nerr := New(Config{}, func(context.Context) (string, error) { return "", err }, nil)
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
		body   string
		want   *notify.SendError
		// text is what the operator reads.
		text string
	}{{
		name: "invalid token", status: http.StatusBadRequest,
		body: `{"success":false,"error":"Invalid integration id or token provided."}`,
		want: &notify.SendError{Status: 400, Permanent: true},
		text: "HTTP 400: Invalid integration id or token provided.",
	}, {
		name: "unknown channel", status: http.StatusBadRequest,
		body: `{"success":false,"error":"invalid-channel"}`,
		want: &notify.SendError{Status: 400, Permanent: true},
		text: "HTTP 400: invalid-channel",
	}, {
		name: "success false on 200", status: http.StatusOK,
		body: `{"success":false,"error":"error-not-allowed"}`,
		want: &notify.SendError{Status: 200},
		text: "HTTP 200: error-not-allowed",
	}, {
		name: "200 that is not Rocket.Chat's", status: http.StatusOK,
		body: `<html>captive portal</html>`,
		want: &notify.SendError{Status: 200},
		text: "HTTP 200: answer without success",
	}, {
		name: "proxy page quoting the URL", status: http.StatusNotFound,
		body: `<html>` + hookPath + ` was not found</html>`,
		want: &notify.SendError{Status: 404, Permanent: true},
		text: "HTTP 404: Not Found",
	}, {
		name: "rate limited by the body only", status: http.StatusTooManyRequests,
		body: tooManyRequests,
		want: &notify.SendError{Status: 429, RetryAfter: 10 * time.Second},
		text: "HTTP 429: Error, too many requests. Please slow down. You must wait 10 seconds before trying this endpoint again. [error-too-many-requests]",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := rocketChat(t, func(w http.ResponseWriter) { answerJSON(w, tt.status, tt.body) })
			err := newNotifier(t, Config{}, srv.URL).Send(t.Context(), notify.Message{Title: "t"})
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
			notifytest.Leaks(t, []string{hookPath}, notifytest.ErrorTexts(err)...)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	resetIn := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   time.Duration
	}{
		{"Retry-After wins", http.Header{"Retry-After": {"3"}, "X-Ratelimit-Reset": {resetIn(time.Minute)}}, tooManyRequests, 3 * time.Second},
		{"X-RateLimit-Reset in milliseconds", http.Header{"X-Ratelimit-Reset": {resetIn(2500 * time.Millisecond)}}, tooManyRequests, 2500 * time.Millisecond},
		{"X-RateLimit-Reset in seconds", http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(now.Add(7*time.Second).Unix(), 10)}}, "", 7 * time.Second},
		{"reset passed, body says", http.Header{"X-Ratelimit-Reset": {resetIn(-time.Second)}}, tooManyRequests, 10 * time.Second},
		{"body only", http.Header{}, tooManyRequests, 10 * time.Second},
		{"nothing", http.Header{}, `{"success":false,"error":"error-too-many-requests"}`, 0},
		{"not JSON", http.Header{"X-Ratelimit-Reset": {"soon"}}, "wait 5 seconds", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, []byte(tt.body), now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	const doc = `
channel: "#deploys"
alias: Ferry
emoji: ":ship:"
`
	var got Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Config{Channel: "#deploys", Alias: "Ferry", Emoji: ":ship:"}, got); diff != "" {
		t.Errorf("decoded Config (-want +got):\n%s", diff)
	}

	tests := []struct {
		name  string
		cfg   Config
		valid bool
	}{
		{"empty", Config{}, true},
		{"user", Config{Channel: "@ana"}, true},
		{"avatar", Config{Avatar: "https://x.example/a.png"}, true},
		{"channel without #", Config{Channel: "deploys"}, false},
		{"emoji without colons", Config{Emoji: "ship"}, false},
		{"avatar not a URL", Config{Avatar: "logo.png"}, false},
		{"emoji and avatar", Config{Emoji: ":ship:", Avatar: "https://x.example/a.png"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid %t", err, tt.valid)
			}
			if _, nerr := New(tt.cfg, notify.StaticSecret("https://chat.example/hooks/a/b"), nil); (nerr == nil) != tt.valid {
				t.Errorf("New = %v, want valid %t", nerr, tt.valid)
			}
		})
	}
}
