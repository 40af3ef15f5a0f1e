package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gitClient runs the git command line the way a user would, isolated from this
// machine's configuration.
func gitClient(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(environWithoutGit(), isolatedGitEnv(t.TempDir())...)
	cmd.Env = append(cmd.Env, "GIT_AUTHOR_NAME=Pusher", "GIT_AUTHOR_EMAIL=p@x", "GIT_COMMITTER_NAME=Pusher", "GIT_COMMITTER_EMAIL=p@x")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestGitServerCloneAndPush(t *testing.T) {
	s := NewGitServer(t, GitServerOptions{Username: "ferry", Password: "pw"})
	s.CreateRepo(t, "app")
	first := s.Commit(t, "app", "main", map[string]string{"a.yaml": "a: 1\n", "b.yaml": "b\n"}, "first")
	second := s.Commit(t, "app", "main", map[string]string{"b.yaml": ""}, "second")
	s.CommitChanges(t, "app", "links", []GitChange{{Path: "l", Content: "a.yaml", Symlink: true}}, "link")
	s.Tag(t, "app", "v1", first)
	authURL := strings.Replace(s.URL("app"), "http://", "http://ferry:pw@", 1)

	if out, err := gitClient(t, "", "ls-remote", s.URL("app")); err == nil {
		t.Fatalf("ls-remote without credentials succeeded: %s", out)
	}
	if got := s.Sessions("app"); got != 0 {
		t.Errorf("refused request counted: %d sessions", got)
	}

	work := filepath.Join(t.TempDir(), "work")
	if out, err := gitClient(t, "", "clone", "--quiet", authURL, work); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if s.Sessions("app") != 1 || s.Fetches("app") < 1 {
		t.Errorf("after one clone: %d sessions, %d fetches; want 1 and at least 1", s.Sessions("app"), s.Fetches("app"))
	}
	head, _ := gitClient(t, work, "rev-parse", "HEAD")
	if head != second {
		t.Errorf("cloned HEAD %s, want %s", head, second)
	}
	if _, err := os.Stat(filepath.Join(work, "b.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file still there: %v", err)
	}
	author, _ := gitClient(t, work, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B")
	if diff := cmp.Diff(GitAuthor+"|"+GitAuthor+"|second", author); diff != "" {
		t.Errorf("author (-want +got):\n%s", diff)
	}
	tagged, _ := gitClient(t, work, "rev-parse", "v1^{commit}")
	if tagged != first {
		t.Errorf("v1 is %s, want %s", tagged, first)
	}
	mode, _ := gitClient(t, work, "ls-tree", "origin/links", "l")
	if !strings.HasPrefix(mode, "120000 blob") {
		t.Errorf("symlink entry %q", mode)
	}

	if err := os.WriteFile(filepath.Join(work, "c.yaml"), []byte("c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "c.yaml"}, {"commit", "--quiet", "-m", "pushed"}, {"push", "--quiet", "origin", "main"}} {
		if out, err := gitClient(t, work, args...); err != nil {
			t.Fatalf("git %s: %v\n%s", args[0], err, out)
		}
	}
	pushed, _ := gitClient(t, work, "rev-parse", "HEAD")
	if got := s.revParse(t, s.Dir("app"), "main"); got != pushed {
		t.Errorf("server main %s after push, want %s", got, pushed)
	}
	// Commit builds on what was pushed.
	next := s.Commit(t, "app", "main", map[string]string{"d.yaml": "d\n"}, "after push")
	if parent := s.revParse(t, s.Dir("app"), next+"^"); parent != pushed {
		t.Errorf("parent of commit after push %s, want %s", parent, pushed)
	}
}

func TestGitServerStopStart(t *testing.T) {
	s := NewGitServer(t, GitServerOptions{})
	s.CreateRepo(t, "app")
	s.Commit(t, "app", "main", map[string]string{"a": "a"}, "first")
	s.Stop(t)
	if out, err := gitClient(t, "", "ls-remote", s.URL("app")); err == nil || !strings.Contains(out, "Couldn't connect") {
		t.Fatalf("ls-remote while stopped: %v\n%s", err, out)
	}
	s.Start(t)
	if out, err := gitClient(t, "", "ls-remote", s.URL("app")); err != nil {
		t.Fatalf("ls-remote after Start: %v\n%s", err, out)
	}
}

func TestGitServerHold(t *testing.T) {
	s := NewGitServer(t, GitServerOptions{})
	s.CreateRepo(t, "app")
	s.Commit(t, "app", "main", map[string]string{"a": "a"}, "first")
	release := s.Hold()
	done := make(chan error, 1)
	go func() {
		_, err := gitClient(t, "", "ls-remote", s.URL("app"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("ls-remote finished while held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("ls-remote after release: %v", err)
	}
}
