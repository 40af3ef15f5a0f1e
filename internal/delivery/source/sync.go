package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// mirror is one repository's bare mirror.
type mirror struct {
	dir string
	// sem is held by the round that runs: one round, and so one writer, per mirror.
	sem chan struct{}
	// pending are the rounds not started yet, by credentials fingerprint, and waiting
	// counts the Fetches waiting on any round of this mirror; both guarded by Mirrors.mu.
	pending map[string]*round
	waiting int
	// last are the newest successful rounds, by credentials fingerprint, and invalidated
	// is when Invalidate last named the repository; both guarded by Mirrors.mu.
	last        map[string]*round
	invalidated time.Time
	// ready is set once the mirror exists on disk; guarded by sem.
	ready bool
}

// round is one pass of git commands over a mirror, shared by every Fetch that asked
// before it started. Fetches with other credentials never share a round: each set of
// credentials must prove itself to the server.
type round struct {
	remote remote
	creds  *Credentials
	wants  map[string]bool // revisions; guarded by Mirrors.mu until the round starts
	// started is when the round's git commands began; set under Mirrors.mu.
	started time.Time

	done    chan struct{}
	answers map[string]answer // by revision; valid once done is closed
	err     error             // a failure of the whole round
}

// answer is what a round found for one revision.
type answer struct {
	sha string
	err error
}

// resolve resolves rev in a round that starts after the call, joining a round that has
// not started yet or queueing a new one; or, with maxAge, in the last round if it is recent
// enough (Request.MaxAge).
func (m *Mirrors) resolve(ctx context.Context, r remote, creds *Credentials, rev string, maxAge time.Duration) (*mirror, string, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, "", errClosed
	}
	mir := m.mirrors[r.key]
	if mir == nil {
		mir = &mirror{
			dir:     filepath.Join(m.dir, "repos", r.mirrorName()),
			sem:     make(chan struct{}, 1),
			pending: map[string]*round{},
			last:    map[string]*round{},
		}
		m.mirrors[r.key] = mir
	}
	fp := fingerprint(creds)
	if last := mir.last[fp]; maxAge > 0 && last != nil && last.started.After(mir.invalidated) &&
		time.Since(last.started) <= maxAge {
		if a, ok := last.answers[rev]; ok && a.err == nil {
			m.mu.Unlock()
			return mir, a.sha, nil
		}
	}
	rd := mir.pending[fp]
	if rd == nil {
		rd = &round{remote: r, creds: creds, wants: map[string]bool{}, done: make(chan struct{})}
		mir.pending[fp] = rd
		m.wg.Add(1)
		go m.runRound(mir, fp, rd)
	}
	rd.wants[rev] = true
	mir.waiting++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		mir.waiting--
		m.mu.Unlock()
	}()

	select {
	case <-rd.done:
	case <-ctx.Done():
		return nil, "", context.Cause(ctx)
	}
	if rd.err != nil {
		return nil, "", rd.err
	}
	a := rd.answers[rev]
	return mir, a.sha, a.err
}

