package channel_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/channel"
	"github.com/ferrycd/ferry/internal/notify/rocketchat"
	"github.com/ferrycd/ferry/internal/notify/slack"
	"github.com/ferrycd/ferry/internal/notify/telegram"
	"github.com/ferrycd/ferry/internal/notify/webhook"
)

const chatID = "-1001234567890"

func TestConfigValidate(t *testing.T) {
	tg := func(mod func(*channel.Telegram)) *channel.Telegram {
		c := &channel.Telegram{Config: telegram.Config{ChatID: chatID}, TokenFile: "/run/secrets/token"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	ref := &channel.SecretRef{Name: "chat", Key: "url"}
	tests := []struct {
		name    string
		cfg     channel.Config
		wantErr bool
		// wantIs, when set, is an error the result must wrap.
		wantIs error
	}{
		{name: "telegram with token_file", cfg: channel.Config{Name: "releases", Telegram: tg(nil)}},
		{name: "telegram with token", cfg: channel.Config{Name: "r", Telegram: tg(func(c *channel.Telegram) { c.TokenFile, c.Token = "", "1:x" })}},
		{name: "telegram with token_ref", cfg: channel.Config{Name: "r", Telegram: tg(func(c *channel.Telegram) { c.TokenFile, c.TokenRef = "", ref })}},
		{name: "rocketchat with url", cfg: channel.Config{Name: "ops", RocketChat: &channel.RocketChat{Hook: channel.Hook{URL: "https://chat.example.com/hooks/x"}}}},
		{name: "slack with url_ref", cfg: channel.Config{Name: "team-1", Slack: &channel.Slack{Hook: channel.Hook{URLRef: ref}}}},
		{name: "webhook with url_file and hmac_secret_ref", cfg: channel.Config{Name: "audit", Webhook: &channel.Webhook{
			Hook: channel.Hook{URLFile: "/run/secrets/url"}, HMACSecretRef: &channel.SecretRef{Namespace: "ns", Name: "hmac", Key: "k"},
		}}},
		{name: "webhook without hmac secret", cfg: channel.Config{Name: "audit", Webhook: &channel.Webhook{Hook: channel.Hook{URL: "https://example.com/hook"}}}},
		{name: "valid template override", cfg: channel.Config{Name: "releases", Telegram: tg(nil),
			Templates: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{esc .Application}} is out"}}}},

		{name: "no receiver", cfg: channel.Config{Name: "releases"}, wantErr: true},
		{name: "two receivers", cfg: channel.Config{Name: "releases", Telegram: tg(nil),
			Slack: &channel.Slack{Hook: channel.Hook{URL: "https://hooks.example.com/x"}}}, wantErr: true},
		{name: "empty name", cfg: channel.Config{Telegram: tg(nil)}, wantErr: true},
		{name: "name in capitals", cfg: channel.Config{Name: "Releases", Telegram: tg(nil)}, wantErr: true},
		{name: "name with underscore", cfg: channel.Config{Name: "re_leases", Telegram: tg(nil)}, wantErr: true},
		{name: "name ending in a dash", cfg: channel.Config{Name: "releases-", Telegram: tg(nil)}, wantErr: true},
		{name: "name of 63 characters", cfg: channel.Config{Name: strings.Repeat("a", 63), Telegram: tg(nil)}},
		{name: "name of 64 characters", cfg: channel.Config{Name: strings.Repeat("a", 64), Telegram: tg(nil)}, wantErr: true},
		{name: "telegram without token source", cfg: channel.Config{Name: "releases", Telegram: tg(func(c *channel.Telegram) { c.TokenFile = "" })}, wantErr: true},
		{name: "telegram token and token_file", cfg: channel.Config{Name: "releases", Telegram: tg(func(c *channel.Telegram) { c.Token = "1:x" })}, wantErr: true},
		{name: "telegram token_file and token_ref", cfg: channel.Config{Name: "releases", Telegram: tg(func(c *channel.Telegram) { c.TokenRef = ref })}, wantErr: true},
		{name: "telegram token_ref without key", cfg: channel.Config{Name: "releases",
			Telegram: tg(func(c *channel.Telegram) { c.TokenFile, c.TokenRef = "", &channel.SecretRef{Name: "bot"} })}, wantErr: true},
		{name: "telegram token_ref without name", cfg: channel.Config{Name: "releases",
			Telegram: tg(func(c *channel.Telegram) { c.TokenFile, c.TokenRef = "", &channel.SecretRef{Key: "token"} })}, wantErr: true},
		{name: "telegram without chat_id", cfg: channel.Config{Name: "releases", Telegram: tg(func(c *channel.Telegram) { c.ChatID = "" })}, wantErr: true},
		{name: "rocketchat without url", cfg: channel.Config{Name: "ops", RocketChat: &channel.RocketChat{}}, wantErr: true},
		{name: "rocketchat url and url_file", cfg: channel.Config{Name: "ops",
			RocketChat: &channel.RocketChat{Hook: channel.Hook{URL: "https://chat.example.com/hooks/x", URLFile: "/y"}}}, wantErr: true},
		{name: "rocketchat bad channel", cfg: channel.Config{Name: "ops",
			RocketChat: &channel.RocketChat{Config: rocketchat.Config{Channel: "ops"}, Hook: channel.Hook{URLFile: "/y"}}}, wantErr: true},
		{name: "slack url_ref without key", cfg: channel.Config{Name: "team",
			Slack: &channel.Slack{Hook: channel.Hook{URLRef: &channel.SecretRef{Name: "chat"}}}}, wantErr: true},
		{name: "webhook without url", cfg: channel.Config{Name: "audit", Webhook: &channel.Webhook{HMACSecret: "s"}}, wantErr: true},
		{name: "webhook hmac_secret and hmac_secret_file", cfg: channel.Config{Name: "audit",
			Webhook: &channel.Webhook{Hook: channel.Hook{URL: "https://example.com/hook"}, HMACSecret: "s", HMACSecretFile: "/z"}}, wantErr: true},
		{name: "webhook hmac_secret_ref without key", cfg: channel.Config{Name: "audit",
			Webhook: &channel.Webhook{Hook: channel.Hook{URL: "https://example.com/hook"}, HMACSecretRef: &channel.SecretRef{Name: "hmac"}}}, wantErr: true},
		{name: "webhook reserved header", cfg: channel.Config{Name: "audit",
			Webhook: &channel.Webhook{Config: webhook.Config{Headers: map[string]string{"Content-Type": "text/plain"}}, Hook: channel.Hook{URL: "https://example.com/hook"}}}, wantErr: true},
		{name: "template with bad syntax", cfg: channel.Config{Name: "releases", Telegram: tg(nil),
			Templates: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{.Application"}}}, wantErr: true},
		{name: "template with a missing field", cfg: channel.Config{Name: "releases", Telegram: tg(nil),
			Templates: map[string]notify.Template{notify.EventDeployFailed: {Text: "{{.Nope}}"}}}, wantErr: true},
		{name: "template key not an event type", cfg: channel.Config{Name: "releases", Telegram: tg(nil),
			Templates: map[string]notify.Template{"Deploy Succeeded": {Title: "x"}}}, wantErr: true, wantIs: notify.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error: %t", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Validate() = %v, want it to wrap %v", err, tt.wantIs)
			}
		})
	}
}

// telegramAPI is a fake Bot API: it records the path of every request and answers as the Bot
// API answers a sendMessage that succeeded.
func telegramAPI(t *testing.T) (srv *httptest.Server, paths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"result":{}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// hmacKey is the generic webhook's HMAC secret in these tests.
const hmacKey = "hmac-key"

// hook is a fake incoming webhook that records the path of every request and answers 200
// with Rocket.Chat's success body; the Slack and generic webhook receivers take any 2xx. A
// request with a webhook signature is recorded with "signed" when hmacKey made it, "bad
// signature" when not.
func hook(t *testing.T) (srv *httptest.Server, paths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := r.Method + " " + r.URL.Path
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		switch sig := r.Header.Get(webhook.HeaderSignature); {
		case sig == "":
		case sig == webhook.Sign([]byte(hmacKey), body):
			entry += " signed"
		default:
			entry += " bad signature"
		}
		mu.Lock()
		got = append(got, entry)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func buildOne(t *testing.T, cfg channel.Config, opts channel.Options) *notify.Channel {
	t.Helper()
	chs, err := channel.Build([]channel.Config{cfg}, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(chs) != 1 {
		t.Fatalf("Build returned %d channels, want 1", len(chs))
	}
	return chs[0]
}

func send(t *testing.T, ch *notify.Channel) {
	t.Helper()
	m, err := ch.Templates.Render(notify.SampleEvent(notify.EventDeploySucceeded))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if err := ch.Receiver.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBuildTokenFileIsReadAtSend(t *testing.T) {
	srv, paths := telegramAPI(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "111:first-token\n")
	ch := buildOne(t, channel.Config{
		Name:     "releases",
		Telegram: &channel.Telegram{Config: telegram.Config{ChatID: chatID, APIURL: srv.URL}, TokenFile: tokenFile},
	}, channel.Options{})

	got := []string{ch.Name, ch.Type, ch.ChatKey, ch.MinInterval.String()}
	want := []string{"releases", "telegram", "telegram:" + chatID, telegram.MinInterval.String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("channel name, type, chat key, min interval (-want +got):\n%s", diff)
	}

	send(t, ch)
	writeFile(t, tokenFile, "222:rotated-token")
	send(t, ch)
	wantPaths := []string{"POST /bot111:first-token/sendMessage", "POST /bot222:rotated-token/sendMessage"}
	if diff := cmp.Diff(wantPaths, paths()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// A token file that became empty or was removed fails the send, and names no token.
	for _, breakIt := range []func(){
		func() { writeFile(t, tokenFile, " \n") },
		func() {
			if err := os.Remove(tokenFile); err != nil {
				t.Fatal(err)
			}
		},
	} {
		breakIt()
		err := ch.Receiver.Send(t.Context(), notify.Message{Title: "t", Text: "x"})
		var se *notify.SendError
		if !errors.As(err, &se) {
			t.Fatalf("Send with a broken token file = %v, want a *notify.SendError", err)
		}
		if strings.Contains(err.Error(), "rotated-token") {
			t.Errorf("error leaks the token: %v", err)
		}
	}
	if n := len(paths()); n != 2 {
		t.Errorf("%d requests, want none after the token file broke", n-2)
	}
}

func TestBuildTokenFileMissing(t *testing.T) {
	_, err := channel.Build([]channel.Config{{
		Name:     "releases",
		Telegram: &channel.Telegram{Config: telegram.Config{ChatID: chatID}, TokenFile: filepath.Join(t.TempDir(), "nope")},
	}}, channel.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Build = %v, want an error wrapping fs.ErrNotExist", err)
	}
}

// secretReader is a fake Kubernetes Secret reader: each read returns the next of values for the
// key slack-url and records what it was asked for.
type secretReader struct {
	mu     sync.Mutex
	values []string
	reads  []string // namespace/name
	err    error
}

func (s *secretReader) read(_ context.Context, namespace, name string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, namespace+"/"+name)
	if s.err != nil {
		return nil, s.err
	}
	v := s.values[min(len(s.reads), len(s.values))-1]
	return map[string][]byte{"slack-url": []byte(v), "other": []byte("x")}, nil
}

func (s *secretReader) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reads...)
}

func TestBuildURLRef(t *testing.T) {
	srv, _ := hook(t)
	tests := []struct {
		name      string
		ref       channel.SecretRef
		ttl       time.Duration
		wantReads []string
		wantPaths []string
	}{
		{
			name:      "cached for the TTL",
			ref:       channel.SecretRef{Name: "chat", Key: "slack-url"},
			ttl:       time.Hour,
			wantReads: []string{"ferry/chat"},
			wantPaths: []string{"POST /first", "POST /first", "POST /first"},
		},
		{
			name:      "zero TTL caches too",
			ref:       channel.SecretRef{Name: "chat", Key: "slack-url"},
			wantReads: []string{"ferry/chat"},
			wantPaths: []string{"POST /first", "POST /first", "POST /first"},
		},
		{
			name:      "re-read after the TTL",
			ref:       channel.SecretRef{Namespace: "chat-ns", Name: "chat", Key: "slack-url"},
			ttl:       time.Nanosecond,
			wantReads: []string{"chat-ns/chat", "chat-ns/chat", "chat-ns/chat"},
			wantPaths: []string{"POST /first", "POST /second", "POST /third"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, paths := hook(t)
			reader := &secretReader{values: []string{srv.URL + "/first", srv.URL + "/second", srv.URL + "/third"}}
			ref := tt.ref
			ch := buildOne(t, channel.Config{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URLRef: &ref}}},
				channel.Options{Secrets: reader.read, Namespace: "ferry", SecretTTL: tt.ttl})
			if diff := cmp.Diff([]string(nil), reader.got()); diff != "" {
				t.Errorf("reads before the first send (-want +got):\n%s", diff)
			}
			for range 3 {
				send(t, ch)
			}
			if diff := cmp.Diff(tt.wantReads, reader.got()); diff != "" {
				t.Errorf("Secret reads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPaths, paths()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("concurrent sends", func(t *testing.T) {
		reader := &secretReader{values: []string{srv.URL + "/hook"}}
		ch := buildOne(t, channel.Config{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URLRef: &channel.SecretRef{Name: "chat", Key: "slack-url"}}}},
			channel.Options{Secrets: reader.read, Namespace: "ferry", SecretTTL: time.Hour})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := ch.Receiver.Send(t.Context(), notify.Message{Title: "t", Text: "x"}); err != nil {
					t.Errorf("Send: %v", err)
				}
			})
		}
		wg.Wait()
		if n := len(reader.got()); n != 1 {
			t.Errorf("%d Secret reads, want 1", n)
		}
	})

	t.Run("read error", func(t *testing.T) {
		errForbidden := errors.New("secrets is forbidden")
		reader := &secretReader{err: errForbidden}
		ch := buildOne(t, channel.Config{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URLRef: &channel.SecretRef{Name: "chat", Key: "slack-url"}}}},
			channel.Options{Secrets: reader.read, Namespace: "ferry"})
		err := ch.Receiver.Send(t.Context(), notify.Message{Title: "t", Text: "x"})
		var se *notify.SendError
		if !errors.As(err, &se) || !errors.Is(err, errForbidden) {
			t.Errorf("Send = %v, want a *notify.SendError wrapping %v", err, errForbidden)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		srv, paths := hook(t)
		reader := &secretReader{values: []string{srv.URL + "/hook"}}
		ch := buildOne(t, channel.Config{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URLRef: &channel.SecretRef{Name: "chat", Key: "nope"}}}},
			channel.Options{Secrets: reader.read, Namespace: "ferry"})
		err := ch.Receiver.Send(t.Context(), notify.Message{Title: "t", Text: "x"})
		var se *notify.SendError
		if !errors.As(err, &se) {
			t.Errorf("Send = %v, want a *notify.SendError", err)
		}
		if n := len(paths()); n != 0 {
			t.Errorf("%d requests, want none", n)
		}
	})
}

