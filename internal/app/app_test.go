package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/testenv"
)

// plane is the real control plane this package's tests share.
var plane *testenv.ControlPlane

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &plane)) }

// start builds and runs an App on a free port and returns its base URL and a function that
// stops it and returns Run's error.
func start(t *testing.T, mutate func(*config.Config)) (string, func() error) {
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
	return "http://" + a.Addr(), stop
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
