package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/webhook/webhooktest"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// chatFake is a chat service that is down (answering 503 with the request's URL echoed, as a
// misconfigured proxy might) until brought up, then accepts and counts messages by text.
type chatFake struct {
	mu       sync.Mutex
	up       bool
	accepted []string
	requests int
	okBody   string
}

func (f *chatFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if !f.up {
		http.Error(w, "<html>upstream "+r.URL.String()+" unavailable</html>", http.StatusServiceUnavailable)
		return
	}
	f.accepted = append(f.accepted, string(body))
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, f.okBody)
}

func (f *chatFake) setUp() {
	f.mu.Lock()
	f.up = true
	f.mu.Unlock()
}

func (f *chatFake) snapshot() (requests int, accepted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, append([]string(nil), f.accepted...)
}

// server is `ferry server` running as a process of its own.
type server struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startServer(t *testing.T, configPath string, out *syncBuffer) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "server", "--config", configPath)
	cmd.Env = append(os.Environ(), execMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) kill() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

func waitReady(t *testing.T, base string, s *server) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			t.Fatalf("ferry server exited:\n%s", s.out.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ferry server not ready in 60s:\n%s", s.out.String())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestNotificationSurvivesSIGKILL commits a release event with its notifications while every
// chat service is down, SIGKILLs ferry server after it has tried and failed, brings the
// services up and starts the server again: each channel gets the message exactly once. The
// bot token, webhook URLs and HMAC secret, planted as canaries, appear in no output: not the
// log (which saw the services' errors), the API, the metrics or the store's file.
func TestNotificationSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	canary := strings.ToLower(rand.Text())
	botToken := "123456:tok-" + canary
	hmacSecret := "hmac-" + canary

	sink := webhooktest.NewSink(t, hmacSecret)
	sink.SetDown(true)
	tg := &chatFake{okBody: `{"ok":true,"result":{"message_id":7}}`}
	tgSrv := httptest.NewServer(tg)
	defer tgSrv.Close()
	rc := &chatFake{okBody: `{"success":true}`}
	rcSrv := httptest.NewServer(rc)
	defer rcSrv.Close()
	rcURL := rcSrv.URL + "/hooks/6a0c-" + canary + "/rc-" + canary
	hookURL := sink.URL + "?token=url-" + canary

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	addr := freeAddr(t)
	storeURL := "sqlite://" + filepath.Join(dir, "ferry.db")
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
store: %s
log: {level: debug}
delivery: {enabled: false}
notify:
  panel_url: https://ferry.example.com
  channels:
  - name: releases
    telegram: {chat_id: "-1001234567890", api_url: %q, token_file: %s}
  - name: ops
    rocketchat: {url_file: %s}
  - name: audit
    webhook: {url_file: %s, hmac_secret_file: %s}
  subscriptions:
  - channels: [releases, ops, audit]
`, addr, dir, storeURL, tgSrv.URL, write("tg-token", botToken), write("rc-url", rcURL), write("hook-url", hookURL), write("hmac", hmacSecret))
	configPath := write("ferry.yaml", cfg)
	base := "http://" + addr

	out := &syncBuffer{}
	first := startServer(t, configPath, out)
	waitReady(t, base, first)

	// The event and its notifications are committed together, as delivery does.
	db, err := store.Open(t.Context(), storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rel := &release.Release{Application: "web", Environment: "production", Revision: strings.Repeat("ab", 20),
		CommitMessage: "Ship web v2", Author: "Alice <alice@example.com>", StartedAt: time.Now()}
	if err := db.CreateRelease(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	ev := notify.Event{Type: notify.EventDeploySucceeded, Time: time.Now(), Summary: "deployed", Application: "web",
		Namespace: "web", Environment: "production", Revision: rel.Revision, CommitMessage: rel.CommitMessage, Author: rel.Author}
	var notes []notify.Notification
	for _, c := range []string{"releases", "ops", "audit"} {
		notes = append(notes, notify.Notification{Channel: c, Event: ev})
	}
	if _, err := db.RecordEvent(t.Context(), &release.Event{ReleaseID: rel.ID, Type: release.EventDeploySucceeded,
		Time: time.Now(), Summary: "deployed", Key: "deploy.succeeded"}, notes); err != nil {
		t.Fatal(err)
	}

	// Wait for a failed attempt on every channel, then kill the server without warning.
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := db.FindNotifications(t.Context(), notify.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		tried := 0
		for _, n := range page.Notifications {
			if n.Attempts > 0 {
				tried++
			}
		}
		if tried == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications never attempted: %+v\n%s", page.Notifications, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.kill()

	tg.setUp()
	rc.setUp()
	sink.SetDown(false)
	second := startServer(t, configPath, out)
	waitReady(t, base, second)
	deadline = time.Now().Add(60 * time.Second)
	for {
		page, err := db.FindNotifications(t.Context(), notify.Filter{Status: notify.StatusSent})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Notifications) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 notifications sent after the restart\n%s", len(page.Notifications), out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give a duplicate, if there were one, time to arrive.
	time.Sleep(1500 * time.Millisecond)

	for name, f := range map[string]*chatFake{"telegram": tg, "rocketchat": rc} {
		requests, accepted := f.snapshot()
		if len(accepted) != 1 || requests < 2 {
			t.Errorf("%s accepted %d messages in %d requests; want exactly 1 after at least one refusal", name, len(accepted), requests)
		}
	}
	if got := sink.Types(); len(got) != 1 || got[0] != notify.EventDeploySucceeded || len(sink.Duplicates()) > 0 {
		t.Errorf("webhook got %v (duplicates %v), want one deploy.succeeded", got, sink.Duplicates())
	}
	_, tgMsgs := tg.snapshot()
	if len(tgMsgs) == 1 && !strings.Contains(tgMsgs[0], "web deployed to production") {
		t.Errorf("telegram message = %s", tgMsgs[0])
	}

	// ferry notify test goes through the outbox too, and reports the service's answer. The
	// notification API needs an API key.
	key := notifyKey(t, db)
	var cliOut, cliErr bytes.Buffer
	if code := Main(t.Context(), []string{"notify", "test", "ops", "--server", base, "--api-key", key}, &cliOut, &cliErr); code != 0 ||
		!strings.Contains(cliOut.String(), "sent a test message to ops") {
		t.Errorf("ferry notify test ops: exit %d, stdout %q, stderr %q", code, cliOut.String(), cliErr.String())
	}
	if _, accepted := rc.snapshot(); len(accepted) != 2 || !strings.Contains(accepted[1], "Test message from Ferry") {
		t.Errorf("Rocket.Chat got %d messages, want the test message second", len(accepted))
	}
	cliErr.Reset()
	if code := Main(t.Context(), []string{"notify", "test", "nope", "--server", base, "--api-key", key}, &cliOut, &cliErr); code != 1 ||
		!strings.Contains(cliErr.String(), "unknown channel") {
		t.Errorf("ferry notify test nope: exit %d, stderr %q; want an unknown channel error", code, cliErr.String())
	}
	cliOut.Reset()
	if code := Main(t.Context(), []string{"notify", "list", "--server", base, "--api-key", key}, &cliOut, &cliErr); code != 0 ||
		strings.Count(cliOut.String(), "sent") != 4 {
		t.Errorf("ferry notify list: exit %d, stdout:\n%s", code, cliOut.String())
	}

	// The leak check covers every output.
	var outputs bytes.Buffer
	outputs.WriteString(out.String())
	outputs.WriteString(cliOut.String() + cliErr.String())
	for _, path := range []string{"/api/v1/notifications", "/api/v1/notifications?status=sent", "/api/v1/notifications/channels", "/metrics"} {
		resp, err := keyGet(base+path, key)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
		outputs.Write(body)
	}
	second.kill()
	for _, f := range []string{"ferry.db", "ferry.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			outputs.Write(b)
		}
	}
	if !strings.Contains(out.String(), "notification will be retried") {
		t.Errorf("the log does not show the failed attempts, so the leak check saw no error path:\n%s", out.String())
	}
	if strings.Contains(outputs.String(), canary) {
		i := strings.Index(outputs.String(), canary)
		t.Errorf("a channel secret leaked into the outputs near: %q", outputs.String()[max(0, i-200):min(outputs.Len(), i+50)])
	}
}

// TestTwoServersShareOnePostgres runs two ferry server processes, as two replicas, on one
// PostgreSQL store with the same channels: every message is sent once, in order per channel.
func TestTwoServersShareOnePostgres(t *testing.T) {
	dir := t.TempDir()
	storeURL := storetest.PostgresURL(t)
	sink := webhooktest.NewSink(t, "hmac")
	hook := filepath.Join(dir, "hook-url")
	if err := os.WriteFile(hook, []byte(sink.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	var bases []string
	for i := range 2 {
		addr := freeAddr(t)
		cfg := fmt.Sprintf(`listen: %s
data_dir: %s
store: %q
delivery: {enabled: false}
notify:
  channels:
  - {name: a, webhook: {url_file: %s, hmac_secret: hmac}}
  - {name: b, webhook: {url_file: %s, hmac_secret: hmac}}
  - {name: c, webhook: {url_file: %s, hmac_secret: hmac}}
`, addr, filepath.Join(dir, fmt.Sprint(i)), storeURL, hook, hook, hook)
		path := filepath.Join(dir, fmt.Sprintf("ferry-%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, path, &syncBuffer{})
		waitReady(t, "http://"+addr, s)
		bases = append(bases, "http://"+addr)
	}
	db, err := store.Open(t.Context(), storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const each = 30
	for i := range each {
		var notes []notify.Notification
		for _, c := range []string{"a", "b", "c"} {
			notes = append(notes, notify.Notification{Channel: c, Key: fmt.Sprintf("m%d", i),
				Event: notify.Event{Type: notify.EventDeploySucceeded, Application: fmt.Sprintf("app-%02d", i), Time: time.Now()}})
		}
		if _, err := db.EnqueueNotifications(t.Context(), notes); err != nil {
			t.Fatal(err)
		}
	}
	sink.Wait(t, 3*each, time.Minute)
	time.Sleep(time.Second) // room for a duplicate to arrive
	got := sink.Payloads()
	if len(got) != 3*each || len(sink.Duplicates()) > 0 {
		t.Fatalf("sink got %d messages (duplicates %v), want %d, each once", len(got), sink.Duplicates(), 3*each)
	}
	byChannel := map[string][]string{}
	for _, p := range got {
		byChannel[p.Channel] = append(byChannel[p.Channel], p.Event.Application)
	}
	for c, apps := range byChannel {
		if !slices.IsSorted(apps) {
			t.Errorf("channel %s delivered out of order: %v", c, apps)
		}
	}
	// Both replicas served the API from the same outbox.
	key := notifyKey(t, db)
	for _, base := range bases {
		resp, err := keyGet(base+"/api/v1/notifications?status=sent&limit=500", key)
		if err != nil {
			t.Fatal(err)
		}
		var page notify.Page
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || len(page.Notifications) != 3*each {
			t.Errorf("%s lists %d sent notifications (%v), want %d", base, len(page.Notifications), err, 3*each)
		}
	}
}

// notifyKey creates a write-scope API key in db and returns its secret.
func notifyKey(t *testing.T, db *store.DB) string {
	t.Helper()
	secret, hash, prefix := apikey.Generate()
	if _, err := db.CreateAPIKey(t.Context(), "notify-test", []apikey.Scope{apikey.ScopeWrite}, hash, prefix, nil); err != nil {
		t.Fatal(err)
	}
	return secret
}

// keyGet is http.Get with an API key.
func keyGet(url, key string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Key "+key)
	return http.DefaultClient.Do(req)
}