// fingerprint tells credentials apart without keeping them.
func fingerprint(c *Credentials) string {
	if c == nil {
		return ""
	}
	h := sha256.New()
	for _, field := range [][]byte{[]byte(c.Username), []byte(c.Password), c.SSHPrivateKey, c.KnownHosts} {
		fmt.Fprintf(h, "%d:", len(field))
		h.Write(field)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runRound waits for the mirror's running round to end, then runs rd. The round belongs
// to Mirrors, not to the Fetch that queued it, so a caller giving up does not fail the
// others; Close ends it.
func (m *Mirrors) runRound(mir *mirror, fp string, rd *round) {
	defer m.wg.Done()
	defer close(rd.done)
	select {
	case mir.sem <- struct{}{}:
	case <-m.ctx.Done():
		m.mu.Lock()
		delete(mir.pending, fp)
		m.mu.Unlock()
		rd.err = errClosed
		return
	}
	defer func() { <-mir.sem }()

	m.mu.Lock()
	delete(mir.pending, fp) // from here on, a Fetch queues the next round
	wants := slices.Sorted(maps.Keys(rd.wants))
	rd.started = time.Now()
	m.mu.Unlock()

	answers, fetched, err := m.sync(m.ctx, mir, rd.remote, rd.creds, wants)
	elapsed := time.Since(rd.started)
	result := "unchanged"
	switch {
	case err != nil:
		result = "error"
	case fetched:
		result = "fetched"
	}
	m.duration.WithLabelValues(result).Observe(elapsed.Seconds())
	attrs := []any{"repo", rd.remote.redacted, "revisions", wants, "result", result, "duration", elapsed}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	m.log.Debug("git sync", attrs...)
	rd.answers, rd.err = answers, err
	if err == nil {
		m.mu.Lock()
		if prev := mir.last[fp]; prev == nil || prev.started.Before(rd.started) {
			mir.last[fp] = rd
		}
		m.mu.Unlock()
	}
}

// sync brings the mirror up to date for wants and resolves each to a commit: ls-remote
// tells what the names point at; only commits the mirror lacks are fetched, shallow.
// fetched reports whether objects were fetched.
func (m *Mirrors) sync(ctx context.Context, mir *mirror, r remote, creds *Credentials, wants []string) (_ map[string]answer, fetched bool, _ error) {
	if err := m.ensureMirror(ctx, mir); err != nil {
		return nil, false, err
	}
	acc, err := newAccess(r, creds)
	if err != nil {
		return nil, false, err
	}
	defer acc.close()
	g := gitRun{gitDir: mir.dir, access: acc}

	// Even a round for commit SHAs alone asks the server, so every Fetch proves its
	// credentials and sees the repository as it is now.
	var patterns []string
	for _, w := range wants {
		switch {
		case w == "":
			patterns = append(patterns, "HEAD")
		case !isFullSHA(w):
			patterns = append(patterns, refCandidates(w)...)
		}
	}
	if len(patterns) == 0 {
		patterns = []string{"HEAD"}
	}
	out, err := m.run(ctx, g, append([]string{"ls-remote", "--symref", "--end-of-options", r.url}, patterns...)...)
	if err != nil {
		return nil, false, err
	}
	refs, err := parseLsRemote(out)
	if err != nil {
		return nil, false, fmt.Errorf("git ls-remote: %w", err)
	}

	// Names to commits; ref is what to fetch, or empty to fetch the commit itself.
	type target struct{ ref, sha string }
	answers := map[string]answer{}
	targets := map[string]target{}
	var short []string
	for _, w := range wants {
		switch {
		case isFullSHA(w):
			targets[w] = target{sha: w}
		case w == "":
			sha, ok := refs.commit("HEAD")
			if !ok {
				answers[w] = answer{err: fmt.Errorf("no default branch: %w", ErrRevisionNotFound)}
				continue
			}
			ref := refs.symrefs["HEAD"]
			if s, ok := refs.commit(ref); !ok || s != sha {
				ref = "" // HEAD's branch was not listed: fetch the commit
			}
			targets[w] = target{ref: ref, sha: sha}
		default:
			found := false
			for _, ref := range refCandidates(w) {
				if sha, ok := refs.commit(ref); ok {
					targets[w], found = target{ref: ref, sha: sha}, true
					break
				}
			}
			switch {
			case found:
			case len(w) >= minShortSHA && isHex(w):
				short = append(short, w)
			default:
				answers[w] = answer{err: fmt.Errorf("no branch or tag %q: %w", w, ErrRevisionNotFound)}
			}
		}
	}

	shas := make([]string, 0, len(targets))
	for _, t := range targets {
		shas = append(shas, t.sha)
	}
	missing, err := m.missing(ctx, g, shas)
	if err != nil {
		return nil, false, err
	}
	var refspecs, commits []string
	for _, t := range targets {
		switch {
		case !missing[t.sha]:
		case t.ref != "":
			refspecs = append(refspecs, "+"+t.ref+":"+t.ref)
		default:
			commits = append(commits, t.sha)
		}
	}
	slices.Sort(refspecs)
	refspecs = slices.Compact(refspecs)
	slices.Sort(commits)
	commits = slices.Compact(commits)

	if len(refspecs) > 0 {
		if err := m.fetch(ctx, mir, r, g, refspecs); err != nil {
			return nil, false, err
		}
		fetched = true
		// A ref that moved since ls-remote now holds a newer commit, also fine to serve.
		for w, t := range targets {
			if t.ref != "" && missing[t.sha] {
				sha, err := m.run(ctx, g, "rev-parse", "--verify", "--end-of-options", t.ref+"^{commit}")
				if err != nil {
					return nil, fetched, err
				}
				targets[w] = target{ref: t.ref, sha: strings.TrimSpace(sha)}
			}
		}
	}

	complete := false // the whole history has been fetched in this round
	if len(commits) > 0 {
		err := m.fetch(ctx, mir, r, g, commits)
		switch {
		case err == nil:
		case errors.Is(err, ErrAuth), errors.Is(err, ErrUnavailable), errors.Is(err, ErrRepositoryNotFound), errors.Is(err, errClosed):
			return nil, fetched, err
		default:
			// The server does not hand out commits by SHA, or has no such commit among
			// its branch tips: look in the whole history.
			if err := m.fetchAll(ctx, mir, r, g); err != nil {
				return nil, fetched, err
			}
			complete = true
		}
		fetched = true
		if missing, err = m.missing(ctx, g, commits); err != nil {
			return nil, fetched, err
		}
		for w, t := range targets {
			if missing[t.sha] {
				delete(targets, w)
				answers[w] = answer{err: fmt.Errorf("no commit %s: %w", t.sha, ErrRevisionNotFound)}
			}
		}
	}
	for w, t := range targets {
		answers[w] = answer{sha: t.sha}
	}

	for _, w := range short {
		sha, err := m.resolveShort(ctx, g, w)
		if errors.Is(err, errNoObject) && !complete {
			if err := m.fetchAll(ctx, mir, r, g); err != nil {
				return nil, fetched, err
			}
			complete, fetched = true, true
			sha, err = m.resolveShort(ctx, g, w)
		}
		switch {
		case errors.Is(err, errNoObject):
			answers[w] = answer{err: fmt.Errorf("no branch, tag or commit %q: %w", w, ErrRevisionNotFound)}
		case errors.Is(err, errAmbiguous):
			answers[w] = answer{err: fmt.Errorf("short SHA %s matches several commits: %w", w, ErrRevisionNotFound)}
		case err != nil:
			return nil, fetched, err
		default:
			answers[w] = answer{sha: sha}
		}
	}
	return answers, fetched, nil
}

// refCandidates are the refs a name may mean, in git's order of precedence.
func refCandidates(name string) []string {
	if strings.HasPrefix(name, "refs/") {
		return []string{name}
	}
	return []string{"refs/" + name, "refs/tags/" + name, "refs/heads/" + name}
}

// fullMarker, in a mirror, records that it holds the whole history: fetching shallow
// again would cut it.
const fullMarker = "ferry-full-history"

// fetch fetches refspecs (refs or commit SHAs) into the mirror, only the commits
// themselves while the mirror is shallow.
func (m *Mirrors) fetch(ctx context.Context, mir *mirror, r remote, g gitRun, refspecs []string) error {
	args := []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"}
	if _, err := os.Stat(filepath.Join(mir.dir, fullMarker)); err != nil {
		args = append(args, "--depth=1")
	}
	args = append(args, "--end-of-options", r.url)
	_, err := m.run(ctx, g, append(args, refspecs...)...)
	return err
}

// fetchAll fetches the whole history of every branch and tag.
func (m *Mirrors) fetchAll(ctx context.Context, mir *mirror, r remote, g gitRun) error {
	args := []string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"}
	if _, err := os.Stat(filepath.Join(mir.dir, "shallow")); err == nil {
		args = append(args, "--unshallow")
	}
	args = append(args, "--end-of-options", r.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	if _, err := m.run(ctx, g, args...); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mir.dir, fullMarker), nil, 0o600); err != nil {
		return fmt.Errorf("mark mirror complete: %w", err)
	}
	return nil
}

// missing reports which of shas the mirror does not hold as commits.
func (m *Mirrors) missing(ctx context.Context, g gitRun, shas []string) (map[string]bool, error) {
	missing := map[string]bool{}
	if len(shas) == 0 {
		return missing, nil
	}
	g.stdin = strings.NewReader(strings.Join(shas, "\n") + "\n")
	out, err := m.run(ctx, g, "cat-file", "--batch-check=%(objectname) %(objecttype)")
	if err != nil {
		return nil, err
	}
	for _, sha := range shas {
		missing[sha] = true
	}
	for _, line := range strings.Split(out, "\n") {
		if sha, typ, ok := strings.Cut(line, " "); ok && typ == "commit" {
			delete(missing, sha)
		}
	}
	return missing, nil
}

var (
	errNoObject  = errors.New("no such commit")
	errAmbiguous = errors.New("ambiguous short SHA")
)

// resolveShort resolves a short SHA among the commits the mirror holds.
func (m *Mirrors) resolveShort(ctx context.Context, g gitRun, prefix string) (string, error) {
	out, err := m.run(ctx, g, "rev-parse", "--verify", "--end-of-options", prefix+"^{commit}")
	if err == nil {
		return strings.TrimSpace(out), nil
	}
	var gerr *gitError
	if !errors.As(err, &gerr) || errors.Is(err, ErrUnavailable) || errors.Is(err, errClosed) {
		return "", err
	}
	if strings.Contains(gerr.stderr, "ambiguous") {
		return "", errAmbiguous
	}
	return "", errNoObject
}

// ensureMirror creates the bare mirror on first use: atomically, so a crash never leaves
// a half-made one.
func (m *Mirrors) ensureMirror(ctx context.Context, mir *mirror) error {
	if mir.ready {
		return nil
	}
	if _, err := os.Stat(filepath.Join(mir.dir, "HEAD")); err == nil {
		mir.ready = true
		return nil
	}
	parent := filepath.Dir(mir.dir)
	for _, dir := range []string{parent, filepath.Join(m.dir, "home")} {
		if err := mkdir(dir); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return fmt.Errorf("create mirror: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if _, err := m.run(ctx, gitRun{}, "init", "--quiet", "--bare", "--template=", "--end-of-options", tmp); err != nil {
		return err
	}
	// Maintenance in the foreground, so no git outlives Close; no reflogs to grow.
	config := "[gc]\n\tautoDetach = false\n[maintenance]\n\tautoDetach = false\n[core]\n\tlogAllRefUpdates = false\n"
	f, err := os.OpenFile(filepath.Join(tmp, "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure mirror: %w", err)
	}
	_, err = f.WriteString(config)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configure mirror: %w", err)
	}
	// git archive must export the files as committed: ignore export-ignore and
	// export-subst attributes of the tree.
	if err := os.MkdirAll(filepath.Join(tmp, "info"), 0o700); err != nil {
		return fmt.Errorf("configure mirror: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "info", "attributes"), []byte("* -export-ignore -export-subst\n"), 0o600); err != nil {
		return fmt.Errorf("configure mirror: %w", err)
	}
	if err := os.Rename(tmp, mir.dir); err != nil {
		return fmt.Errorf("create mirror: %w", err)
	}
	mir.ready = true
	return nil
}
