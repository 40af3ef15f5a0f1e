package render

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fixture lays out files and symlinks below a temporary base directory. The repository root
// is base/repo; tests put what must stay unreachable in base/outside.
type fixture struct {
	files map[string]string
	links map[string]string // link name -> target, both relative to base
}

func (f fixture) write(t *testing.T) (base, root string) {
	t.Helper()
	base = t.TempDir()
	root = filepath.Join(base, "repo")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range f.files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range f.links {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.FromSlash(target), p); err != nil {
			t.Fatal(err)
		}
	}
	return base, root
}

// ids describes objects as "apiVersion Kind namespace/name". It deep-copies each object
// first, which panics on values that are not JSON-compatible.
func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		o = o.DeepCopy()
		id := o.GetAPIVersion() + " " + o.GetKind() + " "
		if ns := o.GetNamespace(); ns != "" {
			id += ns + "/"
		}
		out = append(out, id+o.GetName())
	}
	return out
}

func cm(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
}

func TestDirectory(t *testing.T) {
	tree := map[string]string{
		"repo/apps/a.yaml": cm("a1") + "---\n" + cm("a2"),
		"repo/apps/b.yml":  "# leading comment\n---\n---\n" + cm("b") + "---\n# only a comment\n",
		"repo/apps/c.json": `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c", "namespace": "web"},
			"spec": {"ports": [{"port": 80}]}}`,
		"repo/apps/notes.txt":         "not a manifest",
		"repo/apps/.hidden.yaml":      cm("hidden-file"),
		"repo/apps/.git/x.yaml":       cm("git"),
		"repo/apps/sub/d.yaml":        cm("d"),
		"repo/apps/sub/skip.yaml":     cm("skip"),
		"repo/apps/sub/deeper/e.yaml": cm("e"),
		"repo/apps/sub/.cache/f.yaml": cm("cache"),
		"repo/lists/list.yaml":        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l1}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: l2}\n",
		"repo/lists/typed.yaml":       "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: t1}}\n",
		"repo/lists/empty.yaml":       "apiVersion: v1\nkind: List\nitems: []\n",
		"repo/lists/notalist.yaml":    "apiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: allow\nspec: {}\n",
		"repo/shared/linked.yaml":     cm("linked"),
		"repo/anchors/a.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchored\n  labels: &l {app: web}\n  annotations:\n    <<: *l\n    team: x\n",
		"repo/elsewhere/r.yaml":       cm("via-dir-link"),
	}
	links := map[string]string{
		"repo/apps/link.yaml":    "../shared/linked.yaml",
		"repo/symlinked/dirlink": "../elsewhere",
	}
	_, root := fixture{files: tree, links: links}.write(t)

	tests := []struct {
		name string
		path string
		dir  Directory
		want []string
	}{
		{
			name: "flat",
			path: "apps",
			want: []string{"v1 ConfigMap a1", "v1 ConfigMap a2", "v1 ConfigMap b", "v1 Service web/c", "v1 ConfigMap linked"},
		},
		{
			name: "recursive",
			path: "apps",
			dir:  Directory{Recurse: true},
			want: []string{
				"v1 ConfigMap a1", "v1 ConfigMap a2", "v1 ConfigMap b", "v1 Service web/c", "v1 ConfigMap linked",
				"v1 ConfigMap d", "v1 ConfigMap e", "v1 ConfigMap skip",
			},
		},
		{
			name: "include and exclude",
			path: "apps",
			dir:  Directory{Recurse: true, Include: []string{"*.yaml", "c.json"}, Exclude: []string{"sub/skip.yaml", "sub/**/e.*"}},
			want: []string{"v1 ConfigMap a1", "v1 ConfigMap a2", "v1 Service web/c", "v1 ConfigMap linked", "v1 ConfigMap d"},
		},
		{
			name: "include with a directory glob",
			path: "apps",
			dir:  Directory{Recurse: true, Include: []string{"sub/*.yaml"}},
			want: []string{"v1 ConfigMap d", "v1 ConfigMap skip"},
		},
		{
			name: "lists are flattened",
			path: "lists",
			want: []string{"v1 ConfigMap l1", "v1 ConfigMap l2", "example.com/v1 AllowList allow", "v1 ConfigMap t1"},
		},
		{
			name: "anchors and merge keys",
			path: "anchors",
			want: []string{"v1 ConfigMap anchored"},
		},
		{
			name: "symlinked directory inside the repository",
			path: "symlinked",
			dir:  Directory{Recurse: true},
			want: []string{"v1 ConfigMap via-dir-link"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			got, err := Render(context.Background(), root, tt.path, Options{Directory: &dir})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDirectorySymlinkCycle(t *testing.T) {
	_, root := fixture{
		files: map[string]string{"repo/real/r.yaml": cm("r")},
		links: map[string]string{"repo/real/loop": "."},
	}.write(t)
	_, err := Render(context.Background(), root, ".", Options{Directory: &Directory{Recurse: true}})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Render error = %v, want an *Error", err)
	}
	if e.File != "real/loop" {
		t.Errorf("Error.File = %q, want %q (err: %v)", e.File, "real/loop", err)
	}
}

func TestDirectoryValues(t *testing.T) {
	_, root := fixture{files: map[string]string{
		"repo/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\n  labels: &l {app: web}\n  annotations:\n    <<: *l\n    app: override\n    when: 2024-01-02\nspec:\n  replicas: 3\n  ratio: 0.5\n  flag: true\n  big: 18446744073709551615\n  hex: 0x10\n  nothing: ~\n  text: \"007\"\n",
	}}.write(t)
	got, err := Render(context.Background(), root, ".", Options{Directory: &Directory{}})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	want := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":        "n",
			"labels":      map[string]any{"app": "web"},
			"annotations": map[string]any{"app": "override", "when": "2024-01-02"},
		},
		"spec": map[string]any{
			"replicas": int64(3), "ratio": 0.5, "flag": true, "big": float64(18446744073709551615),
			"hex": int64(16), "nothing": nil, "text": "007",
		},
	}
	if len(got) != 1 {
		t.Fatalf("got %d objects, want 1", len(got))
	}
	if diff := cmp.Diff(want, got[0].Object); diff != "" {
		t.Errorf("object (-want +got):\n%s", diff)
	}
}

