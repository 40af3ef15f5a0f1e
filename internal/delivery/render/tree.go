package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// tree is the read-only checkout being rendered: every path it hands out is inside root, and
// every byte it reads counts against the limits of one Render call.
type tree struct {
	root    string // absolute, symlinks resolved
	maxFile int64

	mu   sync.Mutex
	left int64 // bytes the render may still read or render
}

// openTree resolves root. Its failures are not *Error: a missing checkout is not a problem
// of the commit's content.
func openTree(root string, maxFile, maxTotal int64) (*tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", root, err)
	}
	if !isDir(real) {
		return nil, fmt.Errorf("repository root %s: not a directory", root)
	}
	return &tree{root: real, maxFile: maxFile, left: maxTotal}, nil
}

// inside reports whether the absolute, cleaned path p is root or below it.
func (t *tree) inside(p string) bool {
	if p == t.root {
		return true
	}
	prefix := t.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	return strings.HasPrefix(p, prefix)
}

// rel returns p, a path inside root, relative to root with slashes ("." for root itself).
func (t *tree) rel(p string) string {
	r, err := filepath.Rel(t.root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

// resolve returns the real path of p, taken relative to base (a real path inside root), and
// fails with ErrPathEscape if it is absolute or resolves outside root. Symlinks are resolved
// component by component, so "link/.." means what the operating system says it means.
func (t *tree) resolve(base, p string) (string, error) {
	if filepath.IsAbs(p) || filepath.VolumeName(p) != "" {
		return "", fmt.Errorf("%w: %s is absolute", ErrPathEscape, p)
	}
	joined := base + string(filepath.Separator) + filepath.FromSlash(p)
	real, err := filepath.EvalSymlinks(joined)
	if err != nil {
		if !t.inside(filepath.Clean(joined)) {
			return "", fmt.Errorf("%w: %s", ErrPathEscape, p)
		}
		return "", fmt.Errorf("%s: %w", p, pathErr(err))
	}
	if !t.inside(real) {
		return "", fmt.Errorf("%w: %s", ErrPathEscape, p)
	}
	return real, nil
}

// charge counts n more bytes against the total limit.
func (t *tree) charge(n int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > t.left {
		return fmt.Errorf("%w: the render reads or renders more than its total byte limit", ErrTooLarge)
	}
	t.left -= n
	return nil
}

// readFile reads the regular file at real, a path inside root, within the file and total
// limits; it fails before reading when the file is known to be too large.
func (t *tree) readFile(real string) ([]byte, error) {
	f, err := os.Open(real)
	if err != nil {
		return nil, pathErr(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() > t.maxFile {
		return nil, fmt.Errorf("%w: file has %d bytes, the limit is %d", ErrTooLarge, info.Size(), t.maxFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, t.maxFile+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > t.maxFile {
		return nil, fmt.Errorf("%w: file has more than %d bytes", ErrTooLarge, t.maxFile)
	}
	if err := t.charge(int64(len(data))); err != nil {
		return nil, err
	}
	return data, nil
}

// visitFunc is called by walk for every entry below the start directory. rel is the entry's
// slash path relative to the start, as reached through symlinked directories; file is its
// path relative to the root within the real directory that holds it, for messages; real is
// where it resolves to and info describes that. For a directory, descend says whether to
// walk into it.
type visitFunc func(rel, file, real string, info fs.FileInfo) (descend bool, err error)

// walk visits the entries below start (a real directory inside root) in lexical order,
// depth first, following symlinks that stay inside root. A symlink that leads outside root is
// an ErrPathEscape; a symlink back into a directory being walked is an error.
func (t *tree) walk(ctx context.Context, start string, visit visitFunc) error {
	return t.walkDir(ctx, start, "", map[string]bool{start: true}, visit)
}

func (t *tree) walkDir(ctx context.Context, dir, rel string, active map[string]bool, visit visitFunc) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &Error{File: t.rel(dir), Err: pathErr(err)}
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		lexical := filepath.Join(dir, e.Name())
		childRel := path.Join(rel, e.Name())
		real := lexical
		if e.Type()&fs.ModeSymlink != 0 {
			real, err = filepath.EvalSymlinks(lexical)
			if err != nil {
				return &Error{File: t.rel(lexical), Err: fmt.Errorf("symlink: %w", pathErr(err))}
			}
			if !t.inside(real) {
				return &Error{File: t.rel(lexical), Err: fmt.Errorf("%w: symlink leads outside the repository", ErrPathEscape)}
			}
		}
		info, err := os.Stat(real)
		if err != nil {
			return &Error{File: t.rel(lexical), Err: pathErr(err)}
		}
		descend, err := visit(childRel, t.rel(lexical), real, info)
		if err != nil {
			return err
		}
		if !info.IsDir() || !descend {
			continue
		}
		if active[real] {
			return &Error{File: t.rel(lexical), Err: errors.New("symlink cycle")}
		}
		active[real] = true
		err = t.walkDir(ctx, real, childRel, active, visit)
		delete(active, real)
		if err != nil {
			return err
		}
	}
	return nil
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// pathErr strips the operation and path from a *fs.PathError, which would otherwise put
// absolute server paths into messages meant for the repository's authors.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cleanRel is the slash form of a caller-supplied relative path, for error messages.
func cleanRel(p string) string {
	return path.Clean(filepath.ToSlash(p))
}
