package testenv

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// GitAuthor is the author and committer of every commit a GitServer makes.
const GitAuthor = "Ferry Test <test@ferry.dev>"

// GitServerOptions configures NewGitServer.
type GitServerOptions struct {
	// Username and Password, when Password is set, are the only HTTP basic credentials the
	// server accepts; every other request gets 401.
	Username, Password string
}

// GitServer is a real git server for tests: git http-backend (smart HTTP, fetch and push)
// behind net/http/cgi on 127.0.0.1. Repositories are bare directories in a temporary
// project root. Stop and Start simulate an outage on the same address.
type GitServer struct {
	opts    GitServerOptions
	root    string // GIT_PROJECT_ROOT
	addr    string // fixed across Stop and Start
	backend http.Handler

	mu       sync.Mutex
	srv      *http.Server
	hold     chan struct{} // non-nil while requests are held; closed to release them
	sessions map[string]int
	fetches  map[string]int
}

// GitChange is one file change of GitServer.CommitChanges.
type GitChange struct {
	Path    string
	Content string // file content, or the target when Symlink is set
	Symlink bool
	Delete  bool
}

// NewGitServer starts a git server on a free loopback port and stops it when the test ends.
func NewGitServer(t testing.TB, opts GitServerOptions) *GitServer {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git server: %v", err)
	}
	root := t.TempDir()
	s := &GitServer{
		opts: opts,
		root: root,
		backend: &cgi.Handler{
			Path:   git,
			Args:   []string{"http-backend"},
			Dir:    root,
			Stderr: io.Discard, // the client reports what matters
			Env: append(isolatedGitEnv(root),
				"GIT_PROJECT_ROOT="+root,
				"GIT_HTTP_EXPORT_ALL=1",
			),
		},
		sessions: map[string]int{},
		fetches:  map[string]int{},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("git server: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(func() {
		s.release()
		s.Stop(t)
	})
	return s
}

// isolatedGitEnv keeps the user's and the system's git configuration away from git.
func isolatedGitEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
}

// environWithoutGit is the process environment without GIT_* variables, which would point
// git at another repository (GIT_DIR) or configuration (GIT_CONFIG_PARAMETERS).
func environWithoutGit() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *GitServer) serve(l net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }() // ends when Stop closes srv
}

// Stop closes the listener and every open connection; clients get "connection refused"
// until Start.
func (s *GitServer) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Close(); err != nil {
		t.Errorf("stop git server: %v", err)
	}
}

// Start serves again on the address the server had before Stop.
func (s *GitServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("restart git server: %v", err)
	}
	s.serve(l)
}

// Hold makes every request wait until release is called, to keep a client's git command
// in flight for as long as a test needs.
func (s *GitServer) Hold() (release func()) {
	s.mu.Lock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
	s.mu.Unlock()
	return s.release
}

func (s *GitServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// URL returns the clone URL of repo, without credentials.
func (s *GitServer) URL(repo string) string { return "http://" + s.addr + "/" + repo + ".git" }

// Dir returns the bare repository's directory, for tests that need git plumbing.
func (s *GitServer) Dir(repo string) string { return filepath.Join(s.root, repo+".git") }

// Sessions returns how many git sessions (clone, fetch, ls-remote: one ref advertisement
// each) read repo so far. Requests refused for bad credentials do not count.
func (s *GitServer) Sessions(repo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[repo]
}

// Fetches returns how many times the server sent repo's objects, that is, answered the
// fetch command of upload-pack. A fetch that negotiates over several requests counts once
// per request.
func (s *GitServer) Fetches(repo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[repo]
}

// ServeHTTP enforces basic auth, counts upload-pack traffic and hands the request to git
// http-backend.
func (s *GitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if s.opts.Password != "" {
		user, pass, ok := r.BasicAuth()
		if !ok || !equal(user, s.opts.Username) || !equal(pass, s.opts.Password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferry test git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), ".git/")
	if ok {
		switch {
		case r.Method == http.MethodGet && rest == "info/refs" && r.URL.Query().Get("service") == "git-upload-pack":
			s.count(s.sessions, repo)
		case r.Method == http.MethodPost && rest == "git-upload-pack":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if isFetch(body, r.Header.Get("Content-Encoding")) {
				s.count(s.fetches, repo)
			}
		}
	}
	s.backend.ServeHTTP(w, r)
}

func (s *GitServer) count(m map[string]int, repo string) {
	s.mu.Lock()
	m[repo]++
	s.mu.Unlock()
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// isFetch tells an upload-pack request that sends objects from one that lists refs:
// protocol v2 names the command; in v0 every POST is a fetch negotiation.
func isFetch(body []byte, encoding string) bool {
	if encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return false
		}
		if body, err = io.ReadAll(zr); err != nil {
			return false
		}
	}
	return bytes.Contains(body, []byte("command=fetch")) || !bytes.Contains(body, []byte("command="))
}

