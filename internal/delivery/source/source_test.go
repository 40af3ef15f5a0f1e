package source_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrycd/ferry/internal/delivery/source"
	"github.com/ferrycd/ferry/internal/testenv"
)

func newMirrors(t *testing.T, opts source.Options) *source.Mirrors {
	t.Helper()
	m := source.NewMirrors(t.TempDir(), opts)
	t.Cleanup(func() { m.Close() })
	return m
}

// readTree returns a directory's files as path -> content, and symlinks as
// path -> "-> target".
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			files[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestFetchResolvesRevisions(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	before := time.Now().Truncate(time.Second)
	first := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 1\n", "base/kustomization.yaml": "resources: []\n"}, "first")
	second := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 2\n"}, "second\n\nwith a body")
	feature := srv.Commit(t, "app", "feature", map[string]string{"base/kustomization.yaml": ""}, "feature")
	after := time.Now()
	srv.Tag(t, "app", "v1.0.0", first)

	firstFiles := map[string]string{"app.yaml": "v: 1\n", "base/kustomization.yaml": "resources: []\n"}
	secondFiles := map[string]string{"app.yaml": "v: 2\n", "base/kustomization.yaml": "resources: []\n"}
	tests := []struct {
		name, revision string
		wantSHA        string
		wantMessage    string
		wantFiles      map[string]string
	}{
		{"default branch", "", second, "second\n\nwith a body", secondFiles},
		{"HEAD", "HEAD", second, "second\n\nwith a body", secondFiles},
		{"branch", "main", second, "second\n\nwith a body", secondFiles},
		{"other branch", "feature", feature, "feature", map[string]string{"app.yaml": "v: 2\n"}},
		{"full ref", "refs/heads/feature", feature, "feature", map[string]string{"app.yaml": "v: 2\n"}},
		{"annotated tag", "v1.0.0", first, "first", firstFiles},
		{"full SHA of no branch tip", first, first, "first", firstFiles},
		{"full SHA in capitals", strings.ToUpper(first), first, "first", firstFiles},
		{"short SHA", first[:7], first, "first", firstFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirrors(t, source.Options{})
			got, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("app"), Revision: tt.revision})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantSHA, got.Revision); diff != "" {
				t.Errorf("revision (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMessage, got.CommitMessage); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(testenv.GitAuthor, got.Author); diff != "" {
				t.Errorf("author (-want +got):\n%s", diff)
			}
			if got.CommitTime.Before(before) || got.CommitTime.After(after) {
				t.Errorf("commit time %v, want between %v and %v", got.CommitTime, before, after)
			}
			if diff := cmp.Diff(tt.wantFiles, readTree(t, got.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchSeesNewCommits(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	first := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 1\n"}, "first")
	m := newMirrors(t, source.Options{})
	req := source.Request{RepoURL: srv.URL("app"), Revision: "main"}

	got1, err := m.Fetch(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	second := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 2\n", "new.yaml": "n: 1\n"}, "second")
	got2, err := m.Fetch(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{first, second}, []string{got1.Revision, got2.Revision}); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"app.yaml": "v: 2\n", "new.yaml": "n: 1\n"}, readTree(t, got2.Dir)); diff != "" {
		t.Errorf("new tree (-want +got):\n%s", diff)
	}
	// The old commit's tree is a directory of its own, untouched.
	if diff := cmp.Diff(map[string]string{"app.yaml": "v: 1\n"}, readTree(t, got1.Dir)); diff != "" {
		t.Errorf("old tree (-want +got):\n%s", diff)
	}

	// Nothing new: the server is asked, nothing is fetched.
	fetches := srv.Fetches("app")
	if _, err := m.Fetch(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if got := srv.Fetches("app") - fetches; got != 0 {
		t.Errorf("fetches without a new commit: %d, want 0", got)
	}
}

// TestFetchMaxAge: a Fetch with MaxAge takes the last round's answer while it is recent
// and asks the server nothing; without MaxAge, or after Invalidate, it asks git anew.
func TestFetchMaxAge(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	first := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 1\n"}, "first")
	m := newMirrors(t, source.Options{})
	cached := source.Request{RepoURL: srv.URL("app"), Revision: "main", MaxAge: time.Hour}
	fetch := func(req source.Request) string {
		t.Helper()
		art, err := m.Fetch(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return art.Revision
	}
	if got := fetch(cached); got != first {
		t.Fatalf("first fetch: %s, want %s", got, first)
	}

	second := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 2\n"}, "second")
	sessions := srv.Sessions("app")
	if got := fetch(cached); got != first {
		t.Errorf("within MaxAge: %s, want the last round's answer %s", got, first)
	}
	if got := srv.Sessions("app") - sessions; got != 0 {
		t.Errorf("git sessions on the server for an answer within MaxAge: %d, want 0", got)
	}
	other := cached
	other.Revision = "refs/heads/main"
	if got := fetch(other); got != second {
		t.Errorf("a revision the last round was not asked for: %s, want a new round's %s", got, second)
	}
	if got := fetch(cached); got != second {
		t.Errorf("after a newer round: %s, want %s", got, second)
	}

	third := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 3\n"}, "third")
	strict := cached
	strict.MaxAge = 0
	if got := fetch(strict); got != third {
		t.Errorf("without MaxAge: %s, want %s", got, third)
	}

	fourth := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 4\n"}, "fourth")
	m.Invalidate(srv.URL("app"))
	if got := fetch(cached); got != fourth {
		t.Errorf("after Invalidate: %s, want %s", got, fourth)
	}

	short := cached
	short.MaxAge = time.Nanosecond
	fifth := srv.Commit(t, "app", "main", map[string]string{"app.yaml": "v: 5\n"}, "fifth")
	if got := fetch(short); got != fifth {
		t.Errorf("past MaxAge: %s, want %s", got, fifth)
	}
}

// TestFetchCoalesces holds the server while 50 Fetches of one repository queue up, then
// counts what reached the server: the first Fetch's round (ls-remote, fetch) and one more
// round (ls-remote) for every Fetch that asked after the first round had started.
func TestFetchCoalesces(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "mono")
	srv.Commit(t, "mono", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	reg := prometheus.NewRegistry()
	m := newMirrors(t, source.Options{Registerer: reg})
	req := source.Request{RepoURL: srv.URL("mono"), Revision: "main"}
	if _, err := m.Fetch(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	want := srv.Commit(t, "mono", "main", map[string]string{"a.yaml": "v: 2\n"}, "second")
	sessions := srv.Sessions("mono")
	rounds := roundsByResult(t, reg)

	const n = 50
	release := srv.Hold()
	got := make([]source.Artifact, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = m.Fetch(t.Context(), req) })
	}
	deadline := time.Now().Add(time.Minute)
	for m.Waiting(req.RepoURL) < n {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("%d of %d Fetches waiting after a minute", m.Waiting(req.RepoURL), n)
		}
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("fetch %d: %v", i, errs[i])
		}
		if got[i].Revision != want || got[i].Dir != got[0].Dir {
			t.Fatalf("fetch %d: got %s in %s, want %s in %s", i, got[i].Revision, got[i].Dir, want, got[0].Dir)
		}
	}
	if s := srv.Sessions("mono") - sessions; s < 2 || s > 3 {
		t.Errorf("git sessions on the server for %d Fetches: %d, want 2 or 3", n, s)
	}
	after := roundsByResult(t, reg)
	if f := after["fetched"] - rounds["fetched"]; f != 1 {
		t.Errorf("rounds that fetched: %d, want 1", f)
	}
	if u := after["unchanged"] - rounds["unchanged"]; u > 1 {
		t.Errorf("rounds that found nothing new: %d, want at most 1", u)
	}
	if e := after["error"] - rounds["error"]; e != 0 {
		t.Errorf("rounds that failed: %d, want 0", e)
	}
}

// roundsByResult reads ferry_git_fetch_duration_seconds: observations by result.
func roundsByResult(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "ferry_git_fetch_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "result" {
					counts[l.GetValue()] += metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts
}

func TestFetchAuthenticates(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{Username: "ferry", Password: "right-password"})
	srv.CreateRepo(t, "private")
	want := srv.Commit(t, "private", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	withUserinfo := strings.Replace(srv.URL("private"), "http://", "http://ferry:right-password@", 1)

	tests := []struct {
		name    string
		url     string
		creds   *source.Credentials
		wantErr error
	}{
		{"no credentials", srv.URL("private"), nil, source.ErrAuth},
		{"wrong password", srv.URL("private"), &source.Credentials{Username: "ferry", Password: "wrong"}, source.ErrAuth},
		{"wrong user", srv.URL("private"), &source.Credentials{Username: "other", Password: "right-password"}, source.ErrAuth},
		{"right credentials", srv.URL("private"), &source.Credentials{Username: "ferry", Password: "right-password"}, nil},
		{"credentials in the URL", withUserinfo, nil, nil},
		{"credentials override the URL's", withUserinfo, &source.Credentials{Username: "ferry", Password: "wrong"}, source.ErrAuth},
	}
	// One Mirrors for all: a good Fetch must not let a later bad one through.
	m := newMirrors(t, source.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Fetch(t.Context(), source.Request{RepoURL: tt.url, Revision: "main", Credentials: tt.creds})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil && got.Revision != want {
				t.Errorf("got revision %s, want %s", got.Revision, want)
			}
		})
	}
	// A commit the mirror already holds still needs good credentials.
	_, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("private"), Revision: want})
	if !errors.Is(err, source.ErrAuth) {
		t.Errorf("fetch of a mirrored commit without credentials: got %v, want ErrAuth", err)
	}
}

