// Package vaultexec is `ferry exec`: it resolves the Vault references in its environment and
// execve's a command, or with --watch stays as its parent. It is its own package so that the
// small ferry-exec binary (cmd/ferry-exec), which the injection webhook copies into Pods, can
// link it without the rest of Ferry: that keeps the start of every injected container fast.
package vaultexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/secrets/ref"
	"github.com/ferrycd/ferry/internal/secrets/vault"
)

// Exit codes of `ferry exec` when it runs no command; otherwise the command's own.
const (
	exitFailure     = 1   // a reference could not be resolved, or another failure
	exitNotRunnable = 126 // the command exists but cannot be run
	exitNotFound    = 127 // the command does not exist
)

// forwardedSignals are what `ferry exec --watch` passes on to the command.
var forwardedSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// signalsByName are the signals --on-change=signal:NAME may send.
var signalsByName = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
}

type execOptions struct {
	watch         bool
	watchInterval time.Duration
	onChange      string
	stopTimeout   time.Duration
}

// IO is where the command writes and how it reads its environment.
type IO struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
}

// env is IO under the names the code below grew up with.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// Command returns the exec command, to be added to a root command named ferry.
func Command(o IO) *cobra.Command {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	return newExecCmd(&env{stdout: o.Stdout, stderr: o.Stderr, lookupEnv: o.LookupEnv})
}

