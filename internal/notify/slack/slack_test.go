package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/notifytest"
)

const hookPath = "/services/T0AB12CD3/B0EF45GH6/xoVzq3fV8mPa9LkRt2YwNc4J"

// slackHook is a fake Slack incoming webhook: it checks the request as Slack reads it, records
// the decoded JSON body and answers as Slack does, in plain text.
func slackHook(t *testing.T, status int, header http.Header, body string) (srv *httptest.Server, bodies *[]any) {
	t.Helper()
	bodies = new([]any)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkRequest(t, r) {
			answerText(w, http.StatusNotFound, "no_service")
			return
		}
		var v any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("request body is not JSON: %v", err)
		}
		*bodies = append(*bodies, v)
		for k, vs := range header {
			w.Header()[k] = vs
		}
		answerText(w, status, body)
	}))
	t.Cleanup(srv.Close)
	return srv, bodies
}

func checkRequest(t *testing.T, r *http.Request) bool {
	t.Helper()
	got := []string{r.Method, r.URL.Path, r.Header.Get("Content-Type")}
	want := []string{http.MethodPost, hookPath, "application/json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
		return false
	}
	return true
}

func answerText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
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
	when := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		cfg  Config
		msg  notify.Message
		want string
	}{{
		name: "every setting, link and fields",
		cfg:  Config{Channel: "#deploys", Username: "Ferry", IconEmoji: ":ship:"},
		msg: notify.Message{
			Title: "*shop-api* deploy failed", Text: "dry-run rejected `Deployment/web` &lt;quota&gt;",
			Severity: notify.SeverityWarning, Link: "https://ferry.example/releases/42",
			Fields: []notify.Field{{Title: "Revision", Value: "a1b2c3d", Short: true}, {Title: "A & B", Value: "<!channel> & more"}},
			Event:  notify.Event{Type: "deploy.failed", Time: when},
		},
		want: `{
			"text": "*shop-api* deploy failed\ndry-run rejected ` + "`Deployment/web`" + ` &lt;quota&gt;",
			"channel": "#deploys", "username": "Ferry", "icon_emoji": ":ship:",
			"attachments": [{
				"fallback": "*shop-api* deploy failed", "color": "#daa038",
				"title": "Open in Ferry", "title_link": "https://ferry.example/releases/42",
				"fields": [
					{"title": "Revision", "value": "a1b2c3d", "short": true},
					{"title": "A &amp; B", "value": "&lt;!channel&gt; &amp; more", "short": false}
				],
				"ts": 1935817689
			}]
		}`,
	}, {
		name: "icon URL, no link or fields",
		cfg:  Config{IconURL: "https://ferry.example/logo.png"},
		msg:  notify.Message{Title: "secret rotated", Text: "in 3 applications"},
		want: `{"text": "secret rotated\nin 3 applications", "icon_url": "https://ferry.example/logo.png"}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, bodies := slackHook(t, http.StatusOK, nil, "ok")
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
				answerText(w, http.StatusOK, "ok")
			case notifytest.RateLimited:
				w.Header().Set("Retry-After", "30")
				answerText(w, http.StatusTooManyRequests, "rate_limited")
			case notifytest.ServerError:
				answerText(w, http.StatusInternalServerError, "rollup_error")
			case notifytest.BadRequest:
				answerText(w, http.StatusBadRequest, "invalid_payload")
			}
		},
		Secrets: []string{hookPath, "xoVzq3fV8mPa9LkRt2YwNc4J"},
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
		header http.Header
		body   string
		want   *notify.SendError
		// text is what the operator reads.
		text string
	}{
		{"invalid payload", 400, nil, "invalid_payload", &notify.SendError{Status: 400, Permanent: true}, "HTTP 400: invalid_payload"},
		{"revoked token", 403, nil, "invalid_token", &notify.SendError{Status: 403, Permanent: true}, "HTTP 403: invalid_token"},
		{"action prohibited", 403, nil, "action_prohibited", &notify.SendError{Status: 403, Permanent: true}, "HTTP 403: action_prohibited"},
		{"channel not found", 404, nil, "channel_not_found", &notify.SendError{Status: 404, Permanent: true}, "HTTP 404: channel_not_found"},
		{"webhook removed", 404, nil, "no_service", &notify.SendError{Status: 404, Permanent: true}, "HTTP 404: no_service"},
		{"archived channel", 410, nil, "channel_is_archived", &notify.SendError{Status: 410, Permanent: true}, "HTTP 410: channel_is_archived"},
		{
			"rate limited", 429, http.Header{"Retry-After": {"12"}}, "rate_limited",
			&notify.SendError{Status: 429, RetryAfter: 12 * time.Second}, "HTTP 429: rate_limited",
		},
		{
			"Mattermost's JSON error", 400, nil,
			`{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","detailed_error":"","request_id":"8kq3","status_code":400}`,
			&notify.SendError{Status: 400, Permanent: true}, "HTTP 400: Invalid webhook.",
		},
		{
			"proxy page quoting the URL", 502, nil, "<html><body>" + hookPath + ": bad gateway</body></html>",
			&notify.SendError{Status: 502}, "HTTP 502: Bad Gateway",
		},
		{
			"plain text quoting the URL", 404, nil, "no route for POST " + hookPath,
			&notify.SendError{Status: 404, Permanent: true}, "HTTP 404: no route for POST …",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := slackHook(t, tt.status, tt.header, tt.body)
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
			notifytest.Leaks(t, []string{hookPath, "xoVzq3fV8mPa9LkRt2YwNc4J"}, notifytest.ErrorTexts(err)...)
		})
	}
}

func TestSendAcceptsAny2xx(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNoContent} {
		srv, _ := slackHook(t, status, nil, "")
		if err := newNotifier(t, Config{}, srv.URL).Send(t.Context(), notify.Message{Title: "t"}); err != nil {
			t.Errorf("Send answered %d = %v, want nil", status, err)
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a & b", "a &amp; b"},
		{"<!channel>", "&lt;!channel&gt;"},
		{"&amp;", "&amp;amp;"}, // plain text: the & is a character, not an entity
		{"*bold* _it_", "*bold* _it_"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	const doc = `
channel: "#deploys"
username: Ferry
icon_url: https://ferry.example/logo.png
`
	var got Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Config{Channel: "#deploys", Username: "Ferry", IconURL: "https://ferry.example/logo.png"}, got); diff != "" {
		t.Errorf("decoded Config (-want +got):\n%s", diff)
	}

	tests := []struct {
		name  string
		cfg   Config
		valid bool
	}{
		{"empty", Config{}, true},
		{"channel ID", Config{Channel: "C0123ABCD"}, true},
		{"emoji", Config{IconEmoji: ":ship:"}, true},
		{"channel with a space", Config{Channel: "#de ploys"}, false},
		{"emoji without colons", Config{IconEmoji: "ship"}, false},
		{"icon not a URL", Config{IconURL: "logo.png"}, false},
		{"emoji and icon", Config{IconEmoji: ":ship:", IconURL: "https://x.example/a.png"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid %t", err, tt.valid)
			}
			if _, nerr := New(tt.cfg, notify.StaticSecret("https://hooks.slack.example/services/a/b/c"), nil); (nerr == nil) != tt.valid {
				t.Errorf("New = %v, want valid %t", nerr, tt.valid)
			}
		})
	}
}