func TestFetchUnavailable(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	first := srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	m := newMirrors(t, source.Options{})
	req := source.Request{RepoURL: srv.URL("app"), Revision: "main"}
	if _, err := m.Fetch(t.Context(), req); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	for _, rev := range []string{"main", first} {
		if _, err := m.Fetch(t.Context(), source.Request{RepoURL: req.RepoURL, Revision: rev}); !errors.Is(err, source.ErrUnavailable) {
			t.Errorf("fetch %s while the server is down: got %v, want ErrUnavailable", rev, err)
		}
	}
	if _, err := newMirrors(t, source.Options{}).Fetch(t.Context(), req); !errors.Is(err, source.ErrUnavailable) {
		t.Errorf("first fetch while the server is down: got %v, want ErrUnavailable", err)
	}

	srv.Start(t)
	second := srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 2\n"}, "second")
	got, err := m.Fetch(t.Context(), req)
	if err != nil {
		t.Fatalf("fetch after the server is back: %v", err)
	}
	if got.Revision != second {
		t.Errorf("got revision %s, want %s", got.Revision, second)
	}
}

func TestFetchTimesOut(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	m := newMirrors(t, source.Options{Timeout: 500 * time.Millisecond})
	release := srv.Hold()
	defer release()
	_, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("app")})
	if !errors.Is(err, source.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestFetchNotFound(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	srv.CreateRepo(t, "empty")
	srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	prefix := ambiguousPrefix(t, srv.Dir("app"))

	tests := []struct {
		name, repo, revision string
		wantErr              error
	}{
		{"branch", "app", "nope", source.ErrRevisionNotFound},
		{"full SHA", "app", strings.Repeat("0123456789", 4), source.ErrRevisionNotFound},
		{"short SHA", "app", "0000000", source.ErrRevisionNotFound},
		{"ambiguous short SHA", "app", prefix, source.ErrRevisionNotFound},
		{"option", "app", "--upload-pack=touch /tmp/x", source.ErrRevisionNotFound},
		{"refspec", "app", "main:refs/heads/x", source.ErrRevisionNotFound},
		{"range", "app", "main..main", source.ErrRevisionNotFound},
		{"default branch of an empty repository", "empty", "", source.ErrRevisionNotFound},
		{"repository", "missing", "main", source.ErrRepositoryNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirrors(t, source.Options{})
			_, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL(tt.repo), Revision: tt.revision})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// ambiguousPrefix adds 2000 commits to a branch of the bare repository at dir with git
// fast-import and returns a 4-digit prefix two of them share (one is all but certain
// among 2000; the commits are dated, so the answer is the same every run).
func ambiguousPrefix(t *testing.T, dir string) string {
	t.Helper()
	var in bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&in, "commit refs/heads/noise\nmark :%d\ncommitter %s 1767225600 +0000\ndata <<EOF\nnoise %d\nEOF\n\n", i+1, testenv.GitAuthor, i)
	}
	marks := filepath.Join(t.TempDir(), "marks")
	cmd := exec.Command("git", "fast-import", "--quiet", "--export-marks="+marks)
	cmd.Env = append(os.Environ(), "GIT_DIR="+dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		_, sha, _ := strings.Cut(line, " ")
		if seen[sha[:4]] {
			return sha[:4]
		}
		seen[sha[:4]] = true
	}
	t.Fatal("no two of 2000 commits share a 4-digit prefix")
	return ""
}

