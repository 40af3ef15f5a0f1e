package webhook

import "testing"

func TestNormalizeURL(t *testing.T) {
	const want = "github.com/ferrycd/demo-apps"
	tests := []struct {
		in, want string
	}{
		{"https://github.com/ferrycd/demo-apps", want},
		{"https://github.com/ferrycd/demo-apps.git", want},
		{"https://github.com/ferrycd/demo-apps/", want},
		{"https://github.com/ferrycd/demo-apps.git/", want},
		{"http://github.com/ferrycd/demo-apps", want},
		{"https://github.com/ferrycd/demo-apps?ref=main#readme", want},
		{"  https://github.com/ferrycd/demo-apps\n", want},
		{"HTTPS://GitHub.COM/ferrycd/demo-apps", want},
		{"https://GitHub.com/FerryCD/Demo-Apps", "github.com/FerryCD/Demo-Apps"},
		{"https://github.com:443/ferrycd/demo-apps", want},
		{"https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/ferrycd/demo-apps.git", want},
		{"https://octocat@github.com/ferrycd/demo-apps", want},
		{"git@github.com:ferrycd/demo-apps.git", want},
		{"git@github.com:ferrycd/demo-apps", want},
		{"github.com:ferrycd/demo-apps.git", want},
		{"git@github.com:/ferrycd/demo-apps.git", want},
		{"git@GitHub.com:ferrycd/demo-apps.git", want},
		{"ssh://git@github.com/ferrycd/demo-apps.git", want},
		{"ssh://git@github.com:22/ferrycd/demo-apps.git", want},
		{"SSH://git@github.com:22/ferrycd/demo-apps", want},
		{"git+ssh://git@github.com/ferrycd/demo-apps.git", want},
		{"git://github.com/ferrycd/demo-apps.git", want},
		{"github.com/ferrycd/demo-apps", want},
		{"github.com/ferrycd/demo-apps.git", want},
		{"ssh://git@gitlab.example.com:2222/platform/deploy.git", "gitlab.example.com/platform/deploy"},
		{"https://gitlab.example.com:8443/platform/deploy", "gitlab.example.com/platform/deploy"},
		{"https://oauth2:glpat-xxxxxxxxxxxxxxxxxxxx@gitlab.example.com/platform/deploy.git", "gitlab.example.com/platform/deploy"},
		{"https://gitlab.example.com/group/subgroup/project.git", "gitlab.example.com/group/subgroup/project"},
		{"http://10.0.0.7:3000/team/infra.git", "10.0.0.7/team/infra"},
		{"https://[2001:DB8::1]:8443/org/repo.git", "[2001:db8::1]/org/repo"},
		{"git@[2001:db8::1]:org/repo.git", "[2001:db8::1]/org/repo"},
		{"[2001:db8::1]/org/repo", "[2001:db8::1]/org/repo"},
		{"https://github.com", "github.com"},
		{"https://github.com/", "github.com"},
		{"https://github.com/org/repo.git.git", "github.com/org/repo"},
		{"", ""},
		{"   ", ""},
		{"/srv/git/demo-apps.git", ""},
		{"./demo-apps", ""},
		{"../demo-apps", ""},
		{"file:///srv/git/demo-apps.git", ""},
		{"https://exa mple.com/org/repo", ""},
		{"https://host:port/org/repo", ""},
		{"git@[2001:db8::1/org/repo", ""},
		{"https://user@/org/repo", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := NormalizeURL(tt.in); got != tt.want {
				t.Errorf("NormalizeURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := NormalizeURL(tt.want); got != tt.want {
				t.Errorf("NormalizeURL(%q) = %q, want it unchanged", tt.want, got)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	github := Push{Provider: GitHub, RepoURLs: githubURLs}
	gitlab := Push{Provider: GitLab, RepoURLs: gitlabURLs}
	tests := []struct {
		name    string
		push    Push
		repoURL string
		want    bool
	}{
		{"same https", github, "https://github.com/ferrycd/demo-apps.git", true},
		{"without .git", github, "https://github.com/ferrycd/demo-apps", true},
		{"scp", github, "git@github.com:ferrycd/demo-apps", true},
		{"ssh with port", github, "ssh://git@github.com:22/ferrycd/demo-apps.git", true},
		{"with credentials", github, "https://x-access-token:ghs_abc@github.com/ferrycd/demo-apps", true},
		{"other case", github, "https://GitHub.com/FerryCD/Demo-Apps", true},
		{"other repo with the same prefix", github, "https://github.com/ferrycd/demo-apps-staging", false},
		{"owner only", github, "https://github.com/ferrycd", false},
		{"other host", github, "https://gitlab.com/ferrycd/demo-apps", false},
		{"empty", github, "", false},
		{"local path", github, "/srv/git/demo-apps", false},
		{"no URLs", Push{Provider: GitHub}, "https://github.com/ferrycd/demo-apps", false},
		{"gitlab scp against ssh on 2222", gitlab, "git@gitlab.example.com:platform/deploy.git", true},
		{"gitlab web URL", gitlab, "https://gitlab.example.com/platform/deploy", true},
		{"gitlab parent group", gitlab, "https://gitlab.example.com/platform", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.push.Matches(tt.repoURL); got != tt.want {
				t.Errorf("Matches(%q) = %v, want %v", tt.repoURL, got, tt.want)
			}
		})
	}
}
