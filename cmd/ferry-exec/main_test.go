package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// build compiles ferry-exec into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunsExec checks the small binary is `ferry exec`: plain variables pass through to the
// command, and a malformed reference fails closed with ferry exec's message. (Resolution
// against a real Vault is tested on the shared code in internal/cli.)
func TestRunsExec(t *testing.T) {
	bin := build(t)
	marker := filepath.Join(t.TempDir(), "ran")

	cmd := exec.Command(bin, "exec", "--", "sh", "-c", `printf %s "$GREETING"`)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GREETING=hello"}
	out, err := cmd.Output()
	if err != nil || string(out) != "hello" {
		t.Fatalf("plain variable: %q, %v; want hello", out, err)
	}

	cmd = exec.Command(bin, "exec", "--", "touch", marker)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DB=vault:secret/db"}
	msg, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("malformed reference: %v, want exit 1", err)
	}
	if !strings.Contains(string(msg), `ferry exec: DB: vault:secret/db: missing "#KEY"`) {
		t.Errorf("message %q does not name the variable and reference", msg)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although a reference was malformed")
	}
}

// TestLinksLittle keeps ferry-exec small: it runs before every injected container, and the
// Kubernetes and Helm libraries of the full binary cost ~20 ms of start-up on their own.
func TestLinksLittle(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, heavy := range []string{"k8s.io/client-go", "helm.sh/helm", "sigs.k8s.io/controller-runtime", "k8s.io/apimachinery"} {
		for dep := range strings.FieldsSeq(string(out)) {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("ferry-exec links %s (through %s)", heavy, dep)
				break
			}
		}
	}
}