func newExecCmd(e *env) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec [flags] [--] COMMAND [ARGS...]",
		Short: "Run a command with the Vault references in its environment resolved",
		Long: `Run COMMAND with the Vault references in ferry's environment replaced by the secrets
they name, the way a Pod's containers run under Ferry's secret injection.

Every environment variable whose value holds a reference, whole ("vault:secret/db#password")
or inline ("postgres://app:${vault:secret/db#password}@db/app"), is resolved: one Vault login,
one read per distinct secret, in parallel. Then ferry replaces itself with COMMAND (looked up
in PATH) through execve, so the secrets exist only in COMMAND's environment and that of its
children; the container's own environment, which a later "kubectl exec" sees, keeps the
references. Variables without references pass through unchanged. Ferry's own settings,
VAULT_TOKEN, VAULT_TOKEN_FILE and every FERRY_VAULT_* variable, are removed from COMMAND's
environment; the other VAULT_* variables stay.

Nothing runs unless every reference resolves: on any failure ferry prints one line, such as
"ferry exec: DB_PASSWORD: vault:secret/db#password: permission denied to read
secret/data/db", never a secret value, and exits 1 (127 if COMMAND is not found, 126 if it
cannot be run).

Vault settings come from the environment: VAULT_ADDR, VAULT_CACERT, VAULT_NAMESPACE and the
other variables of the Vault CLI, VAULT_TOKEN or VAULT_TOKEN_FILE for a token, otherwise
FERRY_VAULT_AUTH_METHOD (kubernetes, the default, or approle), FERRY_VAULT_ROLE,
FERRY_VAULT_AUTH_PATH, FERRY_VAULT_JWT_FILE, FERRY_VAULT_ROLE_ID(_FILE) and
FERRY_VAULT_SECRET_ID_FILE.

With --watch ferry stays as COMMAND's parent instead: it forwards SIGTERM, SIGINT, SIGHUP,
SIGQUIT, SIGUSR1 and SIGUSR2 to it, keeps its Vault token alive, checks every
--watch-interval whether a referenced secret changed (a new KV version 2 version, other data
in KV version 1; references pinned to a version are not watched), and then restarts COMMAND
with the new values (SIGTERM, and SIGKILL after --stop-timeout) or sends it a signal
(--on-change=signal:SIGHUP). It exits with COMMAND's exit code (128+N after signal N) when
COMMAND ends on its own. In this mode ferry's memory holds the secrets too.`,
		Example: `  DB_PASSWORD=vault:secret/app/db#password ferry exec -- ./server
  ferry exec --watch --watch-interval 30s -- ./server --port 8080
  ferry exec --watch --on-change=signal:SIGHUP -- nginx -g 'daemon off;'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			// The exit code is the command's, or says why it did not run: ferry exits here
			// rather than return an error to Main, which knows only 0 and 1.
			os.Exit(runExec(cmd.Context(), e, o, args))
			return nil
		},
	}
	f := cmd.Flags()
	// Everything from COMMAND on is COMMAND's, flags included.
	f.SetInterspersed(false)
	f.BoolVar(&o.watch, "watch", false, "stay as the command's parent: forward signals and act when a secret changes")
	f.DurationVar(&o.watchInterval, "watch-interval", time.Minute, "with --watch, how often to check whether a secret changed")
	f.StringVar(&o.onChange, "on-change", "restart", `with --watch, what a changed secret does: "restart" or "signal:NAME" (such as signal:SIGHUP)`)
	f.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second, "with --watch, how long a restart waits after SIGTERM before SIGKILL")
	return cmd
}

func (o *execOptions) validate() error {
	if o.watchInterval <= 0 {
		return fmt.Errorf("--watch-interval %v: want a positive duration", o.watchInterval)
	}
	if o.stopTimeout <= 0 {
		return fmt.Errorf("--stop-timeout %v: want a positive duration", o.stopTimeout)
	}
	if _, err := o.changeSignal(); err != nil {
		return err
	}
	return nil
}

// changeSignal returns the signal --on-change sends, or 0 for a restart.
func (o *execOptions) changeSignal() (syscall.Signal, error) {
	if o.onChange == "restart" {
		return 0, nil
	}
	name, ok := strings.CutPrefix(o.onChange, "signal:")
	if sig, known := signalsByName[strings.TrimPrefix(strings.ToUpper(name), "SIG")]; ok && known {
		return sig, nil
	}
	return 0, fmt.Errorf(`--on-change %q: want "restart" or "signal:NAME" with NAME one of SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH`, o.onChange)
}

// envVar is one variable of ferry's environment, as os.Environ lists it.
type envVar struct {
	raw         string // as os.Environ lists it
	name, value string
	// parsed tells that value holds a reference or the escape "$${vault:", and tmpl is it
	// parsed.
	parsed bool
	tmpl   ref.Template
}

// execEnv is ferry's environment, parsed.
type execEnv struct {
	vars []envVar
	// refs are all references, in the order of the variables.
	refs []ref.Ref
}

// execFailure is a failure that keeps the command from running: a line to print and an
// exit code.
type execFailure struct {
	msg  string
	code int
}

func failf(code int, format string, args ...any) *execFailure {
	return &execFailure{msg: fmt.Sprintf(format, args...), code: code}
}

// runExec runs `ferry exec` and returns the exit code; when all goes well without --watch it
// does not return, since the command replaced ferry.
func runExec(ctx context.Context, e *env, o *execOptions, args []string) int {
	fail := func(f *execFailure) int {
		_, _ = fmt.Fprintf(e.stderr, "ferry exec: %s\n", oneLine(f.msg))
		return f.code
	}
	path, f := lookPath(args[0])
	if f != nil {
		return fail(f)
	}
	penv, f := parseEnv(os.Environ())
	if f != nil {
		return fail(f)
	}

	var client *vault.Client
	var values *vault.Values
	if len(penv.refs) > 0 {
		client, values, f = penv.resolve(ctx, e)
		if f != nil {
			return fail(f)
		}
	}
	childEnv, f := penv.render(values)
	if f != nil {
		return fail(f)
	}
	if !o.watch {
		// The token dies with this process image; it is not revoked, which would cost a round
		// trip, and expires at its TTL.
		err := syscall.Exec(path, args, childEnv)
		return fail(execError(args[0], err))
	}
	w := &watcher{e: e, o: o, path: path, args: args, penv: penv, client: client}
	code := w.run(ctx, values, childEnv)
	if w.client != nil {
		if err := w.client.Close(); err != nil {
			_, _ = fmt.Fprintf(e.stderr, "ferry exec: %s\n", oneLine(err.Error()))
		}
	}
	return code
}

// lookPath finds the command as a shell would.
func lookPath(name string) (string, *execFailure) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	if errors.Is(err, exec.ErrDot) {
		// A relative PATH entry found it: execute it as the shell would.
		return path, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return "", failf(exitNotRunnable, "%s: permission denied", name)
	}
	if strings.Contains(name, "/") {
		return "", failf(exitNotFound, "%s: no such file", name)
	}
	return "", failf(exitNotFound, "%s: command not found in PATH", name)
}

// execError describes a failed execve or process start.
func execError(name string, err error) *execFailure {
	code := exitNotRunnable
	if errors.Is(err, fs.ErrNotExist) {
		code = exitNotFound
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return failf(code, "%s: %s", name, errno.Error())
	}
	return failf(code, "%s: %v", name, err)
}

// parseEnv parses the references of every variable of environ.
func parseEnv(environ []string) (*execEnv, *execFailure) {
	pe := &execEnv{vars: make([]envVar, 0, len(environ))}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		v := envVar{raw: kv, name: name, value: value}
		if ref.Contains(value) && !ferryOwn(name) {
			t, err := ref.Parse(value)
			if err != nil {
				return nil, varFailure(name, err)
			}
			v.parsed, v.tmpl = true, t
			pe.refs = append(pe.refs, t.Refs()...)
		}
		pe.vars = append(pe.vars, v)
	}
	return pe, nil
}

// ferryOwn reports whether the variable name is one of ferry's settings, which the command
// does not get.
func ferryOwn(name string) bool {
	return strings.HasPrefix(name, "FERRY_VAULT_") || name == vault.EnvToken || name == vault.EnvTokenFile
}

// varFailure is the failure of variable name: "NAME: vault:PATH#KEY: reason".
func varFailure(name string, err error) *execFailure {
	var pe *ref.Error
	if errors.As(err, &pe) && pe.Ref != "" {
		return failf(exitFailure, "%s: %s: %s", name, pe.Ref, pe.Reason)
	}
	return failf(exitFailure, "%s: %v", name, err)
}

// varOf returns the first variable that holds r.
func (pe *execEnv) varOf(r ref.Ref) string {
	for _, v := range pe.vars {
		if slices.Contains(v.tmpl.Refs(), r) {
			return v.name
		}
	}
	return ""
}

// firstRef returns the first variable with a reference, and that reference: what a failure
// that concerns them all is reported against.
func (pe *execEnv) firstRef() (string, ref.Ref) {
	for _, v := range pe.vars {
		if v.tmpl.HasRefs() {
			return v.name, v.tmpl.Refs()[0]
		}
	}
	return "", ref.Ref{}
}

// resolve logs in and reads every reference.
func (pe *execEnv) resolve(ctx context.Context, e *env) (*vault.Client, *vault.Values, *execFailure) {
	cfg, err := vault.ConfigFromEnv(e.lookupEnv)
	if err != nil {
		return nil, nil, pe.allFailed(err)
	}
	client, err := vault.Login(ctx, cfg)
	if err != nil {
		return nil, nil, pe.allFailed(err)
	}
	values, f := pe.read(ctx, client)
	if f != nil {
		return nil, nil, f
	}
	return client, values, nil
}

// read resolves every reference with client.
func (pe *execEnv) read(ctx context.Context, client *vault.Client) (*vault.Values, *execFailure) {
	values, err := client.Resolve(ctx, pe.refs)
	if err != nil {
		var ve *vault.Error
		if errors.As(err, &ve) {
			return nil, failf(exitFailure, "%s: %v", pe.varOf(ve.Ref), ve)
		}
		return nil, pe.allFailed(err)
	}
	return values, nil
}

// allFailed reports a failure that concerns every reference against the first.
func (pe *execEnv) allFailed(err error) *execFailure {
	name, r := pe.firstRef()
	return failf(exitFailure, "%s: %s: %v", name, r, err)
}

// render returns the command's environment: the variables with their references resolved,
// without ferry's own.
func (pe *execEnv) render(values *vault.Values) ([]string, *execFailure) {
	out := make([]string, 0, len(pe.vars))
	for _, v := range pe.vars {
		switch {
		case ferryOwn(v.name):
			continue
		case !v.parsed:
			out = append(out, v.raw)
			continue
		}
		var failed ref.Ref
		var lookupErr error
		value, err := v.tmpl.Render(func(r ref.Ref) (string, error) {
			s, err := values.Lookup(r)
			failed, lookupErr = r, err
			return s, err
		})
		if err != nil {
			// Resolve checked every reference, so this is a bug; still reported without
			// a value.
			return nil, failf(exitFailure, "%s: %s: %v", v.name, failed, lookupErr)
		}
		out = append(out, v.name+"="+value)
	}
	return out, nil
}

// watchedPaths are the paths of the references that follow the latest version.
func (pe *execEnv) watchedPaths() []string {
	var latest []ref.Ref
	for _, r := range pe.refs {
		if r.Version == 0 {
			latest = append(latest, r)
		}
	}
	return ref.Paths(latest)
}

// watcher runs the command as a child for --watch.
type watcher struct {
	e      *env
	o      *execOptions
	path   string
	args   []string
	penv   *execEnv
	client *vault.Client
}

// child is a running command.
type child struct {
	proc   *os.Process
	exited chan syscall.WaitStatus
}

func (w *watcher) warnf(format string, args ...any) {
	_, _ = fmt.Fprintf(w.e.stderr, "ferry exec: "+format+"\n", args...)
}

// start starts the command with env.
func (w *watcher) start(env []string) (*child, *execFailure) {
	proc, err := os.StartProcess(w.path, w.args, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, execError(w.args[0], err)
	}
	c := &child{proc: proc, exited: make(chan syscall.WaitStatus, 1)}
	go func() { c.exited <- reap(proc.Pid) }()
	return c, nil
}

// reap waits for the process pid to end and returns its status. It reaps every other child
// that ends meanwhile too: as a container's PID 1, ferry inherits the orphans of the
// command's process tree.
func reap(pid int) syscall.WaitStatus {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			// ECHILD: the child is gone without a status; report a failure.
			return syscall.WaitStatus(exitFailure << 8)
		case got == pid:
			return ws
		}
	}
}

// exitCode is the exit code a shell would give for ws.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// run starts the command and supervises it until it ends on its own or after a signal, and
// returns the exit code.
func (w *watcher) run(ctx context.Context, values *vault.Values, env []string) int {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, forwardedSignals...)
	defer signal.Stop(signals)

	cur, f := w.start(env)
	if f != nil {
		_, _ = fmt.Fprintf(w.e.stderr, "ferry exec: %s\n", f.msg)
		return f.code
	}

	paths := w.penv.watchedPaths()
	if w.client != nil && len(paths) == 0 {
		// Every reference is pinned to a version: nothing to watch, no token to keep.
		if err := w.client.Close(); err != nil {
			w.warnf("%s", oneLine(err.Error()))
		}
		w.client = nil
	}
	fingerprints := map[string]string{}
	var tick <-chan time.Time
	if w.client != nil {
		w.client.StartRenewal(ctx, func(err error) { w.warnf("%s", oneLine(err.Error())) })
		for _, p := range paths {
			fingerprints[p], _ = values.Fingerprint(p)
		}
		ticker := time.NewTicker(w.o.watchInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	changeSig, _ := w.o.changeSignal()

	// During a restart, next is the environment of the command to start when the current
	// one has ended, and kill ends it if it takes too long.
	var next []string
	var kill <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case sig := <-signals:
			_ = cur.proc.Signal(sig)
		case <-done:
			// SIGINT or SIGTERM, which the command got too: no more restarts.
			tick, done, next = nil, nil, nil
		case <-kill:
			_ = cur.proc.Signal(syscall.SIGKILL)
			kill = nil
		case ws := <-cur.exited:
			_ = cur.proc.Release()
			if next == nil {
				return exitCode(ws)
			}
			if cur, f = w.start(next); f != nil {
				_, _ = fmt.Fprintf(w.e.stderr, "ferry exec: %s\n", f.msg)
				return f.code
			}
			next, kill = nil, nil
		case <-tick:
			if next != nil {
				continue // a restart is under way
			}
			changed := w.changed(ctx, paths, fingerprints)
			if len(changed) == 0 {
				continue
			}
			if changeSig != 0 {
				w.warnf("%s changed: sending %s to %s", strings.Join(changed, ", "), signalName(changeSig), w.args[0])
				_ = cur.proc.Signal(changeSig)
				continue
			}
			vals, f := w.penv.read(ctx, w.client)
			if f == nil {
				next, f = w.penv.render(vals)
			}
			if f != nil {
				// Keep the command running with what it has; try again at the next tick.
				w.warnf("%s changed, but the command keeps its old values: %s", strings.Join(changed, ", "), f.msg)
				for _, p := range changed {
					fingerprints[p] = "" // so the next tick retries
				}
				continue
			}
			for _, p := range paths {
				if fp, ok := vals.Fingerprint(p); ok {
					fingerprints[p] = fp
				}
			}
			w.warnf("%s changed: restarting %s", strings.Join(changed, ", "), w.args[0])
			_ = cur.proc.Signal(syscall.SIGTERM)
			kill = time.After(w.o.stopTimeout)
		}
	}
}

// changed polls the fingerprints of paths, updates fingerprints, and returns the paths whose
// secret changed.
func (w *watcher) changed(ctx context.Context, paths []string, fingerprints map[string]string) []string {
	now, err := w.client.Fingerprints(ctx, paths)
	if err != nil {
		if ctx.Err() == nil {
			w.warnf("check for changed secrets: %s", oneLine(err.Error()))
		}
		return nil
	}
	var changed []string
	for _, p := range paths {
		if now[p] != fingerprints[p] {
			changed = append(changed, p)
			fingerprints[p] = now[p]
		}
	}
	return changed
}

func signalName(sig syscall.Signal) string {
	for name, s := range signalsByName {
		if s == sig {
			return "SIG" + name
		}
	}
	return sig.String()
}

// oneLine keeps a message to one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