// billionLaughs is the classic alias bomb: ten levels of ten aliases each, 10^9 strings
// once expanded.
const billionLaughs = `apiVersion: v1
kind: ConfigMap
metadata:
  name: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
data: [*i,*i,*i,*i,*i,*i,*i,*i,*i,*i]
`

func TestDirectoryErrors(t *testing.T) {
	tests := []struct {
		name     string
		fixture  fixture
		path     string
		opts     Options // Directory defaults to &Directory{} unless noSource
		noSource bool
		wantIs   error // nil: only an *Error is expected
		wantFile string
		wantDoc  int
	}{
		{
			name:     "bad YAML names file and document",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("ok") + "---\nkey: [unclosed\n"}},
			wantIs:   ErrSyntax,
			wantFile: "a.yaml", wantDoc: 2,
		},
		{
			name:     "tab indentation",
			fixture:  fixture{files: map[string]string{"repo/sub/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n"}},
			path:     "sub",
			wantIs:   ErrSyntax,
			wantFile: "sub/a.yaml", wantDoc: 1,
		},
		{
			name:     "duplicate key",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nkind: Secret\n"}},
			wantIs:   ErrSyntax,
			wantFile: "a.yaml", wantDoc: 1,
		},
		{
			name:     "missing kind",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("ok") + "---\n---\napiVersion: v1\nmetadata: {name: x}\n"}},
			wantIs:   ErrInvalidObject,
			wantFile: "a.yaml", wantDoc: 3,
		},
		{
			name:     "missing name",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n"}},
			wantIs:   ErrInvalidObject,
			wantFile: "a.yaml", wantDoc: 1,
		},
		{
			name:     "generateName",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n"}},
			wantIs:   ErrInvalidObject,
			wantFile: "a.yaml", wantDoc: 1,
		},
		{
			name:     "not a mapping",
			fixture:  fixture{files: map[string]string{"repo/a.json": `["a", "b"]`}},
			wantIs:   ErrInvalidObject,
			wantFile: "a.json", wantDoc: 1,
		},
		{
			name:     "bad list item",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap}\n"}},
			wantIs:   ErrInvalidObject,
			wantFile: "a.yaml", wantDoc: 1,
		},
		{
			name:     "billion laughs",
			fixture:  fixture{files: map[string]string{"repo/bomb.yaml": billionLaughs}},
			wantIs:   ErrTooLarge,
			wantFile: "bomb.yaml", wantDoc: 1,
		},
		{
			name:     "self-referencing anchor",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": "a: &a [*a]\n"}},
			wantIs:   ErrSyntax,
			wantFile: "a.yaml", wantDoc: 1,
		},
		{
			name:     "oversize file",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("a"), "repo/big.yaml": cm(strings.Repeat("x", 200))}},
			opts:     Options{MaxFileBytes: 100},
			wantIs:   ErrTooLarge,
			wantFile: "big.yaml",
		},
		{
			name:     "total bytes",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("a"), "repo/b.yaml": cm("b")}},
			opts:     Options{MaxTotalBytes: int64(len(cm("a")) + 10)},
			wantIs:   ErrTooLarge,
			wantFile: "b.yaml",
		},
		{
			name:     "too many objects",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("a") + "---\n" + cm("b")}},
			opts:     Options{MaxObjects: 1},
			wantIs:   ErrTooLarge,
			wantFile: "a.yaml", wantDoc: 2,
		},
		{
			name:     "path escape via ..",
			fixture:  fixture{files: map[string]string{"outside/a.yaml": cm("secret")}},
			path:     "../outside",
			wantIs:   ErrPathEscape,
			wantFile: "../outside",
		},
		{
			name:     "path escape via .. to nothing",
			path:     "apps/../../nowhere",
			wantIs:   ErrPathEscape,
			wantFile: "../nowhere",
		},
		{
			name:     "absolute path",
			path:     "/etc",
			wantIs:   ErrPathEscape,
			wantFile: "/etc",
		},
		{
			name: "path escape via symlinked directory",
			fixture: fixture{
				files: map[string]string{"outside/a.yaml": cm("secret")},
				links: map[string]string{"repo/apps": "../outside"},
			},
			path:     "apps",
			wantIs:   ErrPathEscape,
			wantFile: "apps",
		},
		{
			name: "path escape via symlinked file",
			fixture: fixture{
				files: map[string]string{"outside/a.yaml": cm("secret"), "repo/apps/ok.yaml": cm("ok")},
				links: map[string]string{"repo/apps/z.yaml": "../../outside/a.yaml"},
			},
			path:     "apps",
			wantIs:   ErrPathEscape,
			wantFile: "apps/z.yaml",
		},
		{
			name: "path escape via symlinked subdirectory",
			fixture: fixture{
				files: map[string]string{"outside/a.yaml": cm("secret")},
				links: map[string]string{"repo/apps/sub": "../../outside"},
			},
			path:     "apps",
			opts:     Options{Directory: &Directory{Recurse: true}},
			wantIs:   ErrPathEscape,
			wantFile: "apps/sub",
		},
		{
			name:     "missing path",
			path:     "nope",
			wantFile: "nope",
		},
		{
			name:     "path is a file",
			fixture:  fixture{files: map[string]string{"repo/a.yaml": cm("a")}},
			path:     "a.yaml",
			wantIs:   ErrOptions,
			wantFile: "a.yaml",
		},
		{
			name:   "bad glob",
			opts:   Options{Directory: &Directory{Include: []string{"[a"}}},
			wantIs: ErrOptions,
		},
		{
			name:     "no source",
			noSource: true,
			wantIs:   ErrOptions,
		},
		{
			name:   "two sources",
			opts:   Options{Directory: &Directory{}, Kustomize: &Kustomize{}},
			wantIs: ErrOptions,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, root := tt.fixture.write(t)
			opts := tt.opts
			if opts.Directory == nil && opts.Kustomize == nil && opts.Helm == nil && !tt.noSource {
				opts.Directory = &Directory{}
			}
			path := tt.path
			if path == "" {
				path = "."
			}
			_, err := Render(context.Background(), root, path, opts)
			t.Logf("error: %v", err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Render error = %v, want an *Error", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Render error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if e.File != tt.wantFile || e.Doc != tt.wantDoc {
				t.Errorf("Error names %q document %d, want %q document %d (err: %v)", e.File, e.Doc, tt.wantFile, tt.wantDoc, err)
			}
		})
	}
}