func TestBuildRejects(t *testing.T) {
	url := channel.Hook{URL: "https://hooks.example.com/x"}
	tests := []struct {
		name string
		cfgs []channel.Config
		opts channel.Options
	}{
		{
			name: "url_ref without a Secret reader",
			cfgs: []channel.Config{{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URLRef: &channel.SecretRef{Name: "chat", Key: "slack-url"}}}}},
		},
		{
			name: "token_ref without a Secret reader",
			cfgs: []channel.Config{{Name: "releases", Telegram: &channel.Telegram{Config: telegram.Config{ChatID: chatID},
				TokenRef: &channel.SecretRef{Name: "bot", Key: "token"}}}},
		},
		{
			name: "duplicate names",
			cfgs: []channel.Config{
				{Name: "team", Slack: &channel.Slack{Hook: url}},
				{Name: "ops", RocketChat: &channel.RocketChat{Hook: url}},
				{Name: "team", Webhook: &channel.Webhook{Hook: url}},
			},
		},
		{
			name: "invalid channel",
			cfgs: []channel.Config{{Name: "team", Slack: &channel.Slack{Hook: url}}, {Name: "ops"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chs, err := channel.Build(tt.cfgs, tt.opts)
			if err == nil {
				t.Fatalf("Build = %d channels, want an error", len(chs))
			}
			if chs != nil {
				t.Errorf("Build returned %d channels with its error", len(chs))
			}
		})
	}
}

