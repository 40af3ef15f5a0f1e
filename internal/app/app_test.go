package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/secrets/inject"
	"github.com/ferrycd/ferry/internal/testenv"
)

// plane is the real control plane this package's tests share.
var plane *testenv.ControlPlane

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &plane)) }

// start builds and runs an App on a free port and returns its base URL and a function that
// stops it and returns Run's error.
func start(t *testing.T, mutate func(*config.Config)) (string, func() error) {
	t.Helper()
	_, url, stop := launchApp(t, mutate)
	return url, stop
}

// launchApp is start that also returns the App, for tests that reach into its store.
func launchApp(t testing.TB, mutate func(*config.Config)) (*App, string, func() error) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Delivery.Kubeconfig = plane.Kubeconfig
	mutate(&cfg)
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return a, "http://" + a.Addr(), stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestReadyWithKubernetes(t *testing.T) {
	url, stop := start(t, func(*config.Config) {})

	code, body := get(t, url+"/readyz")
	if code != http.StatusOK || !strings.Contains(body, "[+]store ok") || !strings.Contains(body, "[+]kubernetes ok") {
		t.Errorf("GET /readyz = %d %q, want 200 with the store and kubernetes checks passing", code, body)
	}
	// The controller starts beside the HTTP server; its metrics appear once it runs.
	var missing []string
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		code, body = get(t, url+"/metrics")
		missing = missing[:0]
		for _, want := range []string{"ferry_build_info{", "go_goroutines ", "process_resident_memory_bytes ",
			"controller_runtime_max_concurrent_reconciles{", "ferry_app_reconcile_duration_seconds_count "} {
			if !strings.Contains(body, want) {
				missing = append(missing, want)
			}
		}
		if code == http.StatusOK && len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET /metrics = %d, missing %q", code, missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want a clean stop", err)
	}
	if resp, err := http.Get(url + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Error("server still answers after Run returned")
	}
}