// CreateRepo creates an empty bare repository whose default branch is main.
func (s *GitServer) CreateRepo(t testing.TB, name string) {
	t.Helper()
	dir := s.Dir(name)
	s.git(t, "", nil, "init", "--quiet", "--bare", "--initial-branch=main", dir)
	s.git(t, dir, nil, "config", "http.receivepack", "true")
}

// Commit commits files to branch and returns the commit's SHA. An empty content deletes
// the file. A branch that does not exist yet starts from the default branch, or from
// nothing in an empty repository.
func (s *GitServer) Commit(t testing.TB, repo, branch string, files map[string]string, message string) string {
	t.Helper()
	changes := make([]GitChange, 0, len(files))
	for path, content := range files {
		changes = append(changes, GitChange{Path: path, Content: content, Delete: content == ""})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return s.CommitChanges(t, repo, branch, changes, message)
}

// CommitChanges is Commit for changes Commit cannot express, such as symlinks.
//
// It writes into the bare repository with git fast-import: one process per commit, no
// working copy.
func (s *GitServer) CommitChanges(t testing.TB, repo, branch string, changes []GitChange, message string) string {
	t.Helper()
	dir := s.Dir(repo)
	ref := "refs/heads/" + branch
	parent := s.revParse(t, dir, ref)
	if parent == "" {
		parent = s.revParse(t, dir, "HEAD")
	}

	var in bytes.Buffer
	now := strconv.FormatInt(time.Now().Unix(), 10) + " +0000"
	fmt.Fprintf(&in, "commit %s\n", ref)
	fmt.Fprintf(&in, "author %s %s\ncommitter %s %s\n", GitAuthor, now, GitAuthor, now)
	fmt.Fprintf(&in, "data %d\n%s\n", len(message), message)
	if parent != "" {
		fmt.Fprintf(&in, "from %s\n", parent)
	}
	for _, c := range changes {
		path := c.Path
		if strings.ContainsAny(path, " \"\\\n") {
			path = strconv.Quote(path) // fast-import reads C-style quoted paths
		}
		switch {
		case c.Delete:
			fmt.Fprintf(&in, "D %s\n", path)
		case c.Symlink:
			fmt.Fprintf(&in, "M 120000 inline %s\ndata %d\n%s\n", path, len(c.Content), c.Content)
		default:
			fmt.Fprintf(&in, "M 100644 inline %s\ndata %d\n%s\n", path, len(c.Content), c.Content)
		}
	}
	in.WriteString("done\n")
	s.git(t, dir, &in, "fast-import", "--quiet", "--done", "--force")
	return s.revParse(t, dir, ref)
}

// Tag creates the annotated tag name on sha.
func (s *GitServer) Tag(t testing.TB, repo, name, sha string) {
	t.Helper()
	s.git(t, s.Dir(repo), nil, "tag", "--annotate", "--message", name, "--end-of-options", name, sha)
}

func (s *GitServer) revParse(t testing.TB, dir, rev string) string {
	t.Helper()
	out, err := s.run(dir, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			return "" // no such revision
		}
		t.Fatalf("git rev-parse %s: %v", rev, err)
	}
	return strings.TrimSpace(out)
}