func TestBuildEveryType(t *testing.T) {
	srv, paths := hook(t)
	api, apiPaths := telegramAPI(t)
	dir := t.TempDir()
	urlFile, hmacFile := filepath.Join(dir, "url"), filepath.Join(dir, "hmac")
	writeFile(t, urlFile, srv.URL+"/rocketchat\n")
	writeFile(t, hmacFile, hmacKey+"\n")
	chs, err := channel.Build([]channel.Config{
		{Name: "releases", Telegram: &channel.Telegram{Config: telegram.Config{ChatID: chatID, APIURL: api.URL}, Token: "1:tok"}},
		{Name: "ops", RocketChat: &channel.RocketChat{Hook: channel.Hook{URLFile: urlFile}}},
		{Name: "team", Slack: &channel.Slack{Hook: channel.Hook{URL: srv.URL + "/slack"}}},
		{Name: "audit", Webhook: &channel.Webhook{Hook: channel.Hook{URL: srv.URL + "/webhook"}, HMACSecretFile: hmacFile}},
	}, channel.Options{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var got [][]string
	for _, ch := range chs {
		got = append(got, []string{ch.Name, ch.Type})
		send(t, ch)
	}
	want := [][]string{{"releases", "telegram"}, {"ops", "rocketchat"}, {"team", "slack"}, {"audit", "webhook"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("channels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"POST /bot1:tok/sendMessage"}, apiPaths()); diff != "" {
		t.Errorf("Bot API requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"POST /rocketchat", "POST /slack", "POST /webhook signed"}, paths()); diff != "" {
		t.Errorf("webhook requests (-want +got):\n%s", diff)
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
- name: releases
  telegram: {chat_id: "-1001234567890", message_thread_id: 7, token_file: /x, disable_notification: true, api_url: "https://tg.example.com"}
- name: ops
  rocketchat: {url_file: /y, channel: "#ops", alias: Ferry, emoji: ":rocket:"}
- name: team
  slack: {url_ref: {name: chat, key: slack-url}, channel: "#team", username: ferry, icon_emoji: ":ship:"}
- name: audit
  webhook:
    url: "https://example.com/hook"
    hmac_secret_file: /z
    headers: {X-Routing-Key: deploys}
  templates:
    deploy.succeeded: {title: "{{.Application}} is out"}
    default: {text: "{{esc .Summary}}"}
- name: bot
  telegram: {chat_id: "@ferry_bot_channel", token_ref: {namespace: bots, name: telegram, key: token}}
- name: mm
  slack: {url: "https://mm.example.com/hooks/x", icon_url: "https://example.com/i.png"}
- name: signed
  webhook: {url_ref: {name: hooks, key: url}, hmac_secret: s3cret, hmac_secret_ref: null}
`
	want := []channel.Config{
		{Name: "releases", Telegram: &channel.Telegram{
			Config:    telegram.Config{ChatID: "-1001234567890", MessageThreadID: 7, DisableNotification: true, APIURL: "https://tg.example.com"},
			TokenFile: "/x",
		}},
		{Name: "ops", RocketChat: &channel.RocketChat{
			Config: rocketchat.Config{Channel: "#ops", Alias: "Ferry", Emoji: ":rocket:"},
			Hook:   channel.Hook{URLFile: "/y"},
		}},
		{Name: "team", Slack: &channel.Slack{
			Config: slack.Config{Channel: "#team", Username: "ferry", IconEmoji: ":ship:"},
			Hook:   channel.Hook{URLRef: &channel.SecretRef{Name: "chat", Key: "slack-url"}},
		}},
		{
			Name: "audit",
			Webhook: &channel.Webhook{
				Config:         webhook.Config{Headers: map[string]string{"X-Routing-Key": "deploys"}},
				Hook:           channel.Hook{URL: "https://example.com/hook"},
				HMACSecretFile: "/z",
			},
			Templates: map[string]notify.Template{
				notify.EventDeploySucceeded: {Title: "{{.Application}} is out"},
				"default":                   {Text: "{{esc .Summary}}"},
			},
		},
		{Name: "bot", Telegram: &channel.Telegram{
			Config:   telegram.Config{ChatID: "@ferry_bot_channel"},
			TokenRef: &channel.SecretRef{Namespace: "bots", Name: "telegram", Key: "token"},
		}},
		{Name: "mm", Slack: &channel.Slack{
			Config: slack.Config{IconURL: "https://example.com/i.png"},
			Hook:   channel.Hook{URL: "https://mm.example.com/hooks/x"},
		}},
		{Name: "signed", Webhook: &channel.Webhook{
			Hook:       channel.Hook{URLRef: &channel.SecretRef{Name: "hooks", Key: "url"}},
			HMACSecret: "s3cret",
		}},
	}
	got := decode(t, doc)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	var formats []notify.Format
	for _, c := range got {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%s): %v", c.Name, err)
		}
		formats = append(formats, c.Format())
	}
	wantFormats := []notify.Format{notify.FormatHTML, notify.FormatMarkdown, notify.FormatSlack, notify.FormatPlain,
		notify.FormatHTML, notify.FormatSlack, notify.FormatPlain}
	if diff := cmp.Diff(wantFormats, formats); diff != "" {
		t.Errorf("formats (-want +got):\n%s", diff)
	}
}

func TestConfigYAMLUnknownField(t *testing.T) {
	for _, doc := range []string{
		"- name: releases\n  telegram: {chat_id: \"1\", tokenfile: /x}\n",
		"- name: ops\n  rocketchat: {url: \"https://x\", icon_emoji: \":x:\"}\n",
		"- name: team\n  slack: {url_ref: {name: chat, key: k, optional: true}}\n",
		"- name: audit\n  webhook: {url: \"https://x\", hmac: s}\n",
		"- name: audit\n  webhook: {url: \"https://x\"}\n  templates: {deploy.failed: {body: x}}\n",
		"- name: audit\n  discord: {url: \"https://x\"}\n",
	} {
		var got []channel.Config
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&got); err == nil {
			t.Errorf("decoding %q succeeded, want an unknown field error", doc)
		}
	}
}

func decode(t *testing.T, doc string) []channel.Config {
	t.Helper()
	var got []channel.Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return got
}
