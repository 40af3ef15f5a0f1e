package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrycd/ferry/internal/testenv"
)

// execMainEnv makes the test binary be ferry: `ferry exec` replaces the process, so its tests
// run it as a process of its own, the race-detecting test binary itself, started with this
// variable. The hook runs before TestMain, so such a process starts no control plane.
const execMainEnv = "FERRY_EXEC_TEST_MAIN"

func init() {
	if os.Getenv(execMainEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execFixture is a Vault with secrets for `ferry exec`.
type execFixture struct {
	t      *testing.T
	v      *testenv.Vault
	canary string // the value of secret/app/db#password
	dir    string
}

func newExecFixture(t *testing.T) *execFixture {
	t.Helper()
	f := &execFixture{t: t, v: testenv.NewVault(t, testenv.VaultOptions{}), canary: "canary-" + rand.Text(), dir: t.TempDir()}
	f.put("app/db", map[string]any{"password": f.canary, "user": "app", "port": 5432})
	return f
}

func (f *execFixture) put(path string, data map[string]any) {
	f.t.Helper()
	if _, err := f.v.Client().KVv2("secret").Put(f.t.Context(), path, data); err != nil {
		f.t.Fatal(err)
	}
}

// file writes content to a new file in the fixture's directory.
func (f *execFixture) file(name, content string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// env is the environment of a ferry process: a clean one, so the developer's VAULT_*
// variables cannot interfere, with Vault's address and the root token, then extra.
func (f *execFixture) env(extra ...string) []string {
	env := []string{
		execMainEnv + "=1",
		"PATH=" + os.Getenv("PATH"),
		"VAULT_ADDR=" + f.v.Addr,
		"VAULT_TOKEN=" + f.v.RootToken,
	}
	return append(env, extra...)
}

// run is one finished ferry process.
type run struct {
	stdout, stderr string
	code           int
	pid            int
}

// ferryExec runs `ferry ARGS...` (args start with "exec") with env and waits for it.
func ferryExec(t *testing.T, env []string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if cmd.Process != nil {
		r.pid = cmd.Process.Pid
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run ferry %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// noLeak fails the test if s holds one of the secrets.
func noLeak(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds a secret value:\n%s", what, s)
		}
	}
}

func TestExecResolves(t *testing.T) {
	f := newExecFixture(t)
	env := f.env(
		"DB_PASSWORD=vault:secret/app/db#password",
		"DB_URL=postgres://${vault:secret/data/app/db#user}:${vault:secret/app/db#password}@db:${vault:secret/app/db#port}/app",
		"PLAIN=no reference: ${HOME} $$ vault: $",
		"ESCAPED=$${vault:secret/app/db#password}",
		"FERRY_VAULT_AUTH_PATH=unused",
		"FERRY_VAULT_ROLE=vault:secret/app/db#password",
	)
	script := `printf '%s\n' "$$" "$DB_PASSWORD" "$DB_URL" "$PLAIN" "$ESCAPED" "${VAULT_ADDR:+addr}" "${VAULT_TOKEN:-no token}" "${FERRY_VAULT_AUTH_PATH:-no ferry}"`
	r := ferryExec(t, env, "exec", "--", "sh", "-c", script)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want := []string{
		strconv.Itoa(r.pid), // execve: the command is the process ferry was
		f.canary,
		"postgres://app:" + f.canary + "@db:5432/app",
		"no reference: ${HOME} $$ vault: $",
		"${vault:secret/app/db#password}",
		"addr",
		"no token",
		"no ferry",
	}
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("the command printed\n%q\nwant\n%q", got, want)
	}

	// Without "--", and with flags of the command's own.
	r = ferryExec(t, env, "exec", "sh", "-c", `printf %s "$DB_PASSWORD"`, "--watch")
	if r.code != 0 || r.stdout != f.canary {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}

	// A sibling started without the wrapper, as `kubectl exec` would be, sees the references.
	sibling := exec.Command("sh", "-c", "env")
	sibling.Env = env
	out, err := sibling.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "DB_PASSWORD=vault:secret/app/db#password\n") {
		t.Errorf("the sibling's environment lacks the reference:\n%s", out)
	}
	noLeak(t, "the sibling's environment", string(out), f.canary)

	// No reference at all: no Vault needed.
	r = ferryExec(t, []string{execMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "X=y"}, "exec", "--", "sh", "-c", `printf %s "$X"`)
	if r.code != 0 || r.stdout != "y" {
		t.Errorf("without references: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestExecExitCode(t *testing.T) {
	f := newExecFixture(t)
	r := ferryExec(t, f.env("P=vault:secret/app/db#user"), "exec", "--", "sh", "-c", `exit 42`)
	if r.code != 42 {
		t.Errorf("exit %d, want the command's 42", r.code)
	}
}

func TestExecKubernetesAuth(t *testing.T) {
	f := newExecFixture(t)
	ctx := t.Context()
	kube, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "exec-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	if _, err := kube.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.v.PutPolicy(ctx, "read-app", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	err = f.v.EnableKubernetesAuth(ctx, plane.Config, testenv.KubernetesAuthOptions{
		Roles: []testenv.KubernetesRole{{Name: "app", ServiceAccounts: []string{"app"}, Namespaces: []string{ns.Name}, Policies: []string{"read-app"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := testenv.ServiceAccountToken(ctx, kube, ns.Name, "app", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		execMainEnv + "=1",
		"PATH=" + os.Getenv("PATH"),
		"VAULT_ADDR=" + f.v.Addr,
		"FERRY_VAULT_AUTH_METHOD=kubernetes",
		"FERRY_VAULT_ROLE=app",
		"FERRY_VAULT_AUTH_PATH=kubernetes",
		"FERRY_VAULT_JWT_FILE=" + f.file("jwt", jwt),
		"DB_PASSWORD=vault:secret/app/db#password",
	}
	r := ferryExec(t, env, "exec", "--", "sh", "-c", `printf %s "$DB_PASSWORD"`)
	if r.code != 0 || r.stdout != f.canary {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}

	env[4] = "FERRY_VAULT_ROLE=nope"
	marker := filepath.Join(f.dir, "ran")
	r = ferryExec(t, env, "exec", "--", "sh", "-c", "touch "+marker)
	if r.code == 0 || !strings.HasPrefix(r.stderr, "ferry exec: DB_PASSWORD: vault:secret/app/db#password: vault login (kubernetes, role nope): ") {
		t.Errorf("with an unknown role: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	noLeak(t, "ferry's output", r.stdout+r.stderr, f.canary, jwt)
}

func TestExecFailsClosed(t *testing.T) {
	f := newExecFixture(t)
	ctx := t.Context()
	forbidden := "canary-" + rand.Text()
	f.put("other/db", map[string]any{"password": forbidden})
	if err := f.v.PutPolicy(ctx, "read-app", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := f.v.EnableAppRole(ctx, "app", "read-app")
	if err != nil {
		t.Fatal(err)
	}
	appRole := []string{
		"FERRY_VAULT_AUTH_METHOD=approle",
		"FERRY_VAULT_ROLE_ID_FILE=" + f.file("role-id", roleID),
		"FERRY_VAULT_SECRET_ID_FILE=" + f.file("secret-id", secretID),
	}
	withoutToken := func(extra ...string) []string {
		env := slices.DeleteFunc(f.env(), func(kv string) bool { return strings.HasPrefix(kv, "VAULT_TOKEN=") })
		return append(env, extra...)
	}
	down := testenv.NewVault(t, testenv.VaultOptions{})
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // all of stderr but its newline
	}{
		{
			name: "malformed reference",
			env:  f.env("OK=vault:secret/app/db#password", "BAD=vault:secret/app/db"),
			code: 1,
			want: `ferry exec: BAD: vault:secret/app/db: missing "#KEY"`,
		},
		{
			name: "malformed inline reference",
			env:  f.env("URL=postgres://${vault:secret/app/db#password@db/app"),
			code: 1,
			want: `ferry exec: URL: ${vault:secret/app/db#password@db/app: missing the closing "}"`,
		},
		{
			name: "missing key",
			env:  f.env("A=vault:secret/app/db#user", "B=x${vault:secret/app/db#passwd}"),
			code: 1,
			want: `ferry exec: B: vault:secret/app/db#passwd: no key "passwd" in the secret at secret/data/app/db`,
		},
		{
			name: "missing secret",
			env:  f.env("A=vault:secret/app/nope#pw"),
			code: 1,
			want: `ferry exec: A: vault:secret/app/nope#pw: no secret at secret/data/app/nope`,
		},
		{
			name: "denied",
			env:  withoutToken(append(appRole, "A=vault:secret/app/db#password", "B=vault:secret/other/db#password")...),
			code: 1,
			want: `ferry exec: B: vault:secret/other/db#password: permission denied to read secret/data/other/db`,
		},
		{
			name: "login refused",
			env:  withoutToken("FERRY_VAULT_AUTH_METHOD=approle", "FERRY_VAULT_ROLE_ID="+roleID, "A=vault:secret/app/db#password"),
			code: 1,
			want: `ferry exec: A: vault:secret/app/db#password: vault login (approle): status 400 Bad Request from Vault: missing secret_id`,
		},
		{
			name: "vault down",
			env: append(slices.DeleteFunc(f.env(), func(kv string) bool { return strings.HasPrefix(kv, "VAULT_ADDR=") }),
				"VAULT_ADDR="+down.Addr, "VAULT_MAX_RETRIES=0", "A=vault:secret/app/db#password"),
			code: 1,
			want: fmt.Sprintf(`ferry exec: A: vault:secret/app/db#password: vault login (token): cannot reach Vault at %s: dial tcp %s: connect: connection refused`,
				down.Addr, strings.TrimPrefix(down.Addr, "http://")),
		},
		{
			name: "no vault address",
			env: append(slices.DeleteFunc(f.env(), func(kv string) bool { return strings.HasPrefix(kv, "VAULT_ADDR=") }),
				"A=vault:secret/app/db#password"),
			code: 1,
			want: `ferry exec: A: vault:secret/app/db#password: vault configuration: no Vault address (set VAULT_ADDR)`,
		},
		{
			name: "command not found",
			env:  f.env("A=vault:secret/app/db#password"),
			args: []string{"no-such-command-" + rand.Text()},
			code: 127,
			want: `ferry exec: no-such-command-`,
		},
		{
			name: "bad flag",
			env:  f.env("A=vault:secret/app/db#password"),
			args: []string{"--on-change=signal:SIGFOO", "--"},
			code: 1,
			want: `ferry: --on-change "signal:SIGFOO": want "restart" or "signal:NAME" with NAME one of SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			args := []string{"exec", "--", "sh", "-c", "touch " + marker + "; echo ran"}
			if tt.args != nil {
				args = append(append([]string{"exec"}, tt.args...), "sh", "-c", "touch "+marker)
			}
			r := ferryExec(t, tt.env, args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			if !strings.HasPrefix(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr = %q\nwant one line starting %q", r.stderr, tt.want)
			}
			if _, err := os.Stat(marker); err == nil || r.stdout != "" {
				t.Error("the command ran")
			}
			noLeak(t, "ferry's output", r.stdout+r.stderr, f.canary, forbidden, secretID, f.v.RootToken)
		})
	}
}

// watched is a `ferry exec --watch` running in the background.
type watched struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startWatch(t *testing.T, env []string, args ...string) *watched {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = env
	w := &watched{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.stderr, w.stderr // the command writes to files, not here
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			_ = cmd.Process.Kill()
			<-w.done
		}
		t.Logf("ferry %s: stdout and stderr:\n%s", strings.Join(args, " "), w.stderr.String())
	})
	return w
}

// wait waits for ferry to exit and returns its exit code.
func (w *watched) wait() int {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		w.t.Fatal("ferry exec --watch did not exit")
	}
	return w.cmd.ProcessState.ExitCode()
}

// lines returns the lines of the file path, which the command appends to.
func lines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// watchScript appends "start $PW" to out when it starts, "term" when it gets SIGTERM (then
// exits 7), and "hup" on SIGHUP.
func watchScript(out string) string {
	return fmt.Sprintf(`trap 'echo term >> %[1]s; exit 7' TERM
trap 'echo hup >> %[1]s' HUP
echo "start $PW" >> %[1]s
while :; do sleep 0.05; done`, out)
}

func TestExecWatchRestarts(t *testing.T) {
	f := newExecFixture(t)
	out := filepath.Join(f.dir, "out")
	w := startWatch(t, f.env("PW=vault:secret/app/db#password", "PINNED=vault:secret/app/db#password#1"),
		"exec", "--watch", "--watch-interval", "200ms", "--", "sh", "-c", watchScript(out))
	testenv.Eventually(t, "the command starts", func() bool { return len(lines(out)) == 1 })

	second := "canary-" + rand.Text()
	f.put("app/db", map[string]any{"password": second, "user": "app"})
	testenv.Eventually(t, "the command restarts with the new value", func() bool { return len(lines(out)) == 3 })
	want := []string{"start " + f.canary, "term", "start " + second}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("the command wrote %q, want %q", got, want)
	}

	// No change, no restart.
	time.Sleep(600 * time.Millisecond)
	if n := len(lines(out)); n != 3 {
		t.Errorf("%d lines after a quiet spell, want 3: %q", n, lines(out))
	}

	// A new version that lacks the key: the command keeps running with what it has, and
	// ferry tries again until the secret is whole.
	f.put("app/db", map[string]any{"user": "app"})
	testenv.Eventually(t, "ferry reports the broken secret", func() bool {
		return strings.Contains(w.stderr.String(), `ferry exec: secret/app/db changed, but the command keeps its old values: `+
			`PW: vault:secret/app/db#password: no key "password" in the secret at secret/data/app/db`)
	})
	time.Sleep(400 * time.Millisecond)
	if n := len(lines(out)); n != 3 {
		t.Errorf("the command was disturbed by a broken secret: %q", lines(out))
	}
	third := "canary-" + rand.Text()
	f.put("app/db", map[string]any{"password": third})
	testenv.Eventually(t, "the command restarts with the repaired secret", func() bool { return len(lines(out)) == 5 })
	want = append(want, "term", "start "+third)
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("the command wrote %q, want %q", got, want)
	}

	// SIGTERM goes to the command, whose exit code ferry takes.
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := w.wait(); code != 7 {
		t.Errorf("exit %d, want the command's 7", code)
	}
	if got := lines(out); len(got) != 6 || got[5] != "term" {
		t.Errorf("the command wrote %q, want a last term", got)
	}
	logged := w.stderr.String()
	if !strings.Contains(logged, "ferry exec: secret/app/db changed: restarting sh\n") {
		t.Errorf("ferry did not say it restarted:\n%s", logged)
	}
	noLeak(t, "ferry's output", logged, f.canary, second, third, f.v.RootToken)
}

func TestExecWatchSignal(t *testing.T) {
	f := newExecFixture(t)
	out := filepath.Join(f.dir, "out")
	w := startWatch(t, f.env("PW=vault:secret/app/db#password"),
		"exec", "--watch", "--watch-interval=200ms", "--on-change=signal:SIGHUP", "--", "sh", "-c", watchScript(out))
	testenv.Eventually(t, "the command starts", func() bool { return len(lines(out)) == 1 })
	f.put("app/db", map[string]any{"password": "new"})
	testenv.Eventually(t, "the command gets SIGHUP", func() bool { return len(lines(out)) == 2 })
	if got := lines(out); got[1] != "hup" {
		t.Errorf("the command wrote %q", got)
	}
	// SIGHUP to ferry is forwarded too; so are the others.
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if err := w.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if sig == syscall.SIGHUP {
			testenv.Eventually(t, "the command gets the forwarded SIGHUP", func() bool { return len(lines(out)) == 3 })
		}
	}
	// sh dies of SIGINT, as it has no trap for it.
	if code := w.wait(); code != 128+int(syscall.SIGINT) {
		t.Errorf("exit %d, want %d", code, 128+int(syscall.SIGINT))
	}
	noLeak(t, "ferry's output", w.stderr.String(), f.canary)
}

func TestExecWatchCommandExits(t *testing.T) {
	f := newExecFixture(t)
	w := startWatch(t, f.env("PW=vault:secret/app/db#password"), "exec", "--watch", "--", "sh", "-c", "sleep 0.2; exit 3")
	if code := w.wait(); code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	if s := w.stderr.String(); s != "" {
		t.Errorf("ferry wrote %q", s)
	}
}

// BenchmarkExec measures what `ferry exec -- true` adds to the start of `true`, with refs
// references over paths secrets, against a local Vault, with the real binaries (no race
// detector): ferry-exec, which injected Pods run, and the full ferry. It reports the median
// added milliseconds of each, the median of `ferry version` (the
// binary's own start: loading it and initializing its packages), and the median round trip
// of one Vault read for scale.
func BenchmarkExec(b *testing.B) {
	// ferry-exec is what injected Pods run; the full ferry binary serves `ferry exec` too.
	bin, small := filepath.Join(b.TempDir(), "ferry"), filepath.Join(b.TempDir(), "ferry-exec")
	for out, pkg := range map[string]string{bin: "./cmd/ferry", small: "./cmd/ferry-exec"} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		build.Dir = moduleRoot(b)
		if msg, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	v := testenv.NewVault(b, testenv.VaultOptions{})
	c := v.Client()
	for p := range 20 {
		data := map[string]any{}
		for k := range 10 {
			data[fmt.Sprintf("k%d", k)] = rand.Text()
		}
		if _, err := c.KVv2("secret").Put(b.Context(), fmt.Sprintf("bench/s%d", p), data); err != nil {
			b.Fatal(err)
		}
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.RootToken}
	timeRun := func(env []string, name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return time.Since(start)
	}
	median := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}

	for _, tt := range []struct{ refs, paths int }{{1, 1}, {10, 1}, {10, 5}, {50, 1}, {50, 5}, {50, 20}} {
		b.Run(fmt.Sprintf("refs=%d/paths=%d", tt.refs, tt.paths), func(b *testing.B) {
			env := slices.Clone(base)
			for i := range tt.refs {
				env = append(env, fmt.Sprintf("S%d=vault:secret/bench/s%d#k%d", i, i%tt.paths, i%10))
			}
			var added, addedFull, direct, version, rtt []time.Duration
			for b.Loop() {
				d := timeRun(env, truePath)
				direct = append(direct, d)
				added = append(added, timeRun(env, small, "exec", "--", "true")-d)
				addedFull = append(addedFull, timeRun(env, bin, "exec", "--", "true")-d)
				version = append(version, timeRun(env, bin, "version"))
				start := time.Now()
				if _, err := c.Logical().ReadWithContext(b.Context(), "secret/data/bench/s0"); err != nil {
					b.Fatal(err)
				}
				rtt = append(rtt, time.Since(start))
			}
			b.ReportMetric(median(added), "added-ms")
			b.ReportMetric(median(addedFull), "added-full-binary-ms")
			b.ReportMetric(median(direct), "true-ms")
			b.ReportMetric(median(version), "ferry-version-ms")
			b.ReportMetric(median(rtt), "vault-rtt-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// moduleRoot returns the directory of go.mod.
func moduleRoot(tb testing.TB) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