func TestDirectoryDuplicate(t *testing.T) {
	_, root := fixture{files: map[string]string{
		"repo/a.yaml":     cm("same"),
		"repo/b.yaml":     cm("other") + "---\n" + cm("same"),
		"repo/c/ns.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: x}\n",
		"repo/d/ns.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: y}\n",
		"repo/e/apps.yml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: same}\n---\napiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: same}\n",
	}}.write(t)

	_, err := Render(context.Background(), root, ".", Options{Directory: &Directory{}})
	var e *Error
	var dup *DuplicateError
	if !errors.As(err, &e) || !errors.As(err, &dup) {
		t.Fatalf("Render error = %v, want an *Error wrapping a *DuplicateError", err)
	}
	got := []any{e.File, e.Doc, *dup}
	want := []any{"b.yaml", 2, DuplicateError{Object: "ConfigMap same", File: "a.yaml", Doc: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("duplicate (-want +got):\n%s", diff)
	}

	// Different namespaces are different objects; versions of one group are the same object.
	objs, err := Render(context.Background(), root, "c", Options{Directory: &Directory{}})
	if err != nil || len(objs) != 1 {
		t.Fatalf("Render c = %d objects, %v", len(objs), err)
	}
	_, err = Render(context.Background(), root, "e", Options{Directory: &Directory{}})
	if !errors.As(err, &dup) || dup.Object != "apps/Deployment same" {
		t.Errorf("Render e error = %v, want a duplicate apps/Deployment", err)
	}
}

// TestBillionLaughsMemory bounds what an alias bomb costs: without the alias budget the
// expansion below would allocate tens of gigabytes.
func TestBillionLaughsMemory(t *testing.T) {
	_, root := fixture{files: map[string]string{"repo/bomb.yaml": billionLaughs}}.write(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Render(context.Background(), root, ".", Options{Directory: &Directory{}})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Render error = %v, want ErrTooLarge", err)
	}
	const limit = 128 << 20
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("rendering the bomb allocated %d MiB", alloc>>20)
	if alloc > limit {
		t.Errorf("rendering the bomb allocated %d MiB, want at most %d MiB", alloc>>20, limit>>20)
	}
}

func TestRenderCancelled(t *testing.T) {
	_, root := fixture{files: map[string]string{"repo/a.yaml": cm("a")}}.write(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Render(ctx, root, ".", Options{Directory: &Directory{}})
	var e *Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &e) {
		t.Errorf("Render error = %v, want context.Canceled and no *Error", err)
	}
}

func TestRenderMissingRoot(t *testing.T) {
	_, err := Render(context.Background(), filepath.Join(t.TempDir(), "gone"), ".", Options{Directory: &Directory{}})
	var e *Error
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &e) {
		t.Errorf("Render error = %v, want os.ErrNotExist and no *Error", err)
	}
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        envFrom:
        - configMapRef: {name: settings}
`

func TestKustomize(t *testing.T) {
	_, root := fixture{files: map[string]string{
		"repo/apps/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n",
		"repo/apps/base/deployment.yaml":    deployment,
		"repo/apps/base/service.yaml":       "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
		"repo/apps/prod/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: prod
namePrefix: prod-
commonLabels:
  env: prod
resources:
- ../base
configMapGenerator:
- name: settings
  literals: [LEVEL=info]
  files: [config/app.properties]
`,
		"repo/apps/prod/config/app.properties": "threads=4\n",
	}}.write(t)

	got, err := Render(context.Background(), root, "apps/prod", Options{Kustomize: &Kustomize{}})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	// kustomize's legacy order: ConfigMap, Service, then Deployment.
	want := []string{"v1 ConfigMap prod/prod-settings-hm8tmgg68k", "v1 Service prod/prod-web", "apps/v1 Deployment prod/prod-web"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	dep := got[2]
	ref, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	envFrom := ref[0].(map[string]any)["envFrom"].([]any)[0].(map[string]any)["configMapRef"].(map[string]any)["name"]
	if envFrom != "prod-settings-hm8tmgg68k" {
		t.Errorf("Deployment refers to ConfigMap %v, want the generated name", envFrom)
	}
	if diff := cmp.Diff(map[string]string{"env": "prod"}, dep.GetLabels()); diff != "" {
		t.Errorf("Deployment labels (-want +got):\n%s", diff)
	}
	data, _, _ := unstructured.NestedStringMap(got[0].Object, "data")
	if diff := cmp.Diff(map[string]string{"LEVEL": "info", "app.properties": "threads=4\n"}, data); diff != "" {
		t.Errorf("ConfigMap data (-want +got):\n%s", diff)
	}
}

