package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/ignore"
)

// helm renders the chart in dir, a real directory inside the root, as `helm template
// --include-crds` would.
func (r *renderer) helm(ctx context.Context, dir string, h Helm) error {
	file := r.tree.rel(dir)
	fail := func(err error) error { return &Error{File: file, Err: err} }
	if err := chartutil.ValidateReleaseName(h.ReleaseName); err != nil {
		return fail(fmt.Errorf("%w: helm release name %q: %w", ErrOptions, h.ReleaseName, err))
	}
	namespace := h.Namespace
	if namespace == "" {
		namespace = "default"
	}

	files, err := r.chartFiles(ctx, dir)
	if err != nil {
		return err
	}
	chrt, err := loader.LoadFiles(files)
	if err != nil {
		return fail(fmt.Errorf("load chart: %w", err))
	}
	if chrt.Metadata.Type == "library" {
		return fail(errors.New("library charts cannot be rendered"))
	}
	if err := checkDependencies(chrt); err != nil {
		return fail(err)
	}
	vals, err := r.helmValues(dir, h)
	if err != nil {
		return err
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return fail(fmt.Errorf("chart dependencies: %w", err))
	}
	caps := chartutil.DefaultCapabilities
	if kv := chrt.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return fail(fmt.Errorf("chart requires kubeVersion %s, incompatible with %s", kv, caps.KubeVersion.String()))
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{
		Name: h.ReleaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// An Engine without a client answers lookup with an empty result; EnableDNS stays false.
	manifests, err := engine.Engine{}.Render(chrt, top)
	if err != nil {
		return fail(fmt.Errorf("helm template: %w", err))
	}

	// Rendered names start with the chart's name, not the directory's.
	inRepo := func(name string) string {
		_, rest, _ := strings.Cut(name, "/")
		return path.Join(file, rest)
	}
	for _, crd := range chrt.CRDObjects() {
		if err := r.decode(ctx, inRepo(filepath.ToSlash(crd.Filename)), crd.File.Data); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(manifests))
	for name := range manifests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := manifests[name]
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(path.Base(name), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		if int64(len(content)) > r.tree.maxFile {
			return &Error{File: inRepo(name), Err: fmt.Errorf("%w: rendered manifest has %d bytes, the limit is %d", ErrTooLarge, len(content), r.tree.maxFile)}
		}
		if err := r.tree.charge(int64(len(content))); err != nil {
			return &Error{File: inRepo(name), Err: err}
		}
		if err := r.decode(ctx, inRepo(name), []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// chartFiles reads the chart in dir as Helm's directory loader does, honouring .helmignore,
// but through the tree: confined to the root and within the limits.
func (r *renderer) chartFiles(ctx context.Context, dir string) ([]*loader.BufferedFile, error) {
	rules := ignore.Empty()
	if ifile := filepath.Join(dir, ignore.HelmIgnore); isRegular(ifile) {
		data, err := r.tree.readFile(ifile)
		if err != nil {
			return nil, &Error{File: r.tree.rel(ifile), Err: err}
		}
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, &Error{File: r.tree.rel(ifile), Err: err}
		}
	}
	rules.AddDefaults()

	var files []*loader.BufferedFile
	err := r.tree.walk(ctx, dir, func(rel, file, real string, info fs.FileInfo) (bool, error) {
		if rules.Ignore(rel, info) {
			return false, nil
		}
		if info.IsDir() {
			return true, nil
		}
		if !info.Mode().IsRegular() {
			return false, &Error{File: file, Err: errors.New("chart contains an irregular file")}
		}
		data, err := r.tree.readFile(real)
		if err != nil {
			return false, &Error{File: file, Err: err}
		}
		files = append(files, &loader.BufferedFile{Name: rel, Data: bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))})
		return false, nil
	})
	return files, err
}

// checkDependencies requires every dependency in Chart.yaml, at any depth, to be vendored.
func checkDependencies(c *chart.Chart) error {
	for _, req := range c.Metadata.Dependencies {
		found := false
		for _, d := range c.Dependencies() {
			if d.Name() == req.Name {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("chart %s: dependency %s is not vendored in charts/", c.Name(), req.Name)
		}
	}
	for _, d := range c.Dependencies() {
		if err := checkDependencies(d); err != nil {
			return err
		}
	}
	return nil
}

// helmValues merges the values files in order, then the inline values, as `helm template -f
// a.yaml -f b.yaml --set-json ...` would. The chart's own values.yaml is merged under them by
// Helm itself.
func (r *renderer) helmValues(dir string, h Helm) (map[string]any, error) {
	vals := map[string]any{}
	for _, vf := range h.ValuesFiles {
		real, err := r.tree.resolve(dir, vf)
		if err != nil {
			return nil, &Error{File: path.Join(r.tree.rel(dir), filepath.ToSlash(vf)), Err: fmt.Errorf("values file: %w", err)}
		}
		file := r.tree.rel(real)
		data, err := r.tree.readFile(real)
		if err != nil {
			return nil, &Error{File: file, Err: err}
		}
		// Walk the document with the alias budget first; Helm's own parser has none.
		if doc, err := r.boundAliases(data); err != nil {
			return nil, &Error{File: file, Doc: doc, Err: err}
		}
		v, err := chartutil.ReadValues(data)
		if err != nil {
			return nil, &Error{File: file, Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
		}
		vals = mergeMaps(vals, v)
	}
	if h.Values != nil {
		vals = mergeMaps(vals, copyValue(h.Values).(map[string]any))
	}
	return vals, nil
}

// mergeMaps returns a merged with b: b wins, except where both hold a map, which are merged.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// copyValue deep-copies maps and slices so Helm never changes the caller's values.
func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			out[k] = copyValue(v)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = copyValue(v)
		}
		return out
	default:
		return v
	}
}
