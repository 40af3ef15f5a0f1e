package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// baseEnv is the environment of every git command: the process environment without
// anything that points git at other configuration, credentials or prompts.
func baseEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GIT_"), strings.HasPrefix(name, "SSH_"),
			strings.HasPrefix(name, "LC_"), name == "LANG", name == "LANGUAGE",
			name == "HOME", name == "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		// Messages in English: classify reads them.
		"LC_ALL=C",
		// No ~/.gitconfig, /etc/gitconfig, ~/.netrc or credential helper of the host.
		"HOME="+home,
		"XDG_CONFIG_HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		// Never wait for a human: a missing password fails at once.
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS_REQUIRE=never",
		// No file://, ext:: or other transports that read the host or run commands.
		"GIT_ALLOW_PROTOCOL=https:http:ssh:git",
		"GIT_NO_REPLACE_OBJECTS=1",
	)
}

// access is how one round's git commands authenticate: extra environment, files to
// remove afterwards, and the secrets to scrub from what git says.
type access struct {
	env       []string
	secrets   []string
	tmp       string // holds the SSH key and known_hosts; removed by close
	basicAuth bool   // env sends an Authorization header
}

// newAccess prepares credentials for r. HTTP credentials travel as an Authorization
// header set through GIT_CONFIG_* variables, scoped to the repository URL, so they are
// in neither argv nor a file. SSH keys go to a 0600 file in a private temporary
// directory.
func newAccess(r remote, c *Credentials) (*access, error) {
	a := &access{}
	if c == nil {
		c = &Credentials{}
	}
	a.addSecret(c.Password)
	a.addSecret(string(c.SSHPrivateKey))
	for _, line := range strings.Split(string(c.SSHPrivateKey), "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			a.addSecret(line)
		}
	}
	if r.ssh {
		if err := a.ssh(c); err != nil {
			a.close()
			return nil, err
		}
		return a, nil
	}
	if c.Password != "" {
		user := c.Username
		if user == "" {
			user = "git"
		}
		basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + c.Password))
		a.addSecret(basic)
		a.basicAuth = true
		a.env = append(a.env,
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http."+r.url+".extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic,
		)
	}
	return a, nil
}

func (a *access) addSecret(s string) {
	if s == "" {
		return
	}
	a.secrets = append(a.secrets, s, url.QueryEscape(s), url.PathEscape(s))
}

// ssh writes the key and known hosts to files only this user can read and points git
// at an ssh that uses nothing else: no ~/.ssh/config, agent, default keys or prompts.
func (a *access) ssh(c *Credentials) error {
	dir, err := os.MkdirTemp("", "ferry-ssh-")
	if err != nil {
		return fmt.Errorf("ssh credentials: %w", err)
	}
	a.tmp = dir
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, c.KnownHosts, 0o600); err != nil {
		return fmt.Errorf("ssh credentials: %w", err)
	}
	identity := "none" // any IdentityFile keeps ssh from trying the user's default keys
	if len(c.SSHPrivateKey) > 0 {
		identity = filepath.Join(dir, "key")
		key := c.SSHPrivateKey
		if !bytes.HasSuffix(key, []byte("\n")) {
			key = append(key[:len(key):len(key)], '\n') // ssh rejects a key without one
		}
		if err := os.WriteFile(identity, key, 0o600); err != nil {
			return fmt.Errorf("ssh credentials: %w", err)
		}
	}
	a.env = append(a.env,
		"GIT_SSH_VARIANT=ssh",
		"GIT_SSH_COMMAND=ssh -F /dev/null"+
			" -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none"+
			" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null"+
			" -o UserKnownHostsFile="+shellQuote(knownHosts)+
			" -o ConnectTimeout=30 -o IdentityFile="+shellQuote(identity),
	)
	return nil
}

func (a *access) close() {
	if a.tmp != "" {
		os.RemoveAll(a.tmp)
	}
}

