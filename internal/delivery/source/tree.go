package source

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// treeCall exports one commit's tree; finished calls stay as the cache of commit details.
type treeCall struct {
	done   chan struct{}
	commit commitInfo // valid once done is closed
	err    error
}

// commitInfo is what an Artifact tells about its commit.
type commitInfo struct {
	author, message string
	time            time.Time
}

// tree makes sure dir/trees/<sha> holds the commit's files, exporting them once however
// many Fetches ask at the same time.
func (m *Mirrors) tree(ctx context.Context, mir *mirror, sha string) (commitInfo, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return commitInfo{}, errClosed
	}
	c := m.trees[sha]
	if c == nil {
		c = &treeCall{done: make(chan struct{})}
		m.trees[sha] = c
		m.wg.Add(1)
		go m.export(mir, sha, c)
	}
	m.mu.Unlock()
	select {
	case <-c.done:
		return c.commit, c.err
	case <-ctx.Done():
		return commitInfo{}, context.Cause(ctx)
	}
}

// export runs one treeCall. A failure is not cached: the next Fetch tries again.
func (m *Mirrors) export(mir *mirror, sha string, c *treeCall) {
	defer m.wg.Done()
	defer close(c.done)
	c.commit, c.err = m.exportTree(m.ctx, mir, sha)
	if c.err != nil {
		m.mu.Lock()
		if m.trees[sha] == c {
			delete(m.trees, sha)
		}
		m.mu.Unlock()
	}
}

func (m *Mirrors) exportTree(ctx context.Context, mir *mirror, sha string) (commitInfo, error) {
	g := gitRun{gitDir: mir.dir}
	out, err := m.run(ctx, g, "show", "--no-patch", "--no-show-signature", "--format=%an <%ae>%x00%cI%x00%B", sha)
	if err != nil {
		return commitInfo{}, err
	}
	info, err := parseCommitInfo(out)
	if err != nil {
		return commitInfo{}, fmt.Errorf("read commit %s: %w", sha, err)
	}

	dst := m.treeDir(sha)
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return info, nil // exported before, maybe by an earlier process: renames are atomic
	}
	trees := filepath.Dir(dst)
	if err := mkdir(trees); err != nil {
		return commitInfo{}, err
	}
	tmp, err := os.MkdirTemp(trees, ".tmp-"+sha+"-")
	if err != nil {
		return commitInfo{}, fmt.Errorf("export %s: %w", sha, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename

	pr, pw := io.Pipe()
	gitErr := make(chan error, 1)
	go func() {
		g := g
		g.stdout = pw
		_, err := m.run(ctx, g, "archive", "--format=tar", sha)
		pw.CloseWithError(err)
		gitErr <- err
	}()
	xerr := extract(pr, tmp, m.opts.MaxTreeBytes)
	if xerr == nil {
		_, xerr = io.Copy(io.Discard, pr) // git pads the archive after its end
	}
	pr.CloseWithError(io.ErrClosedPipe) // stops git early when extract gave up
	gerr := <-gitErr
	switch {
	case errors.Is(xerr, ErrUnsafeTree), errors.Is(xerr, ErrTreeTooLarge):
		return commitInfo{}, fmt.Errorf("export %s: %w", sha, xerr)
	case gerr != nil:
		return commitInfo{}, gerr
	case xerr != nil:
		return commitInfo{}, fmt.Errorf("export %s: %w", sha, xerr)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if fi, serr := os.Stat(dst); serr == nil && fi.IsDir() {
			return info, nil // another exporter of the same directory won
		}
		return commitInfo{}, fmt.Errorf("export %s: %w", sha, err)
	}
	return info, nil
}

// parseCommitInfo reads git show's "author NUL committer-date NUL message".
func parseCommitInfo(out string) (commitInfo, error) {
	parts := strings.SplitN(out, "\x00", 3)
	if len(parts) != 3 {
		return commitInfo{}, errors.New("unexpected git show output")
	}
	t, err := time.Parse(time.RFC3339, parts[1])
	if err != nil {
		return commitInfo{}, fmt.Errorf("commit time: %w", err)
	}
	return commitInfo{author: parts[0], time: t, message: strings.TrimRight(parts[2], "\n")}, nil
}

// extract writes a tar archive of a commit into dir, refusing paths that leave it,
// symlinks that lead out of it, and more than maxBytes of file content. Files are
// written read-only. The archive comes from the repository, that is, from whoever can
// push to it.
func extract(r io.Reader, dir string, maxBytes int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()

	type link struct{ name, target string }
	var links []link
	var total int64
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // git's pax header carrying the commit id
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > maxBytes-total {
				return fmt.Errorf("files exceed %d bytes at %s: %w", maxBytes, name, ErrTreeTooLarge)
			}
			total += hdr.Size
			if err := writeFile(root, name, hdr, tr); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := checkLink(name, hdr.Linkname); err != nil {
				return err
			}
			links = append(links, link{name, hdr.Linkname})
		default:
			return fmt.Errorf("%s: tar entry type %q: %w", name, hdr.Typeflag, ErrUnsafeTree)
		}
	}
	// Links last, so no file is ever written through one; then resolve each for real,
	// since a link through another link can leave the tree where the text says it stays.
	for _, l := range links {
		if d := path.Dir(l.name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := root.Symlink(l.target, l.name); err != nil {
			return err
		}
	}
	for _, l := range links {
		if _, err := root.Stat(l.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("symlink %s -> %s does not resolve inside the tree: %w", l.name, l.target, ErrUnsafeTree)
		}
	}
	return nil
}

