package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestInstallBinaryCopiesItself(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "ferry")
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), []string{"install-binary", dst}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the copy differs from the running binary")
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v (%v), want 0755", fi.Mode().Perm(), err)
	}
	if code := Main(t.Context(), []string{"install-binary", filepath.Join(t.TempDir(), "missing", "ferry")}, &out, &errOut); code == 0 {
		t.Error("installing into a missing directory succeeded")
	}
}
