package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/notifytest"
)

const botToken = "123456789:AAH-fake_token_for_tests_0123456789ab"

const okAnswer = `{"ok":true,"result":{"message_id":17,"chat":{"id":-1001234567890,"type":"supergroup"},"date":1967000000,"text":"x"}}`

// botAPI is a fake Bot API: it checks a sendMessage request as the Bot API reads it and
// records the decoded JSON body.
func botAPI(t *testing.T, answer func(w http.ResponseWriter)) (srv *httptest.Server, bodies *[]map[string]any) {
	t.Helper()
	bodies = new([]map[string]any)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkRequest(t, r) {
			answerJSON(w, http.StatusNotFound, `{"ok":false,"error_code":404,"description":"Not Found"}`)
			return
		}
		var v map[string]any
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
	got := []string{r.Method, r.URL.Path, r.Header.Get("Content-Type")}
	want := []string{http.MethodPost, "/bot" + botToken + "/sendMessage", "application/json"}
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

func newNotifier(t *testing.T, cfg Config, apiURL string) *Notifier {
	t.Helper()
	if cfg.ChatID == "" {
		cfg.ChatID = "-1001234567890"
	}
	cfg.APIURL = apiURL
	n, err := New(cfg, notify.StaticSecret(botToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendPayload(t *testing.T) {
	msg := notify.Message{
		ID: 42, Title: "shop-api deploy &lt;failed&gt;", Text: "dry-run rejected <code>Deployment/web</code>",
		Severity: notify.SeverityDanger, Link: "https://ferry.example/releases/42",
		Fields: []notify.Field{{Title: "Revision", Value: "a1b2c3d"}},
	}
	tests := []struct {
		name  string
		cfg   Config
		msg   notify.Message
		slash bool
		want  map[string]any
	}{{
		name: "topic of a supergroup, silent",
		cfg:  Config{ChatID: "-1001234567890", MessageThreadID: 7, DisableNotification: true},
		msg:  msg,
		want: map[string]any{
			"chat_id": -1001234567890.0, "message_thread_id": 7.0, "disable_notification": true,
			"text":       "<b>shop-api deploy &lt;failed&gt;</b>\ndry-run rejected <code>Deployment/web</code>",
			"parse_mode": "HTML", "link_preview_options": map[string]any{"is_disabled": true},
		},
	}, {
		name:  "channel username, api_url with a slash",
		cfg:   Config{ChatID: "@ferry_deploys"},
		msg:   notify.Message{Title: "secret rotated"},
		slash: true,
		want: map[string]any{
			"chat_id": "@ferry_deploys", "text": "<b>secret rotated</b>",
			"parse_mode": "HTML", "link_preview_options": map[string]any{"is_disabled": true},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, bodies := botAPI(t, func(w http.ResponseWriter) { answerJSON(w, http.StatusOK, okAnswer) })
			apiURL := srv.URL
			if tt.slash {
				apiURL += "/"
			}
			if err := newNotifier(t, tt.cfg, apiURL).Send(t.Context(), tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if diff := cmp.Diff([]map[string]any{tt.want}, *bodies); diff != "" {
				t.Errorf("request bodies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendTrimsLongText(t *testing.T) {
	srv, bodies := botAPI(t, func(w http.ResponseWriter) { answerJSON(w, http.StatusOK, okAnswer) })
	long := strings.Repeat("<i>Deployment</i> web &amp; api configured\n", 200)
	m := notify.Message{Title: "shop-api synced", Text: "<blockquote>" + long + "</blockquote>", Link: "https://ferry.example/releases/42?tab=objects&x=1"}
	if err := newNotifier(t, Config{}, srv.URL).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(*bodies) != 1 {
		t.Fatalf("got %d requests, want 1", len(*bodies))
	}
	text, _ := (*bodies)[0]["text"].(string)
	if n := VisibleLen(text); n > MaxTextLen {
		t.Errorf("sent text is %d long, over %d", n, MaxTextLen)
	}
	const suffix = "</blockquote>…\n\n<a href=\"https://ferry.example/releases/42?tab=objects&amp;x=1\">Full message in Ferry</a>"
	if !strings.HasPrefix(text, "<b>shop-api synced</b>\n<blockquote><i>Deployment</i>") || !strings.HasSuffix(text, suffix) {
		t.Errorf("sent text = %q, want the title, the start of the text, the closed tags and the link", text)
	}
}

func TestConformance(t *testing.T) {
	notifytest.Conformance(t, notifytest.Suite{
		New: func(t *testing.T, serverURL string) notify.Receiver { return newNotifier(t, Config{}, serverURL) },
		Answer: func(t *testing.T, w http.ResponseWriter, r *http.Request, c notifytest.Case) {
			checkRequest(t, r)
			switch c {
			case notifytest.Success:
				answerJSON(w, http.StatusOK, okAnswer)
			case notifytest.RateLimited:
				answerJSON(w, http.StatusTooManyRequests, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`)
			case notifytest.ServerError:
				answerJSON(w, http.StatusInternalServerError, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`)
			case notifytest.BadRequest:
				answerJSON(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
			}
		},
		Secrets: []string{botToken},
		NewBrokenSecret: func(t *testing.T, serverURL string, err error) notify.Receiver {
			n, nerr := New(Config{ChatID: "-1001234567890", APIURL: serverURL}, func(context.Context) (string, error) { return "", err }, nil)
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
	}{{
		name: "rate limited", status: 429,
		body: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}`,
		want: &notify.SendError{Status: 429, RetryAfter: 35 * time.Second},
		text: "HTTP 429: Too Many Requests: retry after 35",
	}, {
		name: "revoked botToken", status: 401,
		body: `{"ok":false,"error_code":401,"description":"Unauthorized"}`,
		want: &notify.SendError{Status: 401, Permanent: true},
		text: "HTTP 401: Unauthorized",
	}, {
		name: "bot kicked", status: 403,
		body: `{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the supergroup chat"}`,
		want: &notify.SendError{Status: 403, Permanent: true},
		text: "HTTP 403: Forbidden: bot was kicked from the supergroup chat",
	}, {
		name: "group upgraded to a supergroup", status: 400,
		body: `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}`,
		want: &notify.SendError{Status: 400, Permanent: true},
		text: "HTTP 400: Bad Request: group chat was upgraded to a supergroup chat (set chat_id to -1009876543210)",
	}, {
		name: "bad gateway", status: 502,
		body: `{"ok":false,"error_code":502,"description":"Bad Gateway"}`,
		want: &notify.SendError{Status: 502},
		text: "HTTP 502: Bad Gateway",
	}, {
		name: "proxy page quoting the URL", status: 503, header: http.Header{"Retry-After": {"20"}},
		body: "<html>/bot" + botToken + "/sendMessage is unavailable</html>",
		want: &notify.SendError{Status: 503, RetryAfter: 20 * time.Second},
		text: "HTTP 503: Service Unavailable",
	}, {
		name: "description quoting the botToken", status: 404,
		body: `{"ok":false,"error_code":404,"description":"Not Found: bot` + botToken + `"}`,
		want: &notify.SendError{Status: 404, Permanent: true},
		text: "HTTP 404: Not Found: bot…",
	}, {
		name: "200 without ok", status: 200,
		body: `<html>captive portal</html>`,
		want: &notify.SendError{Status: 200},
		text: "HTTP 200: answer without ok",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := botAPI(t, func(w http.ResponseWriter) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				answerJSON(w, tt.status, tt.body)
			})
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
			notifytest.Leaks(t, []string{botToken}, notifytest.ErrorTexts(err)...)
		})
	}
}

func TestSendMalformedToken(t *testing.T) {
	const bad = "123:abc/../../getMe?x=#"
	var path, query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, query = r.URL.Path, r.URL.RawQuery
		answerJSON(w, http.StatusNotFound, `{"ok":false,"error_code":404,"description":"Not Found"}`)
	}))
	defer srv.Close()
	n, err := New(Config{ChatID: "1", APIURL: srv.URL}, notify.StaticSecret(bad), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(t.Context(), notify.Message{Title: "t"})
	var se *notify.SendError
	if !errors.As(err, &se) || !se.Permanent {
		t.Errorf("Send = %v, want a permanent *notify.SendError", err)
	}
	if got, want := []string{path, query}, []string{"/bot" + bad + "/sendMessage", ""}; !cmp.Equal(got, want) {
		t.Errorf("the token was not escaped: path and query %q, want %q", got, want)
	}
	notifytest.Leaks(t, []string{bad}, notifytest.ErrorTexts(err)...)
}

func TestChatKey(t *testing.T) {
	for _, id := range []string{"-1001234567890", "@ferry_deploys"} {
		n, err := New(Config{ChatID: id}, notify.StaticSecret(botToken), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n.ChatKey(), "telegram:"+id; got != want {
			t.Errorf("ChatKey() = %q, want %q", got, want)
		}
		notifytest.Leaks(t, []string{botToken}, n.ChatKey())
	}
}

func TestConfig(t *testing.T) {
	const doc = `
chat_id: -1001234567890
message_thread_id: 7
disable_notification: true
api_url: https://tg.internal.example
`
	var got Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Config{ChatID: "-1001234567890", MessageThreadID: 7, DisableNotification: true, APIURL: "https://tg.internal.example"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded Config (-want +got):\n%s", diff)
	}

	tests := []struct {
		name  string
		cfg   Config
		valid bool
	}{
		{"supergroup", Config{ChatID: "-1001234567890"}, true},
		{"user", Config{ChatID: "12345"}, true},
		{"channel username", Config{ChatID: "@ferry_deploys"}, true},
		{"self-hosted Bot API", Config{ChatID: "1", APIURL: "http://bot-api:8081/"}, true},
		{"no chat", Config{}, false},
		{"zero chat", Config{ChatID: "0"}, false},
		{"name without @", Config{ChatID: "ferry_deploys"}, false},
		{"negative topic", Config{ChatID: "1", MessageThreadID: -1}, false},
		{"api_url without scheme", Config{ChatID: "1", APIURL: "api.telegram.org"}, false},
		{"api_url with query", Config{ChatID: "1", APIURL: "https://api.telegram.org/?x=1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid %t", err, tt.valid)
			}
			if _, nerr := New(tt.cfg, notify.StaticSecret(botToken), nil); (nerr == nil) != tt.valid {
				t.Errorf("New = %v, want valid %t", nerr, tt.valid)
			}
		})
	}
}
