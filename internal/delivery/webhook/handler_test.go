package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// syncBuffer is a log sink the server's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHandler(t *testing.T) {
	githubPush := fixture(t, "github-push.json")
	errTrigger := errors.New("queue closed: trigger-detail-91c2")

	tests := []struct {
		name       string
		req        *http.Request
		triggerErr error
		wantStatus int
		wantBody   map[string]any // compared whole; nil to check only wantKey
		wantKey    string         // "error" or "message" when wantBody is nil
		wantNamed  string         // what the answer must name, such as the header at fault
		wantCalls  []Push
	}{
		{
			name:       "push",
			req:        githubRequest("push", githubPush),
			wantStatus: http.StatusAccepted,
			wantBody:   map[string]any{"provider": "github", "ref": "refs/heads/main", "applications": 2.0},
			wantCalls:  []Push{githubMain},
		},
		{
			name:       "gitlab tag push",
			req:        gitlabRequest("Tag Push Hook", fixture(t, "gitlab-tag-push.json")),
			wantStatus: http.StatusAccepted,
			wantBody:   map[string]any{"provider": "gitlab", "ref": "refs/tags/v2.0.0", "applications": 2.0},
			wantCalls: []Push{{
				Provider: GitLab, RepoURLs: gitlabURLs, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0",
				After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			}},
		},
		{name: "ping", req: githubRequest("ping", fixture(t, "github-ping.json")), wantStatus: http.StatusOK, wantKey: "message"},
		{name: "not a push", req: githubRequest("issues", fixture(t, "github-issues.json")), wantStatus: http.StatusAccepted, wantKey: "message"},
		{name: "unknown provider", req: request(githubPush), wantStatus: http.StatusBadRequest, wantKey: "error"},
		{
			name:       "wrong signature",
			req:        request(githubPush, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex("guess", githubPush)),
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantNamed: "X-Hub-Signature-256",
		},
		{
			name:       "wrong token",
			req:        request(githubPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "guess"),
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantNamed: "X-Gitlab-Token",
		},
		{
			name:       "wrong gitea signature",
			req:        request(githubPush, "X-Gitea-Event", "push", "X-Gitea-Signature", hmacHex("guess", githubPush)),
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantNamed: "X-Gitea-Signature",
		},
		{
			name:       "over 5 MiB",
			req:        githubRequest("push", bytes.Repeat([]byte(" "), int(DefaultMaxBytes)+1)),
			wantStatus: http.StatusRequestEntityTooLarge, wantKey: "error",
		},
		{name: "malformed", req: githubRequest("push", []byte(`{"ref":`)), wantStatus: http.StatusBadRequest, wantKey: "error"},
		{name: "GET", req: httptest.NewRequest(http.MethodGet, "/api/webhook", nil), wantStatus: http.StatusMethodNotAllowed, wantKey: "error"},
		{
			name:       "trigger fails",
			req:        githubRequest("push", githubPush),
			triggerErr: errTrigger,
			wantStatus: http.StatusInternalServerError, wantKey: "error",
			wantCalls: []Push{githubMain},
		},
	}

	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []Push
			trigger := func(ctx context.Context, p Push) (int, error) {
				if ctx == nil {
					t.Error("trigger got a nil context")
				}
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, p)
				return 2, tt.triggerErr
			}
			srv := httptest.NewServer(Handler(testSecrets, trigger, log))
			defer srv.Close()

			tt.req.RequestURI = ""
			u, err := tt.req.URL.Parse(srv.URL + "/api/webhook")
			if err != nil {
				t.Fatal(err)
			}
			tt.req.URL, tt.req.Host = u, u.Host
			resp, err := srv.Client().Do(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			answers = append(answers, string(raw))

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, raw)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("answer %q is not JSON: %v", raw, err)
			}
			if tt.wantBody != nil {
				if diff := cmp.Diff(tt.wantBody, body); diff != "" {
					t.Errorf("answer mismatch (-want +got):\n%s", diff)
				}
			} else if s, _ := body[tt.wantKey].(string); s == "" {
				t.Errorf("answer %s has no %q", raw, tt.wantKey)
			}
			if tt.wantNamed != "" && !strings.Contains(string(raw), tt.wantNamed) {
				t.Errorf("answer %s does not name %s", raw, tt.wantNamed)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("trigger calls mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// The trigger's error is for the operator, not the caller.
	if !strings.Contains(logs.String(), "trigger-detail-91c2") {
		t.Errorf("trigger error was not logged; logs:\n%s", logs.String())
	}
	for _, a := range answers {
		if strings.Contains(a, "trigger-detail-91c2") {
			t.Errorf("answer %s quotes the trigger error", a)
		}
	}
	for _, s := range []string{githubSecret, gitlabToken, giteaSecret, payloadMarker} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs quote %q:\n%s", s, logs.String())
		}
		for _, a := range answers {
			if strings.Contains(a, s) {
				t.Errorf("answer %s quotes %q", a, s)
			}
		}
	}
}
