package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomize renders the kustomization in dir, a real directory inside the root.
//
// krusty would clone a git remote with the git binary, or fetch an http(s) URL, before any
// file system call, so a confined file system alone cannot stop it: every kustomization
// reachable from dir is first scanned for remote references. The confined file system then
// keeps every read inside the root and within the limits.
func (r *renderer) kustomize(ctx context.Context, dir string) error {
	if err := r.scanKustomization(ctx, dir, false, map[string]bool{}); err != nil {
		return err
	}
	fsys := &confinedFS{r: r, disk: filesys.MakeFsOnDisk()}
	k := krusty.MakeKustomizer(&krusty.Options{
		Reorder:          krusty.ReorderOptionUnspecified, // as `kustomize build`: sortOptions, else legacy order
		LoadRestrictions: types.LoadRestrictionsRootOnly,
		PluginConfig:     types.DisabledPluginConfig(),
	})
	resources, err := k.Run(fsys, dir)
	if err := ctx.Err(); err != nil {
		return err
	}
	if violation := fsys.violation(); violation != nil {
		return violation
	}
	file := r.tree.rel(dir)
	if err != nil {
		// kustomize's messages carry absolute paths; the repository's authors know only theirs.
		msg := strings.ReplaceAll(err.Error(), r.tree.root+string(filepath.Separator), "")
		return &Error{File: file, Err: errors.New("kustomize: " + msg)}
	}
	for _, res := range resources.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			return &Error{File: file, Err: fmt.Errorf("kustomize output %s: %w", res.CurId(), err)}
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(data, &obj); err != nil {
			return &Error{File: file, Err: fmt.Errorf("kustomize output %s: %w", res.CurId(), err)}
		}
		if err := r.add(file, 0, obj); err != nil {
			return err
		}
	}
	return nil
}

// scpUser matches the "user@" that makes kustomize read a reference as an SCP-style git URL.
var scpUser = regexp.MustCompile(`^[a-z][a-z0-9-]*@`)

// remote reports whether kustomize would treat ref as a URL or git remote rather than a local
// path. It errs on the side of remote: anything with a scheme, kustomize's github.com
// shorthand, or an SCP-style user@host.
func remote(ref string) bool {
	s := strings.ToLower(strings.TrimSpace(ref))
	s = strings.TrimPrefix(s, "git::")
	return strings.Contains(s, "://") ||
		strings.HasPrefix(s, "github.com/") || strings.HasPrefix(s, "github.com:") ||
		scpUser.MatchString(s)
}

// configPathKeys are the fields of kustomize's builtin generator and transformer
// configurations that name files to load.
var configPathKeys = map[string]bool{"path": true, "paths": true, "files": true, "envs": true, "env": true}