func TestKustomizeErrors(t *testing.T) {
	outside := map[string]string{
		"outside/kustomization.yaml": "resources: [secret.yaml]\n",
		"outside/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n",
		"outside/secret.txt":         "password\n",
	}
	with := func(files map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range outside {
			out[k] = v
		}
		for k, v := range files {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name     string
		fixture  fixture
		wantIs   error
		wantFile string
	}{
		{
			name:     "base above the repository",
			fixture:  fixture{files: with(map[string]string{"repo/app/kustomization.yaml": "resources: [../../outside]\n"})},
			wantIs:   ErrPathEscape,
			wantFile: "app/kustomization.yaml",
		},
		{
			name:     "base above the repository, nested",
			fixture:  fixture{files: with(map[string]string{"repo/app/kustomization.yaml": "resources: [../base]\n", "repo/base/kustomization.yaml": "resources: [../../outside]\n"})},
			wantIs:   ErrPathEscape,
			wantFile: "base/kustomization.yaml",
		},
		{
			name: "base symlinked above the repository",
			fixture: fixture{
				files: with(map[string]string{"repo/app/kustomization.yaml": "resources: [base]\n"}),
				links: map[string]string{"repo/app/base": "../../outside"},
			},
			wantIs:   ErrPathEscape,
			wantFile: "app/kustomization.yaml",
		},
		{
			name: "resource file symlinked outside",
			fixture: fixture{
				files: with(map[string]string{"repo/app/kustomization.yaml": "resources: [secret.yaml]\n"}),
				links: map[string]string{"repo/app/secret.yaml": "../../outside/secret.yaml"},
			},
			wantIs:   ErrPathEscape,
			wantFile: "app/kustomization.yaml",
		},
		// The next cases get past the scan of the kustomization and are stopped by the
		// confined file system.
		{
			name: "generator file symlinked outside",
			fixture: fixture{
				files: with(map[string]string{"repo/app/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [secret.txt]\n"}),
				links: map[string]string{"repo/app/secret.txt": "../../outside/secret.txt"},
			},
			wantIs:   ErrPathEscape,
			wantFile: "app/secret.txt",
		},
		{
			name: "patch symlinked outside",
			fixture: fixture{
				files: with(map[string]string{"repo/app/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: p.yaml\n", "repo/app/cm.yaml": cm("x")}),
				links: map[string]string{"repo/app/p.yaml": "../../outside/secret.yaml"},
			},
			wantIs:   ErrPathEscape,
			wantFile: "app/p.yaml",
		},
		{
			name: "generator file above the repository",
			fixture: fixture{
				files: with(map[string]string{"repo/kustomization.yaml": "resources: [app]\n", "repo/app/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [../../outside/secret.txt]\n"}),
			},
			wantIs:   ErrPathEscape,
			wantFile: "../outside/secret.txt",
		},
		{
			name:     "oversize resource",
			fixture:  fixture{files: map[string]string{"repo/app/kustomization.yaml": "resources: [big.yaml]\n", "repo/app/big.yaml": cm(strings.Repeat("x", 5000))}},
			wantIs:   ErrTooLarge,
			wantFile: "app/big.yaml",
		},
		{
			name:     "alias bomb in the kustomization",
			fixture:  fixture{files: map[string]string{"repo/app/kustomization.yaml": billionLaughs}},
			wantIs:   ErrTooLarge,
			wantFile: "app/kustomization.yaml",
		},
		{
			name:     "alias bomb in a resource",
			fixture:  fixture{files: map[string]string{"repo/app/kustomization.yaml": "resources: [bomb.yaml]\n", "repo/app/bomb.yaml": billionLaughs}},
			wantIs:   ErrTooLarge,
			wantFile: "app/bomb.yaml",
		},
		{
			name:     "exec plugin",
			fixture:  fixture{files: map[string]string{"repo/app/kustomization.yaml": "generators: [gen.yaml]\n", "repo/app/gen.yaml": "apiVersion: example.com/v1\nkind: Exec\nmetadata:\n  name: x\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n"}},
			wantFile: "app",
		},
		{
			name:     "helm charts",
			fixture:  fixture{files: map[string]string{"repo/app/kustomization.yaml": "helmCharts:\n- name: x\n  repo: oci://example.com/charts\n"}},
			wantFile: "app",
		},
		{
			name:     "not a kustomization",
			fixture:  fixture{files: map[string]string{"repo/app/deployment.yaml": deployment}},
			wantFile: "app",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, root := tt.fixture.write(t)
			objs, err := Render(context.Background(), root, "app", Options{Kustomize: &Kustomize{}, MaxFileBytes: 4000})
			t.Logf("error: %v", err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Render = %v, %v; want an *Error", ids(objs), err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Render error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if e.File != tt.wantFile {
				t.Errorf("Error.File = %q, want %q (err: %v)", e.File, tt.wantFile, err)
			}
		})
	}
}

