package panel

import (
	"strings"
	"testing"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

func TestCommitURL(t *testing.T) {
	const sha = "5a03679905496d9c6e33f918c3be83f68e69ed25"
	for _, tc := range []struct{ repo, want string }{
		{"https://github.com/acme/shop.git", "https://github.com/acme/shop/commit/" + sha},
		{"https://gitea.example.com:3000/acme/shop", "https://gitea.example.com:3000/acme/shop/commit/" + sha},
		{"ssh://git@gitlab.com/group/sub/shop.git", "https://gitlab.com/group/sub/shop/commit/" + sha},
		{"git@github.com:acme/shop.git", "https://github.com/acme/shop/commit/" + sha},
		{"git://127.0.0.1:19418/sample.git", ""},
		{"http://127.0.0.1:8080/shop.git", ""},
		{"https://github.com/shop.git", ""},
		{"javascript:alert(1)//x/y", ""},
		{"", ""},
	} {
		if got := commitURL(tc.repo, sha); got != tc.want {
			t.Errorf("commitURL(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
	if got := commitURL("https://github.com/acme/shop", "main"); got != "" {
		t.Errorf("a branch name got a commit link %q", got)
	}
}

// TestRowHidesRepoCredentials: a repository URL may carry a token; the row the list and the
// app page show, commit link included, must not.
func TestRowHidesRepoCredentials(t *testing.T) {
	const canary = "CANARY-git-token-93e1"
	for _, repo := range []string{"https://" + canary + "@github.com/acme/shop.git",
		"https://x-access-token:" + canary + "@github.com/acme/shop.git"} {
		app := &v1alpha1.Application{}
		app.Spec.Source.RepoURL = repo
		app.Status.Sync.Revision = "5a03679905496d9c6e33f918c3be83f68e69ed25"
		r := rowOf(app)
		if strings.Contains(r.RepoURL, canary) || strings.Contains(r.CommitURL, canary) {
			t.Errorf("row of %s shows the token: %q, %q", repo, r.RepoURL, r.CommitURL)
		}
		if r.CommitURL != "https://github.com/acme/shop/commit/"+app.Status.Sync.Revision {
			t.Errorf("commit link = %q", r.CommitURL)
		}
	}
}