// TestNotReadyWhenAPIServerUnreachable points the client at a port nobody listens on: the
// process starts and is alive, but not ready.
func TestNotReadyWhenAPIServerUnreachable(t *testing.T) {
	kc, err := clientcmd.LoadFromFile(plane.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	for _, c := range kc.Clusters {
		c.Server = "https://" + dead
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}

	url, _ := start(t, func(c *config.Config) { c.Delivery.Kubeconfig = path })
	if code, body := get(t, url+"/readyz"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "[-]kubernetes failed") || !strings.Contains(body, "[+]store ok") {
		t.Errorf("GET /readyz = %d %q, want 503 naming kubernetes", code, body)
	}
	if code, _ := get(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", code)
	}
}

func TestDeliveryOffNeedsNoKubernetes(t *testing.T) {
	url, _ := start(t, func(c *config.Config) {
		c.Delivery.Enabled = false
		c.Delivery.Kubeconfig = "/nonexistent"
	})
	if code, body := get(t, url+"/readyz"); code != http.StatusOK || strings.Contains(body, "kubernetes") {
		t.Errorf("GET /readyz = %d %q, want 200 without a kubernetes check", code, body)
	}
}

// TestNewFailsCleanly makes New fail after the store is open (the port is taken) and checks the
// error names the cause and the store was closed again, so a retry can open it.
func TestNewFailsCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()

	cfg := config.Default()
	cfg.Listen = taken.Addr().String()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Delivery.Enabled = false
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	_, err = New(t.Context(), Options{Config: cfg})
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("New = %v, want a listen error", err)
	}

	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	a, err := New(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatalf("New after a failed New = %v", err)
	}
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPushWebhookDeploys is the whole path a push takes through ferry server: a signed GitHub
// push event on /api/v1/webhooks/git makes an Application whose poll interval is an hour
// deploy the new commit.
func TestPushWebhookDeploys(t *testing.T) {
	const secret = "webhook-secret"
	// The repository's name is this run's own: an Application an earlier run (go test
	// -count=2) left on the shared plane must not match this run's push, even when this
	// run's git server got the port the earlier one had.
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	repo := "deploy-" + suffix
	git := testenv.NewGitServer(t, testenv.GitServerOptions{})
	git.CreateRepo(t, repo)
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  v: " + v + "\n"
	}
	first := git.Commit(t, repo, "main", map[string]string{"app/cm.yaml": cm("one")}, "one")

	url, _ := start(t, func(c *config.Config) { c.Webhooks.GitHubSecret = secret })

	scheme, err := delivery.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(plane.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "webhook-" + suffix
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// The server installs the CRD as it starts; wait until Applications can be created.
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: git.URL(repo), Revision: "main", Path: "app"},
			Destination: v1alpha1.Destination{Namespace: ns},
			SyncPolicy:  v1alpha1.SyncPolicy{Automated: true, Interval: &metav1.Duration{Duration: time.Hour}},
		},
	}
	testenv.Eventually(t, "the Application is created", func() bool { return c.Create(t.Context(), app.DeepCopy()) == nil })
	revision := func() string {
		var got v1alpha1.Application
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(app), &got); err != nil {
			t.Fatal(err)
		}
		return got.Status.Sync.Revision
	}
	testenv.Eventually(t, "the first commit is synced", func() bool { return revision() == first })

	second := git.Commit(t, repo, "main", map[string]string{"app/cm.yaml": cm("two")}, "two")
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"deleted":false,"repository":{"clone_url":%q}}`, second, git.URL(repo))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/api/v1/webhooks/git", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(reply), `"applications":1`) {
		t.Fatalf("webhook = %d %s, want 202 naming one application", resp.StatusCode, reply)
	}
	testenv.Eventually(t, "the pushed commit is synced", func() bool { return revision() == second })
	t.Logf("push -> applied in %v", time.Since(start))

	// A forged signature is refused and triggers nothing.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/api/v1/webhooks/git", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged webhook = %d, want 401", resp.StatusCode)
	}
}

// TestInjectionWebhookServes runs ferry server with inject on and registers its webhook by
// URL: a Pod whose env references Vault comes back wrapped by ferry exec, one without a
// command is refused, and /readyz reports the webhook certificate.
func TestInjectionWebhookServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	injectAddr := ln.Addr().String()
	_ = ln.Close()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ferryNS, appNS := "ferry-"+suffix, "inject-"+suffix
	c, err := client.New(plane.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{ferryNS, appNS} {
		if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// Only appNS is covered, so no other test's Pods depend on this server.
	whc := inject.WebhookConfigurationURL("ferry-secrets-"+suffix, "https://"+injectAddr+inject.DefaultPath, ferryNS)
	whc.Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": appNS}}
	if err := c.Create(t.Context(), whc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), whc) })

	url, _ := start(t, func(cfg *config.Config) {
		cfg.Delivery.Enabled = false
		cfg.Inject = config.Inject{Enabled: true, Listen: injectAddr, Image: "registry.example/ferry:test",
			Namespace: ferryNS, ServiceName: "ferry-webhook", WebhookName: whc.Name}
		cfg.Vault.Address, cfg.Vault.Role = "https://vault.example:8200", "shop"
	})
	testenv.Eventually(t, "/readyz passes the inject check", func() bool {
		code, body := get(t, url+"/readyz")
		return code == http.StatusOK && strings.Contains(body, "[+]inject ok")
	})

	pod := func(name string, command []string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/shop:1", Command: command,
				Env: []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "vault:secret/shop/db#password"}},
			}}},
		}
	}
	// The caBundle is patched in by the server; until then the API server cannot call it.
	wrapped := pod("shop", []string{"/shop", "--port=80"})
	testenv.Eventually(t, "a Pod is admitted through the webhook", func() bool {
		return c.Create(t.Context(), wrapped.DeepCopy()) == nil
	})
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(wrapped), wrapped); err != nil {
		t.Fatal(err)
	}
	got := wrapped.Spec.Containers[0]
	if want := []string{"/ferry/bin/ferry", "exec", "--", "/shop", "--port=80"}; strings.Join(got.Command, " ") != strings.Join(want, " ") {
		t.Errorf("command = %q, want %q", got.Command, want)
	}
	if len(wrapped.Spec.InitContainers) == 0 || wrapped.Spec.InitContainers[0].Image != "registry.example/ferry:test" {
		t.Errorf("init containers = %+v, want ferry's first", wrapped.Spec.InitContainers)
	}
	env := map[string]string{}
	for _, e := range got.Env {
		env[e.Name] = e.Value
	}
	if env["DB_PASSWORD"] != "vault:secret/shop/db#password" || env["VAULT_ADDR"] != "https://vault.example:8200" || env["FERRY_VAULT_ROLE"] != "shop" {
		t.Errorf("env = %v, want the reference kept and Vault's address and role added", env)
	}

	err = c.Create(t.Context(), pod("no-command", nil))
	if err == nil || !strings.Contains(err.Error(), "explicit command") {
		t.Errorf("a Pod without command: %v, want a denial that asks for an explicit command", err)
	}
}
