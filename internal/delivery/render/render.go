// Package render turns a directory of a checked-out commit into Kubernetes objects: plain
// YAML/JSON manifests, a kustomization, or a Helm chart.
//
// Render only reads below the root it is given. The path, every values file and every file
// kustomize or Helm opens must resolve, after cleaning and following symlinks, to a place
// inside root, or Render fails with ErrPathEscape. Nothing is fetched over the network:
// kustomize remote bases, resources and files are refused with ErrRemote before kustomize
// runs, kustomize exec, Go and KRM function plugins and kustomize's helmCharts are disabled,
// and a Helm chart's dependencies must be vendored in its charts/ directory.
//
// Helm charts are rendered the way `helm template --include-crds` renders them, without a
// cluster: .Capabilities are Helm's defaults, the lookup function always returns an empty
// result, DNS lookups are disabled, and .Release.Namespace is "default" unless a namespace
// is given. CRDs from crds/ directories come first, then the rendered templates in file
// order; NOTES.txt and partials are dropped. Hooks (the helm.sh/hook annotation) are
// returned as ordinary objects with their annotations intact so the caller can decide what
// to do with them.
//
// The context is checked between files and steps, but neither a kustomize build nor Helm's
// template execution can be interrupted: a template that loops for long holds Render until
// it ends. kustomize writes its deprecation warnings to standard error.
//
// Render does not default namespaces, because only the caller, with a RESTMapper, knows
// which kinds are namespaced; duplicates are therefore detected on the namespace as written.
//
// Every failure caused by the content of the tree or the options is an *Error: retrying the
// same commit cannot fix it. Other failures (a cancelled context, an unreadable root) are
// returned as they are.
package render

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Default limits, used where an Options field is zero.
const (
	DefaultMaxFileBytes  int64 = 8 << 20
	DefaultMaxTotalBytes int64 = 64 << 20
	DefaultMaxObjects          = 10000
)

// maxAliasNodes bounds how many values YAML aliases may expand to in one render, so that a
// "billion laughs" document fails after a bounded amount of work and memory.
const maxAliasNodes = 1 << 20

// maxDepth bounds the nesting of one YAML document after alias expansion.
const maxDepth = 10000

// Options says how to render a path: exactly one of Directory, Kustomize and Helm is set.
type Options struct {
	Directory *Directory
	Kustomize *Kustomize
	Helm      *Helm

	// MaxFileBytes bounds the size of each file read and of each manifest Helm renders
	// (default DefaultMaxFileBytes).
	MaxFileBytes int64
	// MaxTotalBytes bounds the bytes read from the tree plus the bytes Helm renders in one
	// call (default DefaultMaxTotalBytes).
	MaxTotalBytes int64
	// MaxObjects bounds the number of objects returned (default DefaultMaxObjects).
	MaxObjects int
}

// Directory renders the .yaml, .yml and .json files of a directory. Hidden files and
// directories are skipped. Symlinks are followed as long as they stay inside the root.
type Directory struct {
	// Recurse descends into subdirectories.
	Recurse bool
	// Include, when not empty, keeps only files matching one of its globs; Exclude then drops
	// files matching one of its globs. A glob is matched against the file's slash-separated
	// path relative to the rendered path ("*" stays within a directory, "**" crosses
	// directories, "{a,b}" matches either); a glob without a "/" is also matched against the
	// file's base name.
	Include, Exclude []string
}

// Kustomize renders the kustomization in the path with kustomize's own ordering.
type Kustomize struct{}

// Helm renders the chart in the path in template mode.
type Helm struct {
	// ReleaseName is .Release.Name; callers pass the application's name.
	ReleaseName string
	// Namespace is .Release.Namespace; empty means "default", as in Helm.
	Namespace string
	// ValuesFiles are merged in order over the chart's values.yaml; paths are relative to
	// the chart and must stay inside the root.
	ValuesFiles []string
	// Values are merged last, over the values files.
	Values map[string]any
}

// Errors that an *Error wraps, for errors.Is.
var (
	// ErrPathEscape reports a path, symlink or reference that leaves the root.
	ErrPathEscape = errors.New("path escapes the repository")
	// ErrRemote reports a reference to something outside the repository (a URL or a git
	// remote) where only local files are allowed.
	ErrRemote = errors.New("remote references are not supported")
	// ErrTooLarge reports a limit exceeded: file or total size, object count, or the
	// expansion of YAML aliases.
	ErrTooLarge = errors.New("limit exceeded")
	// ErrSyntax reports a document that does not parse as YAML.
	ErrSyntax = errors.New("invalid YAML")
	// ErrInvalidObject reports a document that is not a Kubernetes object Ferry can manage:
	// not a mapping, or missing apiVersion, kind or metadata.name.
	ErrInvalidObject = errors.New("invalid object")
	// ErrOptions reports options that cannot be rendered.
	ErrOptions = errors.New("invalid render options")
)