// scanKustomization refuses remote references in the kustomization in dir and, recursively,
// in the kustomizations it uses. configs says that dir's resources are generator or
// transformer configurations, whose file fields are scanned too.
func (r *renderer) scanKustomization(ctx context.Context, dir string, configs bool, visited map[string]bool) error {
	key := fmt.Sprintf("%t %s", configs, dir) // a directory used both ways is scanned both ways
	if visited[key] {
		return nil
	}
	visited[key] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	var kfile string
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if p := filepath.Join(dir, name); isRegular(p) {
			kfile = p
			break
		}
	}
	if kfile == "" {
		return nil // kustomize reports the missing file, with its own words
	}
	file := r.tree.rel(kfile)
	data, err := r.tree.readFile(kfile)
	if err != nil {
		return &Error{File: file, Err: err}
	}
	k, err := r.parseKustomization(data)
	if err != nil {
		return &Error{File: file, Err: err}
	}

	refuse := func(field, ref string) error {
		return &Error{File: file, Err: fmt.Errorf("%s %q: %w", field, ref, ErrRemote)}
	}
	// follow scans a reference that may be a file or a kustomization directory.
	follow := func(field, ref string, configs bool) error {
		if remote(ref) {
			return refuse(field, ref)
		}
		real, err := r.tree.resolve(dir, ref)
		if errors.Is(err, ErrPathEscape) {
			return &Error{File: file, Err: fmt.Errorf("%s: %w", field, err)}
		}
		if err != nil {
			return nil // kustomize reports what is missing
		}
		if isDir(real) {
			return r.scanKustomization(ctx, real, configs, visited)
		}
		if configs {
			return r.scanConfigFile(real)
		}
		return nil
	}

	for _, ref := range k.Resources {
		if err := follow("resources", ref, configs); err != nil {
			return err
		}
	}
	for _, ref := range k.Components {
		if err := follow("components", ref, configs); err != nil {
			return err
		}
	}
	plugins := []struct {
		field string
		refs  []string
	}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}}
	for _, p := range plugins {
		for _, ref := range p.refs {
			if strings.Contains(ref, "\n") { // an inline configuration
				if err := r.scanConfig(file, []byte(ref)); err != nil {
					return err
				}
				continue
			}
			if err := follow(p.field, ref, true); err != nil {
				return err
			}
		}
	}

	var files []string
	files = append(files, k.Crds...)
	files = append(files, k.Configurations...)
	files = append(files, deprecatedPatchFiles(k)...)
	for _, p := range k.Patches {
		files = append(files, p.Path)
	}
	for _, p := range k.Replacements {
		files = append(files, p.Path)
	}
	files = append(files, k.OpenAPI["path"])
	for _, g := range k.ConfigMapGenerator {
		files = append(files, kvFiles(g.KvPairSources)...)
	}
	for _, g := range k.SecretGenerator {
		files = append(files, kvFiles(g.KvPairSources)...)
	}
	for _, ref := range files {
		if remote(ref) {
			return refuse("file", ref)
		}
	}
	return nil
}

// deprecatedPatchFiles returns the files named by patch fields that kustomize deprecates but
// still honours.
func deprecatedPatchFiles(k *types.Kustomization) []string {
	var out []string
	for _, p := range k.PatchesStrategicMerge { //nolint:staticcheck // still honoured by kustomize, so still scanned
		if !strings.Contains(string(p), "\n") {
			out = append(out, string(p))
		}
	}
	for _, p := range k.PatchesJson6902 { //nolint:staticcheck // still honoured by kustomize, so still scanned
		out = append(out, p.Path)
	}
	return out
}

func kvFiles(s types.KvPairSources) []string {
	return append(append([]string(nil), s.EnvSources...), s.FileSources...)
}

// parseKustomization decodes a kustomization file as kustomize does, after walking it with
// the render's alias budget so that a YAML bomb fails here rather than inside kustomize.
func (r *renderer) parseKustomization(data []byte) (*types.Kustomization, error) {
	if _, err := r.boundAliases(data); err != nil {
		return nil, err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return nil, err
	}
	k.FixKustomization() // moves deprecated fields (bases, envSource) where kustomize reads them
	return &k, nil
}

// boundAliases walks every document of data with the render's alias budget and returns
// ErrTooLarge, with the document's number, if the budget runs out. Other problems are left
// to whoever parses data next.
func (r *renderer) boundAliases(data []byte) (int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return 0, nil // the end, or a syntax error
		}
		c := converter{r: r, expanding: map[*yaml.Node]bool{}}
		if _, err := c.value(&n, 0); errors.Is(err, ErrTooLarge) {
			return doc, err
		}
	}
}

func (r *renderer) scanConfigFile(real string) error {
	file := r.tree.rel(real)
	data, err := r.tree.readFile(real)
	if err != nil {
		return &Error{File: file, Err: err}
	}
	return r.scanConfig(file, data)
}

// scanConfig refuses remote references in the file fields of generator or transformer
// configurations, one per YAML document.
func (r *renderer) scanConfig(file string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		v, err := r.nextDocument(dec)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return &Error{File: file, Doc: doc, Err: err}
			}
			return nil // not YAML we understand: kustomize reports it
		}
		if ref, ok := remoteConfigRef(v, false); ok {
			return &Error{File: file, Doc: doc, Err: fmt.Errorf("%q: %w", ref, ErrRemote)}
		}
	}
}