func TestFetchRejectsUnsafeTrees(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	link := func(path, target string) testenv.GitChange {
		return testenv.GitChange{Path: path, Content: target, Symlink: true}
	}
	tests := []struct {
		name    string
		changes []testenv.GitChange
		wantErr error
	}{
		{"absolute symlink", []testenv.GitChange{link("evil", "/etc/passwd")}, source.ErrUnsafeTree},
		{"symlink climbing out", []testenv.GitChange{link("dir/evil", "../../x")}, source.ErrUnsafeTree},
		{"symlink out through another symlink", []testenv.GitChange{link("here", "."), link("evil", "here/../x")}, source.ErrUnsafeTree},
		{"symlinks inside", []testenv.GitChange{link("b.yaml", "a.yaml"), link("dir/c.yaml", "../a.yaml"), link("dangling", "nowhere")}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			branch := fmt.Sprintf("case-%d", i)
			srv.CommitChanges(t, "app", branch, tt.changes, tt.name)
			m := newMirrors(t, source.Options{})
			got, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("app"), Revision: branch})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := map[string]string{"a.yaml": "v: 1\n", "b.yaml": "-> a.yaml", "dir/c.yaml": "-> ../a.yaml", "dangling": "-> nowhere"}
			if diff := cmp.Diff(want, readTree(t, got.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchCapsTreeSize(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "main", map[string]string{"a.yaml": strings.Repeat("x", 600), "b.yaml": strings.Repeat("y", 600)}, "big")
	for _, tt := range []struct {
		max     int64
		wantErr error
	}{
		{1000, source.ErrTreeTooLarge},
		{1200, nil},
	} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			m := newMirrors(t, source.Options{MaxTreeBytes: tt.max})
			if _, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("app")}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestSecretsNeverShow plants a canary password in every way a Fetch can fail or succeed
// with it and looks for it, plain or encoded, in errors and debug logs.
func TestSecretsNeverShow(t *testing.T) {
	const canary = "canary-Pa55w0rd-7d3f9c"
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{Username: "ferry", Password: canary})
	srv.CreateRepo(t, "private")
	srv.Commit(t, "private", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	var logs bytes.Buffer
	m := newMirrors(t, source.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	url := srv.URL("private")
	withUserinfo := func(userinfo string) string { return strings.Replace(url, "http://", "http://"+userinfo+"@", 1) }

	requests := []source.Request{
		{RepoURL: url, Revision: "main", Credentials: &source.Credentials{Username: "ferry", Password: canary}},
		{RepoURL: url, Revision: "nope", Credentials: &source.Credentials{Username: "ferry", Password: canary}},
		{RepoURL: url, Revision: "main", Credentials: &source.Credentials{Username: "wrong", Password: canary}},
		{RepoURL: withUserinfo("ferry:" + canary), Revision: "main"},
		{RepoURL: withUserinfo("wrong:" + canary), Revision: "main"},
		{RepoURL: withUserinfo(canary), Revision: "main"},
		{RepoURL: withUserinfo("ferry:"+canary) + "/%zz", Revision: "main"},
		{RepoURL: "ftp://ferry:" + canary + "@example.com/x.git", Revision: "main"},
	}
	var errs []string
	fetchAll := func() {
		for _, req := range requests {
			if _, err := m.Fetch(t.Context(), req); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	fetchAll()
	srv.Stop(t)
	fetchAll()
	if len(errs) < len(requests) {
		t.Fatalf("only %d errors: the test plants the canary where it cannot show", len(errs))
	}
	forms := []string{canary, base64.StdEncoding.EncodeToString([]byte("ferry:" + canary)), base64.StdEncoding.EncodeToString([]byte("wrong:" + canary))}
	for _, form := range forms {
		for _, e := range errs {
			if strings.Contains(e, form) {
				t.Errorf("error shows the secret: %s", e)
			}
		}
		if strings.Contains(logs.String(), form) {
			t.Errorf("logs show the secret:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "git sync") {
		t.Errorf("no debug logs to check:\n%s", logs.String())
	}
}

func TestPrune(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	first := srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	second := srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 2\n"}, "second")
	m := newMirrors(t, source.Options{})
	fetch := func(rev string) source.Artifact {
		t.Helper()
		a, err := m.Fetch(t.Context(), source.Request{RepoURL: srv.URL("app"), Revision: rev})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	old, cur := fetch(first), fetch(second)

	removed, err := m.Prune(func(sha string) bool { return sha == second })
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 {
		t.Errorf("removed %d trees, want 1", removed)
	}
	if _, err := os.Stat(old.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pruned tree: stat error %v, want not exist", err)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": "v: 2\n"}, readTree(t, cur.Dir)); diff != "" {
		t.Errorf("kept tree (-want +got):\n%s", diff)
	}
	// A pruned commit comes back on demand.
	if diff := cmp.Diff(map[string]string{"a.yaml": "v: 1\n"}, readTree(t, fetch(first).Dir)); diff != "" {
		t.Errorf("re-exported tree (-want +got):\n%s", diff)
	}
}

func TestFetchOverSSH(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	want := srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	sshd := srv.StartSSH(t)
	other := srv.StartSSH(t) // another host key and client key
	url := sshd.URL("app")
	// sshd's address with other's host key: what a man in the middle looks like.
	otherKey := strings.Fields(string(other.KnownHosts))
	changedKey := []byte(strings.Fields(string(sshd.KnownHosts))[0] + " " + otherKey[1] + " " + otherKey[2] + "\n")

	tests := []struct {
		name    string
		url     string
		creds   *source.Credentials
		wantErr error
	}{
		{"key and known host", url, &source.Credentials{SSHPrivateKey: sshd.ClientKey, KnownHosts: sshd.KnownHosts}, nil},
		{"unknown host key", url, &source.Credentials{SSHPrivateKey: sshd.ClientKey}, source.ErrAuth},
		{"known host of another address", url, &source.Credentials{SSHPrivateKey: sshd.ClientKey, KnownHosts: other.KnownHosts}, source.ErrAuth},
		{"changed host key", url, &source.Credentials{SSHPrivateKey: sshd.ClientKey, KnownHosts: changedKey}, source.ErrAuth},
		{"wrong client key", url, &source.Credentials{SSHPrivateKey: other.ClientKey, KnownHosts: sshd.KnownHosts}, source.ErrAuth},
		{"no client key", url, &source.Credentials{KnownHosts: sshd.KnownHosts}, source.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirrors(t, source.Options{})
			got, err := m.Fetch(t.Context(), source.Request{RepoURL: tt.url, Revision: "main", Credentials: tt.creds})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("error shows the key: %v", err)
				}
				return
			}
			if got.Revision != want {
				t.Errorf("got revision %s, want %s", got.Revision, want)
			}
			if diff := cmp.Diff(map[string]string{"a.yaml": "v: 1\n"}, readTree(t, got.Dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFetchGivesUp checks that a caller's cancellation and Close both end a Fetch stuck
// on a server that does not answer.
func TestFetchGivesUp(t *testing.T) {
	srv := testenv.NewGitServer(t, testenv.GitServerOptions{})
	srv.CreateRepo(t, "app")
	srv.Commit(t, "app", "main", map[string]string{"a.yaml": "v: 1\n"}, "first")
	release := srv.Hold()
	defer release()
	m := source.NewMirrors(t.TempDir(), source.Options{})
	req := source.Request{RepoURL: srv.URL("app")}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := m.Fetch(ctx, req)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch: got %v, want context.Canceled", err)
	}

	go func() {
		_, err := m.Fetch(t.Context(), req)
		done <- err
	}()
	for m.Waiting(req.RepoURL) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("fetch in flight during Close succeeded")
	}
	if _, err := m.Fetch(t.Context(), req); err == nil {
		t.Error("fetch after Close succeeded")
	}
}