// Error is a render failure that retrying the same tree with the same options cannot fix.
type Error struct {
	// File is the slash-separated path, relative to the root, of the file or directory at
	// fault; empty when the failure is not about a file.
	File string
	// Doc is the 1-based number of the YAML document in File, or 0.
	Doc int
	// Err is what went wrong.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Err.Error()
	case e.Doc == 0:
		return e.File + ": " + e.Err.Error()
	default:
		return fmt.Sprintf("%s: document %d: %v", e.File, e.Doc, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// DuplicateError reports an object defined twice. The *Error that wraps it names the second
// definition; DuplicateError names the first.
type DuplicateError struct {
	// Object identifies the object as "group/Kind namespace/name".
	Object string
	// File and Doc locate the first definition.
	File string
	Doc  int
}

func (e *DuplicateError) Error() string {
	where := e.File
	if e.Doc > 0 {
		where = fmt.Sprintf("%s (document %d)", e.File, e.Doc)
	}
	return fmt.Sprintf("duplicate object %s, first defined in %s", e.Object, where)
}

// Render reads path, relative to root, as opts says and returns the objects it defines in a
// deterministic order: file order, then document order (kustomize's own order for Kustomize).
func Render(ctx context.Context, root, path string, opts Options) ([]*unstructured.Unstructured, error) {
	set := 0
	for _, ok := range []bool{opts.Directory != nil, opts.Kustomize != nil, opts.Helm != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, &Error{Err: fmt.Errorf("%w: exactly one of Directory, Kustomize and Helm must be set, got %d", ErrOptions, set)}
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxTotalBytes <= 0 {
		opts.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if opts.MaxObjects <= 0 {
		opts.MaxObjects = DefaultMaxObjects
	}

	t, err := openTree(root, opts.MaxFileBytes, opts.MaxTotalBytes)
	if err != nil {
		return nil, err
	}
	dir, err := t.resolve(t.root, path)
	if err != nil {
		return nil, &Error{File: cleanRel(path), Err: err}
	}
	if !isDir(dir) {
		return nil, &Error{File: t.rel(dir), Err: fmt.Errorf("%w: path is not a directory", ErrOptions)}
	}

	r := &renderer{tree: t, maxObjects: opts.MaxObjects, seen: map[objectKey]origin{}}
	switch {
	case opts.Directory != nil:
		err = r.directory(ctx, dir, *opts.Directory)
	case opts.Kustomize != nil:
		err = r.kustomize(ctx, dir)
	default:
		err = r.helm(ctx, dir, *opts.Helm)
	}
	if err != nil {
		return nil, err
	}
	return r.objects, nil
}

// renderer collects the objects of one Render call and enforces the limits on them.
type renderer struct {
	tree       *tree
	maxObjects int
	objects    []*unstructured.Unstructured
	seen       map[objectKey]origin
	aliasNodes int // values produced by alias expansion so far
}

type objectKey struct{ group, kind, namespace, name string }

func (k objectKey) String() string {
	id := k.kind
	if k.group != "" {
		id = k.group + "/" + k.kind
	}
	if k.namespace != "" {
		return id + " " + k.namespace + "/" + k.name
	}
	return id + " " + k.name
}

type origin struct {
	file string
	doc  int
}

// add validates obj, found in document doc of file, and appends it, or the items of a List.
func (r *renderer) add(file string, doc int, obj map[string]any) error {
	if items, ok := listItems(obj); ok {
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				return &Error{File: file, Doc: doc, Err: fmt.Errorf("%w: items[%d] is not a mapping", ErrInvalidObject, i)}
			}
			if err := r.addObject(file, doc, m); err != nil {
				var e *Error
				if errors.As(err, &e) {
					e.Err = fmt.Errorf("items[%d]: %w", i, e.Err)
				}
				return err
			}
		}
		return nil
	}
	return r.addObject(file, doc, obj)
}

func (r *renderer) addObject(file string, doc int, obj map[string]any) error {
	key, err := validate(obj)
	if err != nil {
		return &Error{File: file, Doc: doc, Err: err}
	}
	if first, ok := r.seen[key]; ok {
		return &Error{File: file, Doc: doc, Err: &DuplicateError{Object: key.String(), File: first.file, Doc: first.doc}}
	}
	if len(r.objects) >= r.maxObjects {
		return &Error{File: file, Doc: doc, Err: fmt.Errorf("%w: more than %d objects", ErrTooLarge, r.maxObjects)}
	}
	r.seen[key] = origin{file: file, doc: doc}
	r.objects = append(r.objects, &unstructured.Unstructured{Object: obj})
	return nil
}

// listItems reports whether obj is a List (kind "List" or "*List" with an items array) and
// returns its items.
func listItems(obj map[string]any) ([]any, bool) {
	kind, _ := obj["kind"].(string)
	if !strings.HasSuffix(kind, "List") {
		return nil, false
	}
	items, ok := obj["items"]
	if !ok {
		return nil, false
	}
	if items == nil {
		return nil, true
	}
	list, ok := items.([]any)
	return list, ok
}

// validate checks that obj names itself fully and returns its identity.
func validate(obj map[string]any) (objectKey, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	namespace, _ := meta["namespace"].(string)

	var missing []string
	if apiVersion == "" {
		missing = append(missing, "apiVersion")
	}
	if kind == "" {
		missing = append(missing, "kind")
	}
	if name == "" {
		if gen, _ := meta["generateName"].(string); gen != "" {
			return objectKey{}, fmt.Errorf("%w: %s with metadata.generateName %q: generateName is not supported, set metadata.name", ErrInvalidObject, kind, gen)
		}
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return objectKey{}, fmt.Errorf("%w: missing %s", ErrInvalidObject, strings.Join(missing, ", "))
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return objectKey{}, fmt.Errorf("%w: %s %s: %w", ErrInvalidObject, kind, name, err)
	}
	return objectKey{group: gv.Group, kind: kind, namespace: namespace, name: name}, nil
}
