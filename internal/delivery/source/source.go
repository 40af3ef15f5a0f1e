// Package source turns an Application's repository URL and revision into a read-only
// directory holding that commit's files.
//
// Mirrors keeps one bare mirror per repository and fetches with the git command line, so
// however many Applications point at one repository it is fetched once per new commit:
// concurrent Fetches of a repository share one round of git commands (ls-remote, then a
// shallow fetch only when the commit is not there yet), and every commit's files are
// exported once, to dir/trees/<sha>, for every Application to share.
//
// Credentials reach git only through its environment and temporary files, never its
// arguments or configuration on disk, and are scrubbed from every error and log line.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors a Fetch error wraps, for the reconciler to decide what to do.
var (
	// ErrAuth means the server refused the credentials, or the SSH host key did not
	// match: retrying is useless until the credentials or known hosts change.
	ErrAuth = errors.New("authentication failed")
	// ErrRepositoryNotFound means the server has no such repository, or hides it from
	// these credentials.
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrRevisionNotFound means the repository has no branch, tag or commit by that name,
	// or a short SHA matches more than one commit.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrUnavailable means the server could not be reached or failed (connection refused,
	// timeout, 5xx): retry later.
	ErrUnavailable = errors.New("repository unavailable")
	// ErrInvalidURL means the repository URL cannot be used.
	ErrInvalidURL = errors.New("invalid repository URL")
	// ErrUnsafeTree means the commit holds a path or symlink that leads outside its tree.
	ErrUnsafeTree = errors.New("unsafe tree")
	// ErrTreeTooLarge means the commit's files exceed Options.MaxTreeBytes.
	ErrTreeTooLarge = errors.New("tree too large")
)

// errClosed is returned by Fetch after Close.
var errClosed = errors.New("mirrors closed")

const (
	// DefaultTimeout bounds one git command when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Minute
	// DefaultMaxTreeBytes caps the files of one commit when Options.MaxTreeBytes is zero.
	DefaultMaxTreeBytes = 256 << 20
)

// Options are the tunables of NewMirrors; the zero value is usable.
type Options struct {
	// Logger receives a debug line per round of git commands. Nil discards.
	Logger *slog.Logger
	// Timeout bounds each git command; a command that runs longer fails with
	// ErrUnavailable. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxTreeBytes caps the total size of the files of one commit. Zero means
	// DefaultMaxTreeBytes.
	MaxTreeBytes int64
	// Registerer, when set, registers ferry_git_fetch_duration_seconds.
	Registerer prometheus.Registerer
	// Git is the git binary. Empty means "git" from PATH.
	Git string
}

// Credentials authenticate to a repository: Username and Password (or a token) over
// HTTPS, SSHPrivateKey and KnownHosts over SSH.
type Credentials struct {
	// Username defaults to "git" when only Password is set, which hosts accept for tokens.
	Username string
	Password string
	// SSHPrivateKey is an unencrypted private key in OpenSSH or PEM form.
	SSHPrivateKey []byte
	// KnownHosts lists the host keys to trust, in known_hosts form. Without it every SSH
	// host is refused.
	KnownHosts []byte
}

// Request names what to fetch.
type Request struct {
	// RepoURL is an https, http, ssh or git URL, or scp-like user@host:path. Userinfo in
	// an http(s) URL is used as credentials when Credentials is nil, and never shown.
	RepoURL string
	// Revision is a branch, a tag, a full or short commit SHA, or a full ref name such as
	// refs/pull/1/head. Empty or "HEAD" means the remote's default branch. A name that is both a
	// tag and a branch means the tag, as in git.
	Revision    string
	Credentials *Credentials
	// MaxAge lets the Fetch be answered by the last round of git commands with the same
	// credentials if that round started at most MaxAge before the call, succeeded, asked
	// for this revision, and no Invalidate of the repository came after it started. Zero
	// asks for a round that starts after the call, so that a push made before it is never
	// missed. A poll that runs every few minutes loses nothing by accepting an answer a few
	// seconds old, and a thousand Applications on one repository then cost the server one
	// ls-remote every MaxAge instead of one each.
	MaxAge time.Duration
}

// Artifact is one fetched commit.
type Artifact struct {
	// Revision is the commit's full SHA.
	Revision string
	// Dir holds the commit's files. It is shared by every Fetch of the commit: read it,
	// never write it. It stays until Prune removes it.
	Dir           string
	CommitMessage string
	// Author is "Name <email>".
	Author     string
	CommitTime time.Time
}