func writeFile(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	perm := fs.FileMode(0o444)
	if hdr.Mode&0o111 != 0 {
		perm = 0o555
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanName checks that an archive path stays inside the tree.
func cleanName(name string) (string, error) {
	name = strings.TrimSuffix(name, "/")
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("path %q: %w", name, ErrUnsafeTree)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("path %q: %w", name, ErrUnsafeTree)
		}
	}
	return name, nil
}

// checkLink refuses symlinks whose text points outside the tree: absolute, or climbing
// above the root.
func checkLink(name, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("symlink %s -> %s leads outside the tree: %w", name, target, ErrUnsafeTree)
	}
	if p := path.Join(path.Dir(name), target); p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("symlink %s -> %s leads outside the tree: %w", name, target, ErrUnsafeTree)
	}
	return nil
}

// Prune removes the exported trees for which keep returns false, and leftovers of
// interrupted exports. A tree being exported stays. Callers must keep every tree still
// being read: Prune cannot tell. A later Fetch of a pruned commit exports it again.
func (m *Mirrors) Prune(keep func(sha string) bool) (removed int, err error) {
	trees := filepath.Join(m.dir, "trees")
	entries, err := os.ReadDir(trees)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune trees: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		sha, isTree := name, isFullSHA(name)
		if !isTree {
			// .tmp-<sha>-<random> of an export, or .prune-* of an earlier Prune.
			rest, ok := strings.CutPrefix(name, ".tmp-")
			if !ok && !strings.HasPrefix(name, ".prune-") {
				continue
			}
			sha, _, _ = strings.Cut(rest, "-")
		} else if keep(sha) {
			continue
		}
		m.mu.Lock()
		c := m.trees[sha]
		if c != nil && !isDone(c.done) {
			m.mu.Unlock()
			continue
		}
		victim := filepath.Join(trees, name)
		if isTree {
			delete(m.trees, sha)
			// Out of the way before unlocking, so a Fetch from now on exports anew.
			old, err := os.MkdirTemp(trees, ".prune-")
			if err == nil {
				err = os.Rename(victim, filepath.Join(old, name))
			}
			if err != nil {
				m.mu.Unlock()
				errs = append(errs, err)
				continue
			}
			victim = old
		}
		m.mu.Unlock()
		if err := os.RemoveAll(victim); err != nil {
			errs = append(errs, err)
			continue
		}
		if isTree {
			removed++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("prune trees: %w", err)
	}
	return removed, nil
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
