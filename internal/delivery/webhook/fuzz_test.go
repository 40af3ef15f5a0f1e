package webhook

import (
	"net/http"
	"strings"
	"testing"
)

// fuzzHeaders are the header sets FuzzParse sends a body with.
var fuzzHeaders = []struct {
	provider string
	header   []string
}{
	{GitHub, []string{"X-GitHub-Event", "push", "Content-Type", "application/json"}},
	{GitHub, []string{"X-GitHub-Event", "push", "Content-Type", "application/x-www-form-urlencoded"}},
	{GitHub, []string{"X-GitHub-Event", "ping"}},
	{GitHub, []string{"X-GitHub-Event", "issues"}},
	{GitLab, []string{"X-Gitlab-Event", "Push Hook"}},
	{GitLab, []string{"X-Gitlab-Event", "Tag Push Hook"}},
	{GitLab, []string{"X-Gitlab-Event", "Note Hook"}},
	{Gitea, []string{"X-Gitea-Event", "push", "X-GitHub-Event", "push"}},
	{Gitea, []string{"X-Forgejo-Event", "push", "Content-Type", "application/x-www-form-urlencoded"}},
	{"", []string{"Content-Type", "application/json"}},
}

// fuzzRequest sends body with the header set headers picks, signed with the right secret (or
// carrying the right token) when sign holds and with a wrong one otherwise.
func fuzzRequest(body []byte, headers uint8, sign bool) (*http.Request, string) {
	h := fuzzHeaders[int(headers)%len(fuzzHeaders)]
	r := request(body, h.header...)
	if sign {
		switch h.provider {
		case GitHub:
			r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, body))
		case GitLab:
			r.Header.Set("X-Gitlab-Token", gitlabToken)
		case Gitea:
			r.Header.Set("X-Gitea-Signature", hmacHex(giteaSecret, body))
		}
	} else {
		// Signed, but with a secret Ferry does not hold.
		r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex("guess", body))
		r.Header.Set("X-Gitea-Signature", hmacHex("guess", body))
		r.Header.Set("X-Gitlab-Token", "guess")
	}
	return r, h.provider
}

func FuzzParse(f *testing.F) {
	for i, name := range []string{"github-push.json", "github-tag-push.json", "github-delete.json", "github-ping.json"} {
		f.Add(fixture(f, name), uint8(i%2), true, uint16(0))
	}
	f.Add(formBody(fixture(f, "github-push.json")), uint8(1), true, uint16(0))
	f.Add(fixture(f, "gitlab-push.json"), uint8(4), true, uint16(0))
	f.Add(fixture(f, "gitlab-tag-push.json"), uint8(5), true, uint16(0))
	f.Add(fixture(f, "gitlab-delete.json"), uint8(4), false, uint16(0))
	f.Add(fixture(f, "gitea-push.json"), uint8(7), true, uint16(0))
	f.Add(formBody(fixture(f, "gitea-push.json")), uint8(8), true, uint16(100))

	f.Fuzz(func(t *testing.T, body []byte, headers uint8, sign bool, limit uint16) {
		r, provider := fuzzRequest(body, headers, sign)
		p, err := Parse(r, testSecrets, int64(limit))
		if err != nil {
			if n := sentinels(err); n != 1 {
				t.Fatalf("Parse() error %q wraps %d of the Err values, want 1", err, n)
			}
			return
		}
		if !sign {
			t.Fatalf("Parse() accepted a request signed with the wrong secret: %+v", p)
		}
		if p.Provider != provider {
			t.Errorf("Provider = %q, want %q", p.Provider, provider)
		}
		if p.Ref == "" || len(p.RepoURLs) == 0 {
			t.Errorf("Parse() = %+v without a ref or a repository URL", p)
		}
		if p.Branch != "" && p.Ref != "refs/heads/"+p.Branch {
			t.Errorf("Branch %q is not in Ref %q", p.Branch, p.Ref)
		}
		if p.Tag != "" && p.Ref != "refs/tags/"+p.Tag {
			t.Errorf("Tag %q is not in Ref %q", p.Tag, p.Ref)
		}
		for _, u := range p.RepoURLs {
			if NormalizeURL(u) != "" && !p.Matches(u) {
				t.Errorf("Push does not match its own URL %q", u)
			}
		}
	})
}

func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{
		"https://github.com/ferrycd/demo-apps.git",
		"git@github.com:ferrycd/demo-apps.git",
		"ssh://git@gitlab.example.com:2222/platform/deploy.git",
		"https://oauth2:token@gitlab.example.com/platform/deploy/",
		"git@[2001:db8::1]:org/repo.git",
		"github.com/ferrycd/demo-apps",
		"/srv/git/demo-apps.git",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeURL(s)
		if again := NormalizeURL(n); again != n {
			t.Fatalf("NormalizeURL(%q) = %q, but NormalizeURL(%q) = %q", s, n, n, again)
		}
		if n == "" {
			if (Push{RepoURLs: []string{s}}).Matches(s) {
				t.Errorf("Matches(%q) with no host", s)
			}
			return
		}
		host, path, _ := strings.Cut(n, "/")
		if strings.HasSuffix(n, "/") || strings.HasSuffix(path, ".git") {
			t.Errorf("NormalizeURL(%q) = %q keeps a trailing / or .git", s, n)
		}
		if strings.ContainsAny(host, "@ ") {
			t.Errorf("NormalizeURL(%q) = %q keeps userinfo or space in the host", s, n)
		}
		if !(Push{RepoURLs: []string{s}}).Matches(s) {
			t.Errorf("a Push with URL %q does not match it", s)
		}
	})
}
