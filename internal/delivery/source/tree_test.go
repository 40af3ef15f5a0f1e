package source

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// entry is one tar entry: a file (Content), a directory (Dir) or a symlink (Link).
type entry struct {
	Name, Content, Link string
	Dir, Exec           bool
	Type                byte // overrides the type when set
}

func makeTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.Content))}
		switch {
		case e.Dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.Link, 0
		}
		if e.Exec {
			h.Mode = 0o755
		}
		if e.Type != 0 {
			h.Typeflag, h.Size = e.Type, 0
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := w.Write([]byte(e.Content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		max     int64
		want    map[string]string // path -> content, "-> target" for links, "dir" for directories
		wantErr error
	}{
		{
			name: "files, directories and links inside",
			entries: []entry{
				{Name: "base/", Dir: true},
				{Name: "base/k.yaml", Content: "k"},
				{Name: "run.sh", Content: "#!/bin/sh", Exec: true},
				{Name: "link.yaml", Link: "base/k.yaml"},
				{Name: "deep/up.yaml", Link: "../base/k.yaml"},
				{Name: "dangling", Link: "missing/file"},
			},
			want: map[string]string{
				"base": "dir", "base/k.yaml": "k", "run.sh": "#!/bin/sh", "deep": "dir",
				"link.yaml": "-> base/k.yaml", "deep/up.yaml": "-> ../base/k.yaml", "dangling": "-> missing/file",
			},
		},
		{name: "dot dot", entries: []entry{{Name: "../x", Content: "x"}}, wantErr: ErrUnsafeTree},
		{name: "dot dot inside", entries: []entry{{Name: "a/../../x", Content: "x"}}, wantErr: ErrUnsafeTree},
		{name: "absolute path", entries: []entry{{Name: "/etc/x", Content: "x"}}, wantErr: ErrUnsafeTree},
		{name: "absolute link", entries: []entry{{Name: "l", Link: "/etc/passwd"}}, wantErr: ErrUnsafeTree},
		{name: "link climbing out", entries: []entry{{Name: "a/l", Link: "../../etc/passwd"}}, wantErr: ErrUnsafeTree},
		{name: "link out through a link", entries: []entry{{Name: "self", Link: "."}, {Name: "l", Link: "self/../x"}}, wantErr: ErrUnsafeTree},
		{name: "link to a link out", entries: []entry{{Name: "d/self", Link: ".."}, {Name: "l", Link: "d/self/../x"}}, wantErr: ErrUnsafeTree},
		{name: "link loop", entries: []entry{{Name: "a", Link: "b"}, {Name: "b", Link: "a"}}, wantErr: ErrUnsafeTree},
		{name: "hard link", entries: []entry{{Name: "h", Type: tar.TypeLink}}, wantErr: ErrUnsafeTree},
		{name: "device", entries: []entry{{Name: "d", Type: tar.TypeChar}}, wantErr: ErrUnsafeTree},
		{name: "too large", entries: []entry{{Name: "a", Content: "12345"}, {Name: "b", Content: "123456"}}, max: 10, wantErr: ErrTreeTooLarge},
		{name: "just fits", entries: []entry{{Name: "a", Content: "12345"}, {Name: "b", Content: "12345"}}, max: 10, want: map[string]string{"a": "12345", "b": "12345"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "tree")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			max := tt.max
			if max == 0 {
				max = DefaultMaxTreeBytes
			}
			err := extract(bytes.NewReader(makeTar(t, tt.entries)), dir, max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if outside := entries(t, parent); len(outside) != 1 {
				t.Errorf("wrote outside the tree: %v", outside)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, list(t, dir)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractWritesReadOnly(t *testing.T) {
	dir := t.TempDir()
	if err := extract(bytes.NewReader(makeTar(t, []entry{{Name: "f", Content: "f"}, {Name: "x", Content: "x", Exec: true}})), dir, 100); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"f": 0o444, "x": 0o555} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

// entries returns the names in dir.
func entries(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// list returns what is under dir, as TestExtract's want.
func list(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		case d.IsDir():
			got[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			got[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// FuzzExtract feeds extract archives (what anyone who can push controls) and checks
// that nothing lands outside the tree and no symlink left in it leads outside.
func FuzzExtract(f *testing.F) {
	f.Add(makeTar(f, []entry{{Name: "a/", Dir: true}, {Name: "a/b", Content: "b"}, {Name: "l", Link: "a/b"}}))
	f.Add(makeTar(f, []entry{{Name: "self", Link: "."}, {Name: "l", Link: "self/../x"}}))
	f.Add(makeTar(f, []entry{{Name: "../x", Content: "x"}}))
	f.Add(makeTar(f, []entry{{Name: "d/up", Link: ".."}, {Name: "d/up/x", Content: "x"}}))
	f.Fuzz(func(t *testing.T, archive []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "tree")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		err := extract(bytes.NewReader(archive), dir, 1<<20)
		if outside := entries(t, parent); len(outside) != 1 {
			t.Fatalf("wrote outside the tree: %v", outside)
		}
		if err != nil {
			return
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		for name, what := range list(t, dir) {
			if len(what) > 3 && what[:3] == "-> " {
				if _, err := root.Stat(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("symlink %s %s kept: %v", name, what, err)
				}
			}
		}
	})
}