// TestKustomizeRemote checks that remote references are refused before anything is fetched:
// the URLs point at a local server that counts the requests it gets.
func TestKustomizeRemote(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, cm("fetched"))
	}))
	defer srv.Close()

	tests := []struct {
		name          string
		kustomization string
		extra         map[string]string
	}{
		{name: "http resource", kustomization: "resources: [" + srv.URL + "/cm.yaml]\n"},
		{name: "git https base", kustomization: "resources:\n- " + srv.URL + "/org/repo.git//base?ref=v1\n"},
		{name: "github shorthand", kustomization: "resources:\n- github.com/example/repo/base?ref=v1\n"},
		{name: "scp-style git", kustomization: "resources: [git@example.com:org/repo.git]\n"},
		{name: "forced git protocol", kustomization: "resources: [git::https://example.com/org/repo]\n"},
		{name: "deprecated bases", kustomization: "bases: [ssh://git@example.com/org/repo]\n"},
		{name: "component", kustomization: "components: [" + srv.URL + "/org/repo.git//c]\n"},
		{name: "patch", kustomization: "resources: [cm.yaml]\npatches:\n- path: " + srv.URL + "/patch.yaml\n", extra: map[string]string{"repo/app/cm.yaml": cm("x")}},
		{name: "generator file", kustomization: "configMapGenerator:\n- name: x\n  files: [key=" + srv.URL + "/f]\n"},
		{name: "generator env", kustomization: "secretGenerator:\n- name: x\n  envs: [" + srv.URL + "/env]\n"},
		{name: "openapi", kustomization: "openapi:\n  path: " + srv.URL + "/schema.json\n"},
		{name: "inline transformer", kustomization: "transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: " + srv.URL + "/p.yaml\n"},
		{
			name:          "transformer config file",
			kustomization: "resources: [cm.yaml]\ntransformers: [t.yaml]\n",
			extra: map[string]string{
				"repo/app/cm.yaml": cm("x"),
				"repo/app/t.yaml":  "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: " + srv.URL + "/p.yaml\n",
			},
		},
		{
			name:          "in a base",
			kustomization: "resources: [../base]\n",
			extra:         map[string]string{"repo/base/kustomization.yaml": "resources: [" + srv.URL + "/cm.yaml]\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"repo/app/kustomization.yaml": tt.kustomization}
			for k, v := range tt.extra {
				files[k] = v
			}
			_, root := fixture{files: files}.write(t)
			_, err := Render(context.Background(), root, "app", Options{Kustomize: &Kustomize{}})
			t.Logf("error: %v", err)
			var e *Error
			if !errors.Is(err, ErrRemote) || !errors.As(err, &e) {
				t.Errorf("Render error = %v, want an *Error wrapping ErrRemote", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the remote server got %d requests, want none", n)
	}
}

func helmChart() map[string]string {
	return map[string]string{
		"repo/charts/web/Chart.yaml": `apiVersion: v2
name: web
version: 0.1.0
dependencies:
- name: sub
  version: 0.1.0
  condition: sub.enabled
- name: extra
  version: 0.1.0
  condition: extra.enabled
`,
		"repo/charts/web/values.yaml": "replicas: 1\ngreeting: hello\nimage: {repository: nginx, tag: \"1.27\"}\nsub: {enabled: true}\nextra: {enabled: false}\n",
		"repo/charts/web/.helmignore": "*.md\n",
		"repo/charts/web/README.md":   "{{ this is not a template and is ignored }}",
		"repo/charts/web/templates/_helpers.tpl": `{{- define "web.fullname" -}}
{{ .Release.Name }}-web
{{- end -}}
{{- define "web.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
`,
		"repo/charts/web/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
      - name: web
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`,
		"repo/charts/web/templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "web.fullname" . }}
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ .Values.greeting | quote }}
  lookup: {{ lookup "v1" "Secret" "default" "x" | len | quote }}
  kube: {{ .Capabilities.KubeVersion.Major | quote }}
`,
		"repo/charts/web/templates/hook.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "web.fullname" . }}-migrate
  annotations:
    helm.sh/hook: pre-install
`,
		"repo/charts/web/templates/empty.yaml": "{{- if .Values.never }}\napiVersion: v1\n{{- end }}\n",
		"repo/charts/web/templates/NOTES.txt":  "Thanks for installing {{ .Release.Name }}.\n",
		"repo/charts/web/crds/widget.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
`,
		"repo/charts/web/charts/sub/Chart.yaml":          "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
		"repo/charts/web/charts/sub/values.yaml":         "name: sub\n",
		"repo/charts/web/charts/sub/templates/sa.yaml":   "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}-{{ .Values.name }}\n",
		"repo/charts/web/charts/extra/Chart.yaml":        "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
		"repo/charts/web/charts/extra/templates/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: extra\n",
		"repo/values/prod.yaml":                          "replicas: 3\ngreeting: hi\nimage: {tag: \"1.28\"}\n",
		"repo/values/canary.yaml":                        "image: {repository: registry.example.com/nginx}\n",
	}
}

func TestHelm(t *testing.T) {
	_, root := fixture{files: helmChart()}.write(t)
	h := &Helm{
		ReleaseName: "shop",
		Namespace:   "prod",
		ValuesFiles: []string{"../../values/prod.yaml", "../../values/canary.yaml"},
		Values:      map[string]any{"greeting": "inline", "sub": map[string]any{"name": "worker"}},
	}
	got, err := Render(context.Background(), root, "charts/web", Options{Helm: h})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	want := []string{
		"apiextensions.k8s.io/v1 CustomResourceDefinition widgets.example.com",
		"v1 ServiceAccount shop-worker",
		"v1 ConfigMap prod/shop-web",
		"apps/v1 Deployment shop-web",
		"batch/v1 Job shop-web-migrate",
	}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}

	data, _, _ := unstructured.NestedStringMap(got[2].Object, "data")
	if diff := cmp.Diff(map[string]string{"greeting": "inline", "lookup": "0", "kube": "1"}, data); diff != "" {
		t.Errorf("ConfigMap data (-want +got):\n%s", diff)
	}
	replicas, _, _ := unstructured.NestedInt64(got[3].Object, "spec", "replicas")
	containers, _, _ := unstructured.NestedSlice(got[3].Object, "spec", "template", "spec", "containers")
	image := containers[0].(map[string]any)["image"]
	if diff := cmp.Diff([]any{int64(3), "registry.example.com/nginx:1.28", map[string]string{"app.kubernetes.io/instance": "shop"}},
		[]any{replicas, image, got[3].GetLabels()}); diff != "" {
		t.Errorf("Deployment replicas, image, labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"helm.sh/hook": "pre-install"}, got[4].GetAnnotations()); diff != "" {
		t.Errorf("hook annotations (-want +got):\n%s", diff)
	}
	if v := h.Values["sub"].(map[string]any)["name"]; v != "worker" {
		t.Errorf("Render changed the caller's values: sub.name = %v", v)
	}
}

func TestHelmErrors(t *testing.T) {
	withFiles := func(extra map[string]string) fixture {
		files := helmChart()
		for k, v := range extra {
			if v == "" {
				delete(files, k)
				continue
			}
			files[k] = v
		}
		return fixture{files: files}
	}
	withLinks := func(links map[string]string) fixture {
		f := withFiles(map[string]string{"outside/v.yaml": "replicas: 2\n"})
		f.links = links
		return f
	}
	tests := []struct {
		name     string
		fixture  fixture
		helm     Helm
		wantIs   error
		wantFile string
		wantDoc  int
	}{
		{
			name:     "values file outside the repository",
			fixture:  withFiles(map[string]string{"outside/v.yaml": "replicas: 2\n"}),
			helm:     Helm{ReleaseName: "shop", ValuesFiles: []string{"../../../outside/v.yaml"}},
			wantIs:   ErrPathEscape,
			wantFile: "../outside/v.yaml",
		},
		{
			name:     "values file symlinked outside the repository",
			fixture:  withLinks(map[string]string{"repo/values/link.yaml": "../../outside/v.yaml"}),
			helm:     Helm{ReleaseName: "shop", ValuesFiles: []string{"../../values/link.yaml"}},
			wantIs:   ErrPathEscape,
			wantFile: "values/link.yaml",
		},
		{
			name:     "template symlinked outside the repository",
			fixture:  withLinks(map[string]string{"repo/charts/web/templates/x.yaml": "../../../../outside/v.yaml"}),
			helm:     Helm{ReleaseName: "shop"},
			wantIs:   ErrPathEscape,
			wantFile: "charts/web/templates/x.yaml",
		},
		{
			name:     "values file alias bomb",
			fixture:  withFiles(map[string]string{"repo/values/bomb.yaml": billionLaughs}),
			helm:     Helm{ReleaseName: "shop", ValuesFiles: []string{"../../values/bomb.yaml"}},
			wantIs:   ErrTooLarge,
			wantFile: "values/bomb.yaml", wantDoc: 1,
		},
		{
			name:     "missing release name",
			fixture:  withFiles(nil),
			wantIs:   ErrOptions,
			wantFile: "charts/web",
		},
		{
			name:     "dependency not vendored",
			fixture:  withFiles(map[string]string{"repo/charts/web/charts/sub/Chart.yaml": "", "repo/charts/web/charts/sub/values.yaml": "", "repo/charts/web/charts/sub/templates/sa.yaml": ""}),
			helm:     Helm{ReleaseName: "shop"},
			wantFile: "charts/web",
		},
		{
			name:     "template error",
			fixture:  withFiles(map[string]string{"repo/charts/web/templates/bad.yaml": "{{ fail \"no\" }}\n"}),
			helm:     Helm{ReleaseName: "shop"},
			wantFile: "charts/web",
		},
		{
			name:     "rendered object without a name",
			fixture:  withFiles(map[string]string{"repo/charts/web/templates/bad.yaml": cm("ok") + "---\napiVersion: v1\nkind: ConfigMap\n"}),
			helm:     Helm{ReleaseName: "shop"},
			wantIs:   ErrInvalidObject,
			wantFile: "charts/web/templates/bad.yaml", wantDoc: 2,
		},
		{
			name:     "rendered YAML is broken",
			fixture:  withFiles(map[string]string{"repo/charts/web/templates/bad.yaml": "a: {{ .Values.greeting }}: b\n"}),
			helm:     Helm{ReleaseName: "shop"},
			wantIs:   ErrSyntax,
			wantFile: "charts/web/templates/bad.yaml", wantDoc: 1,
		},
		{
			name:     "rendered duplicate",
			fixture:  withFiles(map[string]string{"repo/charts/web/templates/dup.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: shop-web-migrate}\n"}),
			helm:     Helm{ReleaseName: "shop"},
			wantFile: "charts/web/templates/hook.yaml", wantDoc: 1,
		},
		{
			name:     "not a chart",
			fixture:  withFiles(map[string]string{"repo/charts/web/Chart.yaml": ""}),
			helm:     Helm{ReleaseName: "shop"},
			wantFile: "charts/web",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, root := tt.fixture.write(t)
			h := tt.helm
			_, err := Render(context.Background(), root, "charts/web", Options{Helm: &h})
			t.Logf("error: %v", err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Render error = %v, want an *Error", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Render error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if e.File != tt.wantFile || e.Doc != tt.wantDoc {
				t.Errorf("Error names %q document %d, want %q document %d (err: %v)", e.File, e.Doc, tt.wantFile, tt.wantDoc, err)
			}
		})
	}
}

// FuzzDirectory feeds arbitrary bytes to Render as one YAML file. Whatever the input, Render
// must not panic, must fail only with an *Error, and must return only well-formed objects.
func FuzzDirectory(f *testing.F) {
	f.Add([]byte(cm("a")))
	f.Add([]byte(cm("a") + "---\n" + cm("a")))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n"))
	f.Add([]byte("a: &a {b: 1}\nc:\n  <<: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(billionLaughs))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}`))
	f.Add([]byte("? [a]\n: b\n"))
	f.Add([]byte("x: !!binary aGVsbG8=\ny: .inf\nz: !custom 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "f.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := Render(context.Background(), root, ".", Options{Directory: &Directory{}, MaxFileBytes: 1 << 16})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Render error %v (%T) is not an *Error", err, err)
			}
			return
		}
		for _, o := range objs {
			o = o.DeepCopy() // panics on values that are not JSON-compatible
			if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
				t.Fatalf("Render returned an incomplete object: %v", o.Object)
			}
			if _, err := o.MarshalJSON(); err != nil {
				t.Fatalf("object does not marshal: %v", err)
			}
		}
	})
}
