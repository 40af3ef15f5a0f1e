package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// sentryNode returns the directory where hack/sentry-node.sh installed the official
// @sentry/node (`make test` sets FERRY_SENTRY_NODE).
func sentryNode(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FERRY_SENTRY_NODE")
	if dir == "" {
		t.Fatal(`FERRY_SENTRY_NODE is not set; run "make test", or set it to the output of hack/sentry-node.sh`)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@sentry", "node")); err != nil {
		t.Fatalf("FERRY_SENTRY_NODE=%s: %v; run hack/sentry-node.sh", dir, err)
	}
	return dir
}

// TestSentryNodeSDK runs a Node.js program that reports with @sentry/node as it ships from
// the npm registry, configured only by the environment Ferry injects into its workloads:
// its exception and message become issues on the Ferry release SENTRY_RELEASE names.
func TestSentryNodeSDK(t *testing.T) {
	dir := sentryNode(t)
	e := errorsEnv(t)
	dsn := e.createProject(t, "invoices", 0)
	script, err := filepath.Abs("testdata/sentry-node/report.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// Node resolves "@sentry/node" from the script's directory upwards, so run a copy beside
	// the installed node_modules.
	run := filepath.Join(t.TempDir(), "report.mjs")
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(run, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(filepath.Dir(run), "node_modules")); err != nil {
		t.Fatal(err)
	}
	rel := errtrack.ReleaseName(e.release.Application, e.release.Revision)
	cmd := exec.CommandContext(t.Context(), "node", run)
	cmd.Env = append(os.Environ(), "SENTRY_DSN="+dsn, errtrack.EnvRelease+"="+rel, errtrack.EnvEnvironment+"=production")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node report.mjs: %v\n%s", err, out)
	}

	list := e.issues(t, "project=invoices&sort=first_seen")
	var titles []string
	for _, is := range list {
		titles = append(titles, is.Title)
		if is.FirstRelease != rel || !slices.Contains(is.Environments, "production") {
			t.Errorf("issue %q: first release %q, environments %v; want %s in production", is.Title, is.FirstRelease, is.Environments, rel)
		}
	}
	if len(list) != 2 || !slices.ContainsFunc(titles, func(s string) bool { return strings.HasPrefix(s, "SyntaxError") }) ||
		!slices.Contains(titles, "invoice queue is backing up") {
		t.Fatalf("issues = %q; want the SyntaxError and the message", titles)
	}
	for _, is := range list {
		if strings.HasPrefix(is.Title, "SyntaxError") && !strings.Contains(is.Culprit, "parseInvoice") {
			t.Errorf("culprit = %q, want the in-app function parseInvoice", is.Culprit)
		}
	}
	if types := timelineTypes(t, e, e.release.ID); !slices.Equal(types, []string{"error.new", "error.new"}) {
		t.Errorf("release timeline = %v, want two error.new", types)
	}
}
