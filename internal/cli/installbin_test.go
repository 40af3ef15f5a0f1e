package cli

import (
	"bytes"
	"os"
	"os/exec"
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

// TestInstallBinaryPrefersFerryExec runs a copy of the test binary that has a ferry-exec
// beside it, as Ferry's image does: that one is copied.
func TestInstallBinaryPrefersFerryExec(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ferry")
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	small := []byte("#!/bin/sh\necho ferry-exec\n")
	if err := os.WriteFile(filepath.Join(dir, "ferry-exec"), small, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command(bin, "install-binary", dst)
	cmd.Env = append(os.Environ(), execMainEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install-binary: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, small) {
		t.Error("install-binary copied itself, not the ferry-exec beside it")
	}
}
