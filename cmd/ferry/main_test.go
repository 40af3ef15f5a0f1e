package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the ferry binary: run with FERRY_TEST_MAIN=1 it is
// ferry, so these tests exercise the real main, signals and exit codes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("FERRY_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func ferry(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FERRY_TEST_MAIN=1", "FERRY_DATA_DIR="+t.TempDir())
	return cmd
}

// TestServerStopsOnSIGTERM starts `ferry server`, waits until it is ready, sends SIGTERM and
// expects a clean exit. The deadline only stops a hung test; the duration is logged, not asserted.
func TestServerStopsOnSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := ferry(ctx, t, "server", "--listen", "127.0.0.1:0", "--delivery=false", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addr := ""
	var logged []string
	for addr == "" && lines.Scan() {
		logged = append(logged, lines.Text())
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec.Msg == "ferry serving" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("server never logged its address; log:\n%s", strings.Join(logged, "\n"))
	}
	rest := make(chan string)
	go func() {
		b, _ := io.ReadAll(stderr)
		rest <- string(b)
	}()

	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s, want 200", resp.StatusCode, body)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tail := <-rest
	err = cmd.Wait()
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if err != nil {
		t.Fatalf("ferry server exited with %v after SIGTERM; log:\n%s", err, tail)
	}
	if !strings.Contains(tail, `"msg":"ferry stopping"`) {
		t.Errorf("log does not record the shutdown:\n%s", tail)
	}
}

// TestBadInputExitsWithOneLine runs ferry with broken configuration: each run must exit 1 with
// exactly one line on stderr that names the problem, no stack trace, and no password.
func TestBadInputExitsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "malformed config",
			args: []string{"server", "--config", write("bad.yaml", "listen: [127.0.0.1\n")},
			want: []string{"bad.yaml"},
		},
		{
			name: "unknown key",
			args: []string{"server", "--config", write("unknown.yaml", "lissen: 127.0.0.1:8080\n")},
			want: []string{`unknown key "lissen"`, "unknown.yaml"},
		},
		{
			name: "unknown store scheme",
			args: []string{"server", "--delivery=false", "--store", "mysql://root:hunter2@127.0.0.1/ferry"},
			want: []string{"mysql"},
		},
		{
			name: "unreachable database",
			args: []string{"server", "--delivery=false", "--store", "postgres://ferry:hunter2@127.0.0.1:1/ferry?connect_timeout=5"},
			want: []string{"127.0.0.1:1"},
		},
		{
			name: "missing kubeconfig",
			args: []string{"server", "--kubeconfig", filepath.Join(dir, "absent-kubeconfig")},
			want: []string{"absent-kubeconfig", "--delivery=false"},
		},
		{
			name: "unknown command",
			args: []string{"deploy-everything"},
			want: []string{"deploy-everything"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := ferry(ctx, t, tt.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit = %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			msg := stderr.String()
			if n := strings.Count(msg, "\n"); n != 1 || !strings.HasPrefix(msg, "ferry: ") {
				t.Errorf("stderr is not one line starting with \"ferry: \":\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not name %q", msg, w)
				}
			}
			for _, leak := range []string{"hunter2", "goroutine ", "panic"} {
				if strings.Contains(msg+stdout.String(), leak) {
					t.Errorf("output contains %q:\n%s", leak, msg)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := ferry(t.Context(), t, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Version, Commit, GoVersion string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("version -o json printed %q: %v", out, err)
	}
	if info.Version == "" || info.Commit == "" || !strings.HasPrefix(info.GoVersion, "go1.") {
		t.Errorf("version = %+v, want every field set", info)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"server", "version", "completion"}},
		{[]string{"server", "--help"}, []string{"--listen", "FERRY_LISTEN", "127.0.0.1:8080", "--store", "FERRY_STORE", "--config"}},
		{[]string{"completion", "bash"}, []string{"__start_ferry"}},
		{[]string{"completion", "zsh"}, []string{"#compdef ferry"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, err := ferry(t.Context(), t, tt.args...).Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
