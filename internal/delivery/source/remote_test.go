package source

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRemote(t *testing.T) {
	tests := []struct {
		raw      string
		wantURL  string
		wantSSH  bool
		wantUser *Credentials
	}{
		{"https://github.com/org/repo.git", "https://github.com/org/repo.git", false, nil},
		{"HTTPS://GitHub.com:443/org/repo.git/", "https://github.com/org/repo.git", false, nil},
		{"http://127.0.0.1:8080/repo.git", "http://127.0.0.1:8080/repo.git", false, nil},
		{"https://ferry:s3cret@github.com/org/repo", "https://github.com/org/repo", false, &Credentials{Username: "ferry", Password: "s3cret"}},
		{"https://ghp_token@github.com/org/repo", "https://github.com/org/repo", false, &Credentials{Password: "ghp_token"}},
		{"ssh://git:s3cret@host:2222/repo.git", "ssh://git@host:2222/repo.git", true, nil},
		{"git@github.com:org/repo.git", "git@github.com:org/repo.git", true, nil},
		{"github.com:org/repo.git/", "github.com:org/repo.git", true, nil},
		{"git://example.com/repo.git", "git://example.com/repo.git", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			r, err := parseRemote(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantURL, r.url); diff != "" {
				t.Errorf("url (-want +got):\n%s", diff)
			}
			if r.ssh != tt.wantSSH {
				t.Errorf("ssh %v, want %v", r.ssh, tt.wantSSH)
			}
			if diff := cmp.Diff(tt.wantUser, r.userinfo); diff != "" {
				t.Errorf("userinfo (-want +got):\n%s", diff)
			}
			if r.redacted != r.url || strings.Contains(r.mirrorName(), "github") {
				t.Errorf("redacted %q, mirror name %q", r.redacted, r.mirrorName())
			}
		})
	}
}

func TestParseRemoteSharesMirrors(t *testing.T) {
	a, errA := parseRemote("https://GitHub.com/org/repo/")
	b, errB := parseRemote("https://user:token@github.com:443/org/repo")
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	if a.mirrorName() != b.mirrorName() {
		t.Errorf("mirror names differ: %s, %s", a.mirrorName(), b.mirrorName())
	}
}

func TestParseRemoteRejects(t *testing.T) {
	for _, raw := range []string{
		"",
		"file:///etc/repo.git",
		"ext::sh -c touch% /tmp/pwned",
		"-uupload-pack=touch /tmp/x",
		"--upload-pack=x:y",
		"https://github.com",
		"https://github.com/",
		"https://github.com/repo?x=1",
		"https://github.com/repo#frag",
		"https:///repo",
		"/srv/git/repo.git",
		"repo.git",
		"https://github.com/org/repo\nfoo",
		"https://github.com/org/re po",
	} {
		t.Run(raw, func(t *testing.T) {
			if _, err := parseRemote(raw); !errors.Is(err, ErrInvalidURL) {
				t.Errorf("got %v, want ErrInvalidURL", err)
			}
		})
	}
}

func TestValidateRevision(t *testing.T) {
	for _, rev := range []string{"", "main", "feature/x", "v1.2.3", "refs/pull/12/head", "abc1234", "release-2026.01"} {
		if err := validateRevision(rev); err != nil {
			t.Errorf("validateRevision(%q): %v", rev, err)
		}
	}
	for _, rev := range []string{"-x", "--upload-pack=x", "a..b", "main:dst", "a b", "a~1", "a^", "x@{1}", "@", "/a", "a/", "a//b", "a.lock", "a.", ".hidden", "a/.b", "a*", "a\x00b", "a\tb", strings.Repeat("a", 256)} {
		if err := validateRevision(rev); !errors.Is(err, ErrRevisionNotFound) {
			t.Errorf("validateRevision(%q): got %v, want ErrRevisionNotFound", rev, err)
		}
	}
}

// FuzzParseRemote checks that a password written into a URL never comes out of
// parseRemote, nor out of RedactURL, which Fetch uses for URLs parseRemote rejects.
func FuzzParseRemote(f *testing.F) {
	for _, seed := range []string{
		"https://user:password1@github.com/org/repo.git",
		"https://token12345@github.com/org/repo",
		"ssh://git:password1@host:22/repo",
		"http://a:b@c:password1@host/x",
		"https://user:pass%2Fword1@host/x/%zz",
		"git@github.com:org/repo.git",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var secret string
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			secret, _ = u.User.Password()
			if secret == "" && u.Scheme != "ssh" {
				secret = u.User.Username() // a token written as the user
			}
		}
		r, err := parseRemote(raw)
		if len(secret) < 8 || strings.Count(raw, secret) != 1 {
			return // too short to tell from the rest of the URL
		}
		shown := []string{RedactURL(raw), r.url, r.key, r.redacted}
		if err != nil {
			shown = append(shown, err.Error())
		}
		for _, s := range shown {
			if strings.Contains(s, secret) {
				t.Errorf("secret %q shows in %q", secret, s)
			}
		}
	})
}