func (s *GitServer) git(t testing.TB, dir string, stdin io.Reader, args ...string) string {
	t.Helper()
	out, err := s.run(dir, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v", args[0], err)
	}
	return out
}

func (s *GitServer) run(dir string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Env = append(environWithoutGit(), isolatedGitEnv(s.root)...)
	cmd.Env = append(cmd.Env,
		"GIT_AUTHOR_NAME=Ferry Test", "GIT_AUTHOR_EMAIL=test@ferry.dev",
		"GIT_COMMITTER_NAME=Ferry Test", "GIT_COMMITTER_EMAIL=test@ferry.dev",
	)
	if dir != "" {
		cmd.Env = append(cmd.Env, "GIT_DIR="+dir)
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// GitSSH serves a GitServer's repositories over SSH too, from a Go SSH server that runs
// git upload-pack and receive-pack, so tests need no sshd.
type GitSSH struct {
	// ClientKey is an unencrypted OpenSSH private key the server accepts, the only one.
	ClientKey []byte
	// KnownHosts is the known_hosts line of the server's host key.
	KnownHosts []byte
	addr       string
}

// URL returns the ssh:// clone URL of repo.
func (g *GitSSH) URL(repo string) string { return "ssh://git@" + g.addr + "/" + repo + ".git" }

// StartSSH starts the SSH side on a free loopback port; it stops when the test ends.
func (s *GitServer) StartSSH(t testing.TB) *GitSSH {
	t.Helper()
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientKey, "")
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config.AddHostKey(hostSigner)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &GitSSH{
		ClientKey:  pem.EncodeToMemory(block),
		KnownHosts: []byte(knownhosts.Line([]string{l.Addr().String()}, hostSigner.PublicKey()) + "\n"),
		addr:       l.Addr().String(),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // the listener closed
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { s.serveSSH(c, config) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return g
}

// serveSSH serves one connection: sessions that exec git-upload-pack or
// git-receive-pack on a repository under the project root.
func (s *GitServer) serveSSH(c net.Conn, config *ssh.ServerConfig) {
	conn, chans, reqs, err := ssh.NewServerConn(c, config)
	if err != nil {
		c.Close()
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs) // ends when the connection closes
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Go(func() { s.serveSession(ch, requests) })
	}
}

func (s *GitServer) serveSession(ch ssh.Channel, requests <-chan *ssh.Request) {
	defer ch.Close()
	var protocol string
	for req := range requests {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL" {
				protocol = kv.Value
			}
			_ = req.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
			code := s.runSSHCommand(ch, cmd.Command, protocol)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{code}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// runSSHCommand runs what git's ssh transport asks for, "git-upload-pack '/app.git'",
// and returns its exit status.
func (s *GitServer) runSSHCommand(ch ssh.Channel, command, protocol string) uint32 {
	service, arg, _ := strings.Cut(command, " ")
	repo := strings.Trim(strings.Trim(arg, "'"), "/")
	if (service != "git-upload-pack" && service != "git-receive-pack") || repo == "" ||
		!filepath.IsLocal(repo) || !strings.HasSuffix(repo, ".git") {
		fmt.Fprintf(ch.Stderr(), "unsupported command %q\n", command)
		return 1
	}
	if service == "git-upload-pack" {
		s.count(s.sessions, strings.TrimSuffix(repo, ".git"))
	}
	cmd := exec.Command("git", strings.TrimPrefix(service, "git-"), filepath.Join(s.root, repo))
	cmd.Env = append(environWithoutGit(), isolatedGitEnv(s.root)...)
	if protocol != "" {
		cmd.Env = append(cmd.Env, "GIT_PROTOCOL="+protocol)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return uint32(exit.ExitCode())
		}
		return 1
	}
	return 0
}