// remoteConfigRef finds a remote reference among the strings under configPathKeys in v.
func remoteConfigRef(v any, underPathKey bool) (string, bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, v := range x {
			if ref, ok := remoteConfigRef(v, configPathKeys[k]); ok {
				return ref, true
			}
		}
	case []any:
		for _, v := range x {
			if ref, ok := remoteConfigRef(v, underPathKey); ok {
				return ref, true
			}
		}
	case string:
		if underPathKey && remote(x) {
			return x, true
		}
	}
	return "", false
}

func isRegular(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

// confinedFS is the file system kustomize sees: the disk, read-only, where every path must
// resolve inside the root and every read counts against the render's limits. The first
// escape or limit it meets is kept, because kustomize's error wrapping may lose it.
type confinedFS struct {
	r    *renderer
	disk filesys.FileSystem

	mu    sync.Mutex
	first error
}

var _ filesys.FileSystem = (*confinedFS)(nil)

var errReadOnly = errors.New("read-only file system")

func (c *confinedFS) fail(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = err
	}
	return err
}

// violation returns the first escape or limit the file system refused, if any.
func (c *confinedFS) violation() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// check returns the real path of name, or an error if it does not exist or leads outside the
// root.
func (c *confinedFS) check(name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil && c.r.tree.inside(filepath.Clean(abs)) {
		return "", err
	}
	if err != nil || !c.r.tree.inside(real) {
		rel, relErr := filepath.Rel(c.r.tree.root, abs)
		if relErr != nil {
			rel = name
		}
		return "", c.fail(&Error{File: filepath.ToSlash(rel), Err: ErrPathEscape})
	}
	return real, nil
}

func (c *confinedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (c *confinedFS) Mkdir(string) error                  { return errReadOnly }
func (c *confinedFS) MkdirAll(string) error               { return errReadOnly }
func (c *confinedFS) RemoveAll(string) error              { return errReadOnly }
func (c *confinedFS) WriteFile(string, []byte) error      { return errReadOnly }

func (c *confinedFS) Open(name string) (filesys.File, error) {
	real, err := c.check(name)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if info.Size() > c.r.tree.maxFile {
		return nil, c.fail(&Error{File: c.r.tree.rel(real), Err: fmt.Errorf("%w: file has %d bytes, the limit is %d", ErrTooLarge, info.Size(), c.r.tree.maxFile)})
	}
	if err := c.r.tree.charge(info.Size()); err != nil {
		return nil, c.fail(&Error{File: c.r.tree.rel(real), Err: err})
	}
	return c.disk.Open(real)
}

func (c *confinedFS) IsDir(name string) bool {
	real, err := c.check(name)
	return err == nil && c.disk.IsDir(real)
}

func (c *confinedFS) ReadDir(name string) ([]string, error) {
	real, err := c.check(name)
	if err != nil {
		return nil, err
	}
	return c.disk.ReadDir(real)
}

func (c *confinedFS) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	real, err := c.check(name)
	if err != nil {
		return "", "", err
	}
	return c.disk.CleanedAbs(real)
}

func (c *confinedFS) Exists(name string) bool {
	_, err := c.check(name)
	return err == nil
}

func (c *confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := c.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	for _, m := range matches {
		if _, err := c.check(m); err != nil {
			return nil, err
		}
	}
	return matches, nil
}

func (c *confinedFS) ReadFile(name string) ([]byte, error) {
	real, err := c.check(name)
	if err != nil {
		return nil, err
	}
	data, err := c.r.tree.readFile(real)
	if errors.Is(err, ErrTooLarge) {
		return nil, c.fail(&Error{File: c.r.tree.rel(real), Err: err})
	}
	if err != nil {
		return nil, err
	}
	// kustomize expands YAML aliases without a budget: walk manifests with ours first.
	switch strings.ToLower(filepath.Ext(real)) {
	case ".yaml", ".yml", ".json":
		if doc, err := c.r.boundAliases(data); err != nil {
			return nil, c.fail(&Error{File: c.r.tree.rel(real), Doc: doc, Err: err})
		}
	}
	return data, nil
}

func (c *confinedFS) Walk(root string, fn filepath.WalkFunc) error {
	real, err := c.check(root)
	if err != nil {
		return err
	}
	return c.disk.Walk(real, fn)
}