// Mirrors fetches repositories into bare mirrors under one directory. It is safe for
// concurrent use; one directory must have one Mirrors at a time.
type Mirrors struct {
	dir      string
	opts     Options
	log      *slog.Logger
	baseEnv  []string
	duration *prometheus.HistogramVec

	// ctx is the parent of every git command; Close cancels it and waits for wg.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	mirrors map[string]*mirror   // by remote.key
	trees   map[string]*treeCall // by commit SHA
}

// NewMirrors returns Mirrors keeping its mirrors and trees under dir, which it creates
// when needed.
func NewMirrors(dir string, opts Options) *Mirrors {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxTreeBytes <= 0 {
		opts.MaxTreeBytes = DefaultMaxTreeBytes
	}
	if opts.Git == "" {
		opts.Git = "git"
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mirrors{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger,
		baseEnv: baseEnv(filepath.Join(dir, "home")),
		ctx:     ctx,
		cancel:  cancel,
		mirrors: map[string]*mirror{},
		trees:   map[string]*treeCall{},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_git_fetch_duration_seconds",
			Help:    "Time to bring a repository's mirror up to date, by result: fetched (new objects), unchanged, error.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2, 13),
		}, []string{"result"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(m.duration); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				if existing, ok := already.ExistingCollector.(*prometheus.HistogramVec); ok {
					m.duration = existing
				}
			} else {
				m.log.Warn("register git metrics", "error", err)
			}
		}
	}
	return m
}

// Fetch brings req.RepoURL up to date, resolves req.Revision to a commit and returns the
// commit with its files. The answer reflects the repository as seen by git commands that
// started after Fetch was called, so a push that happened before it is never missed; with
// req.MaxAge, by git commands that started at most that long before.
//
// Errors wrap ErrAuth, ErrRepositoryNotFound, ErrRevisionNotFound, ErrUnavailable,
// ErrInvalidURL, ErrUnsafeTree or ErrTreeTooLarge when one applies, and never contain
// the credentials.
func (m *Mirrors) Fetch(ctx context.Context, req Request) (Artifact, error) {
	rev := normalizeRevision(req.Revision)
	r, err := parseRemote(req.RepoURL)
	if err != nil {
		return Artifact{}, fmt.Errorf("fetch %s@%s: %w", RedactURL(req.RepoURL), revisionName(rev), err)
	}
	fail := func(err error) (Artifact, error) {
		return Artifact{}, fmt.Errorf("fetch %s@%s: %w", r.redacted, revisionName(rev), err)
	}
	if err := validateRevision(rev); err != nil {
		return fail(err)
	}
	creds := req.Credentials
	if creds == nil {
		creds = r.userinfo
	}
	mir, sha, err := m.resolve(ctx, r, creds, rev, req.MaxAge)
	if err != nil {
		return fail(err)
	}
	t, err := m.tree(ctx, mir, sha)
	if err != nil {
		return fail(err)
	}
	return Artifact{
		Revision:      sha,
		Dir:           m.treeDir(sha),
		CommitMessage: t.message,
		Author:        t.author,
		CommitTime:    t.time,
	}, nil
}

// Invalidate says that repoURL changed (a push webhook arrived): no Fetch is answered from
// a round that started before this call.
func (m *Mirrors) Invalidate(repoURL string) {
	r, err := parseRemote(repoURL)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mir := m.mirrors[r.key]; mir != nil {
		mir.invalidated = time.Now()
	}
}

// Close stops the git commands in flight and waits for them to end. Fetch fails after
// Close; the directory stays for the next Mirrors.
func (m *Mirrors) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// revisionName is how errors show a revision.
func revisionName(rev string) string {
	if rev == "" {
		return "HEAD"
	}
	return rev
}

func (m *Mirrors) treeDir(sha string) string { return filepath.Join(m.dir, "trees", sha) }

// gitPath resolves Options.Git once per command; exec.LookPath is cheap and follows PATH
// changes.
func (m *Mirrors) gitPath() (string, error) {
	p, err := exec.LookPath(m.opts.Git)
	if err != nil {
		return "", fmt.Errorf("find git: %w", err)
	}
	return p, nil
}

// mkdir creates a directory of Mirrors' own, private to this user.
func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