// scrub replaces every secret in s, longest first so a secret containing another is
// hidden whole.
func (a *access) scrub(s string) string {
	secrets := append([]string(nil), a.secrets...)
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// gitError is a failed git command with what it said, scrubbed of secrets.
type gitError struct {
	op     string // the git subcommand
	stderr string // the last meaningful lines, secrets scrubbed
	kind   error  // ErrAuth, ErrUnavailable, ... or nil
	err    error  // how the process ended, or the context's error
}

func (e *gitError) Error() string {
	msg := e.stderr
	if msg == "" {
		msg = e.err.Error()
	}
	return "git " + e.op + ": " + msg
}

func (e *gitError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.kind, e.err}
}

// gitRun is one git command.
type gitRun struct {
	gitDir string    // GIT_DIR, or empty
	access *access   // credentials, or nil
	stdin  io.Reader // or nil
	stdout io.Writer // or nil to discard
}

// run runs git args under ctx and Options.Timeout. stdout, when nil, is collected and
// returned.
func (m *Mirrors) run(ctx context.Context, g gitRun, args ...string) (string, error) {
	bin, err := m.gitPath()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string(nil), m.baseEnv...)
	if g.gitDir != "" {
		cmd.Env = append(cmd.Env, "GIT_DIR="+g.gitDir)
	}
	if g.access != nil {
		cmd.Env = append(cmd.Env, g.access.env...)
	}
	killProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdin = g.stdin
	cmd.Stdout = &stdout
	if g.stdout != nil {
		cmd.Stdout = g.stdout
	}
	cmd.Stderr = stderr
	err = cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	full := stderr.String()
	if g.access != nil {
		full = g.access.scrub(full)
	}
	e := &gitError{op: args[0], stderr: lastLines(full), err: err, kind: classify(full)}
	if g.access != nil && g.access.basicAuth && strings.Contains(full, "could not read Username") {
		// git asks for a username after a 401 even though it sent the header.
		e.stderr = "the server refused the credentials (HTTP 401)"
	}
	switch {
	case m.ctx.Err() != nil:
		e.err, e.kind = errClosed, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Ours or the caller's deadline: either way the server was too slow.
		e.stderr = fmt.Sprintf("no answer within %s", m.opts.Timeout)
		e.err, e.kind = context.DeadlineExceeded, ErrUnavailable
	case ctx.Err() != nil:
		e.err, e.kind = context.Cause(ctx), nil
	}
	return "", e
}

// classify maps what git and ssh say (in the C locale) to the error the reconciler acts
// on, or nil.
func classify(stderr string) error {
	s := strings.ToLower(stderr)
	has := func(needles ...string) bool {
		for _, n := range needles {
			if strings.Contains(s, n) {
				return true
			}
		}
		return false
	}
	switch {
	case has("authentication failed", "could not read username", "could not read password",
		"terminal prompts disabled", "returned error: 401", "returned error: 403",
		"permission denied (", "host key verification failed", "host key for", "remote host identification has changed",
		"no matching host key", "invalid username or password", "access denied", "denied to "):
		return ErrAuth
	case has("repository not found", "returned error: 404", "does not appear to be a git repository",
		"' not found", "no such repository"):
		return ErrRepositoryNotFound
	case has("couldn't find remote ref", "not our ref", "no such remote ref", "unknown revision",
		"not a valid object name", "unadvertised object", "bad object", "not a tree object"):
		return ErrRevisionNotFound
	case has("could not resolve", "connection refused", "failed to connect", "couldn't connect",
		"timed out", "returned error: 5", "connection reset", "network is unreachable", "no route to host",
		"hung up unexpectedly", "early eof", "rpc failed", "empty reply", "recv failure", "send failure",
		"name or service not known", "temporary failure in name resolution", "connection closed",
		"could not read from remote repository", "ssl certificate", "ssl connect", "ssl_", "gnutls",
		"certificate problem", "proxy connect", "received http code 5"):
		return ErrUnavailable
	}
	return nil
}

// lastLines keeps the few lines of git's stderr that say what went wrong, without hints
// and progress.
func lastLines(stderr string) string {
	var lines []string
	for _, line := range strings.Split(strings.ReplaceAll(stderr, "\r", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "hint:") || boilerplate[line] {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// boilerplate is what git adds to every ssh failure, crowding out ssh's own reason.
var boilerplate = map[string]bool{
	"Please make sure you have the correct access rights": true,
	"and the repository exists.":                          true,
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }
