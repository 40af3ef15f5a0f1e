package render

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/gobwas/glob"
)

// directory renders the manifests in dir, a real directory inside the root.
func (r *renderer) directory(ctx context.Context, dir string, d Directory) error {
	include, err := compileGlobs("include", d.Include)
	if err != nil {
		return err
	}
	exclude, err := compileGlobs("exclude", d.Exclude)
	if err != nil {
		return err
	}
	return r.tree.walk(ctx, dir, func(rel, file, real string, info fs.FileInfo) (bool, error) {
		name := path.Base(rel)
		if strings.HasPrefix(name, ".") {
			return false, nil
		}
		if info.IsDir() {
			return d.Recurse, nil
		}
		if !info.Mode().IsRegular() {
			return false, nil
		}
		switch strings.ToLower(path.Ext(name)) {
		case ".yaml", ".yml", ".json":
		default:
			return false, nil
		}
		if (len(include) > 0 && !include.match(rel)) || exclude.match(rel) {
			return false, nil
		}
		data, err := r.tree.readFile(real)
		if err != nil {
			return false, &Error{File: file, Err: err}
		}
		return false, r.decode(ctx, file, data)
	})
}

type pattern struct {
	g        glob.Glob
	baseName bool // the pattern has no "/", so it also matches base names
}

type globs []pattern

func compileGlobs(field string, patterns []string) (globs, error) {
	out := make(globs, 0, len(patterns))
	for _, p := range patterns {
		g, err := glob.Compile(p, '/')
		if err != nil {
			return nil, &Error{Err: fmt.Errorf("%w: directory %s glob %q: %w", ErrOptions, field, p, err)}
		}
		out = append(out, pattern{g: g, baseName: !strings.Contains(p, "/")})
	}
	return out, nil
}

func (gs globs) match(rel string) bool {
	for _, p := range gs {
		if p.g.Match(rel) || (p.baseName && p.g.Match(path.Base(rel))) {
			return true
		}
	}
	return false
}
